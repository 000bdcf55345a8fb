"""Walking distances on the network from facilities to nodes and points.

The cheap, exact part of the work, shared by coverage, reports and service areas:

1. :func:`network_reach` runs bounded multi-source Dijkstra (``scipy.sparse.csgraph``) from
   every facility's snapped position on its street edge, tile by tile, and keeps only the
   (facility, node, metres) triplets within the limit.
2. :func:`point_distances` turns those into facility → point distances for points snapped
   anywhere along edges (including two points on the same edge); :func:`nearest_facility`
   gives only the nearest, from one Dijkstra for all facilities at once.

:mod:`coverage15.reach.service_areas` turns a :class:`Reach` into the streets and polygons a
facility serves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import shapely
from scipy.sparse import csgraph

from coverage15 import settings
from coverage15._types import FloatArray, IntArray
from coverage15.network import _tiles
from coverage15.network.graph import Snap, WalkNetwork

__all__ = ["Reach", "nearest_facility", "network_reach", "point_distances"]

TILE_M = 3000.0  # facilities are processed in square tiles of this size
_EPS = 1e-9


@dataclass(frozen=True)
class Reach:
    """Distances from sources to the network nodes they reach within ``limit_m``.

    Attributes
    ----------
    limit_m : float
        The walking limit.
    source, node : numpy.ndarray
        Source position (in the snap arrays) and node position of each reached pair.
    dist_m : numpy.ndarray
        Walking distance, including the source's access leg when that was asked for.
    access_m : numpy.ndarray
        Each source's access leg (0 when not counted; NaN when not snapped).
    snap : Snap
        The sources' snaps.
    """

    limit_m: float
    source: IntArray
    node: IntArray
    dist_m: FloatArray
    access_m: FloatArray
    snap: Snap

    @property
    def n_sources(self) -> int:
        """Number of sources (snapped or not)."""
        return len(self.snap)


def _access(snap: Snap, access_leg: bool) -> FloatArray:
    return np.where(snap.snapped, snap.snap_m if access_leg else 0.0, np.nan)


def network_reach(
    net: WalkNetwork,
    snap: Snap,
    *,
    limit_m: float,
    access_leg: bool = settings.access_leg,
    tile_m: float = TILE_M,
    progress: Callable[[int], None] | None = None,
) -> Reach:
    """Bounded shortest-path distances from each snapped source to every node within reach.

    Sources are grouped in square tiles; each tile runs one multi-source Dijkstra on the
    sub-network within ``limit_m`` of the tile (a node farther than that in a straight line
    cannot be reached), with one virtual node per source joined to both ends of its edge at
    their along-edge distances. The answer is exact, and memory stays proportional to the tile:
    nodes are found through a grid index and the tile's sub-network is cut straight out of the
    CSR arrays, so the work per tile does not grow with the size of the whole network.

    Parameters
    ----------
    net
        The network.
    snap
        Where the sources meet the network (unsnapped sources reach nothing).
    limit_m
        Walking limit in metres.
    access_leg
        Count the straight walk from the source to the street against the limit.
    tile_m
        Tile size in metres.
    progress
        Called with the number of sources finished after each tile.

    Returns
    -------
    Reach
    """
    access = _access(snap, access_leg)
    usable = np.flatnonzero(snap.snapped & (access <= limit_m))
    empty = np.array([], dtype=np.int64)
    if len(usable) == 0:
        return Reach(limit_m, empty, empty, np.array([]), access, snap)
    edge = snap.edge[usable]
    offset = snap.offset_m[usable]
    length = net.edge_length[edge]
    start_u = access[usable] + offset
    start_v = access[usable] + (length - offset)
    point_xy = shapely.get_coordinates(
        shapely.line_interpolate_point(net.edge_geometry[edge], offset)
    )
    tile = np.floor(point_xy / tile_m).astype(np.int64)
    _, tile_id = np.unique(tile, axis=0, return_inverse=True)
    tile_id = tile_id.ravel()
    order = np.argsort(tile_id, kind="stable")
    bounds = np.flatnonzero(np.diff(tile_id[order])) + 1
    grid = _tiles.NodeGrid(net.node_xy, tile_m)
    csr = net.csr
    indptr = csr.indptr.astype(np.int64)
    local = np.full(net.n_nodes, -1, dtype=np.int64)  # reused: reset after every tile
    out_source, out_node, out_dist = [], [], []
    for members in np.split(order, bounds):
        lo = point_xy[members].min(axis=0) - limit_m
        hi = point_xy[members].max(axis=0) + limit_m
        sub_nodes = grid.within(lo, hi)
        m, k = len(sub_nodes), len(members)
        local[sub_nodes] = np.arange(m)
        graph = _tile_graph(net, sub_nodes, local, indptr=indptr, edge=edge[members],
                                  start_u=start_u[members], start_v=start_v[members],
                                  eps=_EPS)
        local[sub_nodes] = -1
        rows = np.arange(m, m + k)
        for chunk in np.array_split(np.arange(k), max(1, (k * (m + k)) // _tiles.MAX_DENSE + 1)):
            dist = csgraph.dijkstra(graph, directed=True, indices=rows[chunk],
                                    limit=limit_m)[:, :m]
            src_i, node_i = np.nonzero(dist <= limit_m)
            out_source.append(usable[members[chunk]][src_i])
            out_node.append(sub_nodes[node_i])
            out_dist.append(dist[src_i, node_i])
        if progress is not None:
            progress(k)
    return Reach(
        limit_m=limit_m,
        source=np.concatenate(out_source).astype(np.int64),
        node=np.concatenate(out_node).astype(np.int64),
        dist_m=np.concatenate(out_dist),
        access_m=access,
        snap=snap,
    )


def point_distances(
    net: WalkNetwork,
    reach: Reach,
    targets: Snap,
    *,
    access_leg: bool = settings.access_leg,
) -> tuple[IntArray, IntArray, FloatArray]:
    """Walking distances from each source to each target point within the limit.

    Parameters
    ----------
    net
        The network.
    reach
        From :func:`network_reach`.
    targets
        Snapped target points (demand); unsnapped targets are never reached.
    access_leg
        Count each target's straight walk from the street against the limit.

    Returns
    -------
    tuple of numpy.ndarray
        ``(source, target, dist_m)`` for every pair within ``reach.limit_m``, sorted by
        source then target, one row per pair (the shortest).
    """
    limit = reach.limit_m
    t_access = _access(targets, access_leg)
    ok = np.flatnonzero(targets.snapped & (t_access <= limit))
    t_edge = targets.edge[ok]
    t_off = targets.offset_m[ok]
    t_len = net.edge_length[t_edge]
    # each target listed at both ends of its edge, with the distance still to walk from there
    end_node = np.concatenate([net.edge_u[t_edge], net.edge_v[t_edge]]).astype(np.int64)
    end_add = np.concatenate([t_off, t_len - t_off]) + np.tile(t_access[ok], 2)
    end_target = np.tile(ok, 2)
    indptr, order = _tiles.index_by(end_node, net.n_nodes)
    left, pos = _tiles.ragged_join(reach.node, indptr)
    entry = order[pos]
    dist = reach.dist_m[left] + end_add[entry]
    keep = dist <= limit
    src = [reach.source[left][keep]]
    tgt = [end_target[entry][keep]]
    dst = [dist[keep]]
    # targets on the very edge a source sits on: walk straight along it
    s_ok = np.flatnonzero(np.isfinite(reach.access_m))
    s_edge = reach.snap.edge[s_ok]
    indptr_e, order_e = _tiles.index_by(t_edge.astype(np.int64), net.n_edges)
    left_e, pos_e = _tiles.ragged_join(s_edge.astype(np.int64), indptr_e)
    t_pos = order_e[pos_e]
    s_pos = s_ok[left_e]
    same = (
        reach.access_m[s_pos]
        + np.abs(reach.snap.offset_m[s_pos] - t_off[t_pos])
        + t_access[ok][t_pos]
    )
    keep_e = same <= limit
    src.append(s_pos[keep_e])
    tgt.append(ok[t_pos][keep_e])
    dst.append(same[keep_e])
    source = np.concatenate(src).astype(np.int64)
    target = np.concatenate(tgt).astype(np.int64)
    dist_all = np.concatenate(dst)
    if len(source) == 0:
        return source, target, dist_all
    # one sort on a single int64 key, then the shortest of each (source, target) run
    key = source * np.int64(max(len(targets), 1)) + target
    order_all = np.argsort(key, kind="stable")
    key = key[order_all]
    first = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))
    shortest = np.minimum.reduceat(dist_all[order_all], first)
    return source[order_all[first]], target[order_all[first]], shortest


def nearest_facility(
    net: WalkNetwork,
    sources: Snap,
    targets: Snap,
    *,
    limit_m: float,
    access_leg: bool = settings.access_leg,
) -> tuple[IntArray, FloatArray]:
    """The nearest source within the limit of every target, and the walk to it.

    One multi-source Dijkstra over the whole network (``min_only``: each node keeps only its
    nearest source), so the cost does not grow with the number of sources. Gives the same
    distances as the minimum over :func:`point_distances`, without listing every pair.

    Parameters
    ----------
    net
        The network.
    sources
        Snapped sources (facilities).
    targets
        Snapped targets (demand points).
    limit_m
        Walking limit in metres.
    access_leg
        Count the straight walks between points and streets, at both ends.

    Returns
    -------
    tuple of numpy.ndarray
        ``(source, dist_m)`` per target: position of the nearest source (``-1`` when none is
        within the limit) and the walking distance (NaN then).
    """
    best = np.full(len(targets), np.inf)
    which = np.full(len(targets), -1, dtype=np.int64)
    access = _access(sources, access_leg)
    usable = np.flatnonzero(sources.snapped & (access <= limit_m))
    t_access = _access(targets, access_leg)
    ok = np.flatnonzero(targets.snapped & (t_access <= limit_m))
    if len(usable) and len(ok):
        n, k = net.n_nodes, len(usable)
        edge = sources.edge[usable]
        off = sources.offset_m[usable]
        csr = net.csr
        indptr = np.concatenate([csr.indptr.astype(np.int64),
                                 csr.indptr[-1] + 2 * np.arange(1, k + 1)])
        ends = np.stack([net.edge_u[edge], net.edge_v[edge]], axis=1).ravel()
        start = np.stack([access[usable] + off,
                          access[usable] + net.edge_length[edge] - off], axis=1).ravel()
        graph = sp.csr_matrix((np.concatenate([csr.data, np.maximum(start, _EPS)]),
                               np.concatenate([csr.indices, ends]), indptr),
                              shape=(n + k, n + k))
        dist, _, origin = csgraph.dijkstra(graph, directed=True, indices=np.arange(n, n + k),
                                           limit=limit_m, min_only=True,
                                           return_predecessors=True)
        t_edge = targets.edge[ok]
        t_off = targets.offset_m[ok]
        for node, along in ((net.edge_u[t_edge], t_off),
                            (net.edge_v[t_edge], net.edge_length[t_edge] - t_off)):
            d = dist[node] + along + t_access[ok]
            better = d < best[ok]
            best[ok[better]] = d[better]
            which[ok[better]] = usable[origin[node[better]] - n]
        # sources on the target's own edge: straight along it
        indptr_e, order_e = _tiles.index_by(t_edge.astype(np.int64), net.n_edges)
        left, pos = _tiles.ragged_join(edge.astype(np.int64), indptr_e)
        t_pos = ok[order_e[pos]]
        d = (access[usable][left] + np.abs(off[left] - targets.offset_m[t_pos])
             + t_access[t_pos])
        by = np.lexsort((d, t_pos))
        first = by[np.concatenate([[True], t_pos[by][1:] != t_pos[by][:-1]])] if len(by) else by
        better = d[first] < best[t_pos[first]]
        best[t_pos[first][better]] = d[first][better]
        which[t_pos[first][better]] = usable[left[first][better]]
    far = best > limit_m
    best[far] = np.nan
    which[far] = -1
    return which, best


def _tile_graph(
    net: WalkNetwork, sub_nodes: IntArray, local: IntArray, *, indptr: IntArray,
    edge: IntArray, start_u: FloatArray, start_v: FloatArray, eps: float,
) -> sp.csr_matrix:
    """CSR matrix of the sub-network on ``sub_nodes`` plus one virtual row per source.

    ``local`` maps a node position to its row (``-1`` outside); ``indptr`` is the network
    CSR's row pointer as int64. Virtual rows ``m..m+k-1`` join each source to both ends of
    its edge (those inside the tile) at their distances (at least ``eps``, so that a
    source on a node keeps an explicit edge).
    """
    csr = net.csr
    m, k = len(sub_nodes), len(edge)
    left, pos = _tiles.ragged_join(sub_nodes, indptr)
    cols = local[csr.indices[pos]]
    keep = cols >= 0
    counts = np.bincount(left[keep], minlength=m)
    lu = local[net.edge_u[edge]]
    lv = local[net.edge_v[edge]]
    vcols = np.stack([lu, lv], axis=1)
    vvals = np.maximum(np.stack([start_u, start_v], axis=1), eps)
    vkeep = vcols >= 0
    indptr = np.concatenate([[0], np.cumsum(np.concatenate([counts, vkeep.sum(axis=1)]))])
    return sp.csr_matrix(
        (
            np.concatenate([csr.data[pos[keep]], vvals[vkeep]]),
            np.concatenate([cols[keep], vcols[vkeep]]),
            indptr,
        ),
        shape=(m + k, m + k),
    )
