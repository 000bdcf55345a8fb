"""Reproducible larger networks made from the real central-Shanghai one.

``tiled_network(base, nx, ny)`` lays ``nx × ny`` copies of the real network side by side
(each copy shifted by the base's extent plus ``gap_m``) and stitches neighbouring copies: every
node within ``band_m`` of a copy's east (north) border is joined by a straight street to the
nearest node within ``band_m`` of the next copy's west (south) border, when that is closer than
``max_link_m``. Nothing is random: the same base and tile counts always give the same network.
Facility and demand points are the real points copied into every tile; samples of them are
drawn with a seeded generator.

Sizes (the real central network has 6,291 edges): 1×1 = the real network, 2×1 ≈ 12.6k,
4×4 ≈ 100k, 14×12 ≈ 1.05M edges.
"""

from __future__ import annotations

import numpy as np
import shapely
from scipy.spatial import cKDTree

from coverage15.network.graph import WalkNetwork

GAP_M = 150.0
BAND_M = 250.0
MAX_LINK_M = 400.0


def grid_for_edges(base: WalkNetwork, edges: int) -> tuple[int, int]:
    """Tile counts (nx, ny) giving at least about ``edges`` edges (nx ≥ ny, nearly square)."""
    tiles = max(1, int(np.ceil(edges / base.n_edges - 0.25)))
    ny = max(1, int(np.floor(np.sqrt(tiles))))
    nx = max(1, int(np.ceil(tiles / ny)))
    return nx, ny


def _links(base: WalkNetwork, axis: int, shift: float) -> tuple[np.ndarray, np.ndarray]:
    """Base node pairs (a in one copy, b in the next copy along ``axis``) to join."""
    xy = base.node_xy
    hi, lo = xy[:, axis].max(), xy[:, axis].min()
    near_hi = np.flatnonzero(xy[:, axis] >= hi - BAND_M)
    near_lo = np.flatnonzero(xy[:, axis] <= lo + BAND_M)
    moved = xy[near_lo].copy()
    moved[:, axis] += shift
    dist, pos = cKDTree(moved).query(xy[near_hi], distance_upper_bound=MAX_LINK_M)
    ok = np.isfinite(dist)
    return near_hi[ok], near_lo[pos[ok]]


def tiled_network(base: WalkNetwork, nx: int, ny: int, *, gap_m: float = GAP_M) -> WalkNetwork:
    """``nx × ny`` stitched copies of ``base`` (see the module docstring)."""
    if nx == ny == 1:
        return base
    lo = base.node_xy.min(axis=0)
    size = base.node_xy.max(axis=0) - lo + gap_m
    n, m = base.n_nodes, base.n_edges
    tiles = [(i, j) for j in range(ny) for i in range(nx)]
    shifts = np.array([(i * size[0], j * size[1]) for i, j in tiles])
    t = len(tiles)
    node_xy = (base.node_xy[None, :, :] + shifts[:, None, :]).reshape(-1, 2)
    node_ids = np.arange(t * n, dtype=np.int64)
    tile_of = np.arange(t)
    u = (base.edge_u[None, :] + (tile_of * n)[:, None]).ravel()
    v = (base.edge_v[None, :] + (tile_of * n)[:, None]).ravel()
    length = np.tile(base.edge_length, t)
    xy = shapely.get_coordinates(base.edge_geometry)
    parts = shapely.get_num_coordinates(base.edge_geometry)
    index = np.repeat(np.arange(m), parts)
    all_xy = (xy[None, :, :] + shifts[:, None, :]).reshape(-1, 2)
    all_index = (index[None, :] + (tile_of * m)[:, None]).ravel()
    geometry = shapely.linestrings(all_xy, indices=all_index)
    link_u, link_v = [u], [v]
    link_len, link_geom = [length], [geometry]
    for axis, (di, dj) in enumerate(((1, 0), (0, 1))):
        a, b = _links(base, axis, size[axis])
        for k, (i, j) in enumerate(tiles):
            if i + di >= nx or j + dj >= ny:
                continue
            other = (j + dj) * nx + (i + di)
            ua = a + k * n
            vb = b + other * n
            seg = np.stack([node_xy[ua], node_xy[vb]], axis=1)
            link_u.append(ua)
            link_v.append(vb)
            link_len.append(np.hypot(*(seg[:, 1] - seg[:, 0]).T))
            link_geom.append(shapely.linestrings(seg))
    lo_all = node_xy.min(axis=0) - 250.0
    hi_all = node_xy.max(axis=0) + 250.0
    return WalkNetwork(
        crs=base.crs,
        node_ids=node_ids,
        node_xy=node_xy,
        edge_u=np.concatenate(link_u).astype(np.int32),
        edge_v=np.concatenate(link_v).astype(np.int32),
        edge_length=np.concatenate(link_len),
        edge_geometry=np.concatenate(link_geom),
        extent=shapely.box(*lo_all, *hi_all),
    )


def tiled_points(base: WalkNetwork, xy: np.ndarray, nx: int, ny: int,
                 *, gap_m: float = GAP_M) -> np.ndarray:
    """Copies of base-network points (working CRS) into every tile of ``tiled_network``."""
    lo = base.node_xy.min(axis=0)
    size = base.node_xy.max(axis=0) - lo + gap_m
    shifts = np.array([(i * size[0], j * size[1]) for j in range(ny) for i in range(nx)])
    return (xy[None, :, :] + shifts[:, None, :]).reshape(-1, 2)


def sample(xy: np.ndarray, n: int, *, seed: int, jitter_m: float = 1.0) -> np.ndarray:
    """``n`` rows of ``xy`` drawn without replacement; when ``n`` exceeds the pool, drawn with
    replacement and moved by a seeded ~``jitter_m`` so that no two points coincide."""
    rng = np.random.default_rng(seed)
    if n <= len(xy):
        return xy[np.sort(rng.choice(len(xy), size=n, replace=False))]
    return xy[rng.choice(len(xy), size=n)] + rng.normal(0.0, jitter_m, (n, 2))
