"""A network on disk that each Dask worker cuts its own tiles from.

:func:`write_store` writes a network once as flat ``.npy`` arrays in a folder, its edges
listed cell by cell of a coarse grid (an edge once for every cell its bounding box touches),
each edge record carrying what a tile needs: its global position, end nodes (position, id
and coordinates), length and LineString coordinates. :func:`load_tile` memory-maps the folder
for one cut, reads only the cells under a box and unmaps it, so a worker's memory follows
the size of its tile, not of the network, and the main process ships a path and a box, not a
sub-network.

``load_tile(store, box)`` gives exactly what :func:`subnetwork` cuts from the network in
memory: the edges whose geometry intersects ``box``, in the network's order, and their end
nodes, in the network's order.

A network built by :func:`coverage15.network.graph.build_walk_network` (its ``source`` is a
digest of its content) is stored once under the cache folder and reused by later runs; any
other network is written to a temporary folder for the run.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import numpy.typing as npt
import shapely

from coverage15 import settings
from coverage15.network.graph import WalkNetwork

__all__ = ["TileStore", "load_tile", "store_for", "subnetwork", "write_store"]

STORE_VERSION = 1
MAX_CELLS_PER_SIDE = 512
MIN_CELL_M = 250.0
_ARRAYS = ("edge", "u", "v", "u_id", "v_id", "u_xy", "v_xy", "length", "coord_start",
           "coords", "cell_start")


@dataclass(frozen=True)
class TileStore:
    """Where a stored network is (a folder every worker can read) and its grid."""

    path: str
    crs: str
    origin: tuple[float, float]
    cell_m: float
    cols: int
    rows: int
    extent_wkb: bytes


def subnetwork(net: WalkNetwork, box: shapely.Geometry) -> WalkNetwork:
    """The edges touching ``box`` (and their end nodes) as a network of its own."""
    edges = np.sort(net.tree.query(box, predicate="intersects"))
    nodes = np.unique(np.concatenate([net.edge_u[edges], net.edge_v[edges]]))
    local = np.full(net.n_nodes, -1, dtype=np.int64)
    local[nodes] = np.arange(len(nodes))
    return WalkNetwork(
        crs=net.crs,
        node_ids=net.node_ids[nodes],
        node_xy=net.node_xy[nodes],
        edge_u=local[net.edge_u[edges]].astype(np.int32),
        edge_v=local[net.edge_v[edges]].astype(np.int32),
        edge_length=net.edge_length[edges],
        edge_geometry=net.edge_geometry[edges],
        extent=net.extent,
        edge_name=None if net.edge_name is None else net.edge_name[edges],
    )


def _grid(bounds: npt.NDArray[np.float64]) -> tuple[tuple[float, float], float, int, int]:
    lo = bounds[:2]
    span = np.maximum(bounds[2:] - lo, 1.0)
    cell = max(MIN_CELL_M, float(span.max()) / MAX_CELLS_PER_SIDE)
    cols, rows = (int(c) for c in np.ceil(span / cell).astype(int) + 1)
    return (float(lo[0]), float(lo[1])), cell, cols, rows


def write_store(net: WalkNetwork, folder: Path) -> TileStore:
    """Write ``net`` as a tile store into ``folder`` (created; written atomically)."""
    coords, index = shapely.get_coordinates(net.edge_geometry, return_index=True)
    counts = np.bincount(index, minlength=net.n_edges)
    first = np.concatenate([[0], np.cumsum(counts)])
    bounds = shapely.bounds(net.edge_geometry)
    (ox, oy), cell, cols, rows = _grid(np.array([bounds[:, 0].min(), bounds[:, 1].min(),
                                                 bounds[:, 2].max(), bounds[:, 3].max()]))
    i0 = np.floor((bounds[:, 0] - ox) / cell).astype(np.int64)
    i1 = np.floor((bounds[:, 2] - ox) / cell).astype(np.int64)
    j0 = np.floor((bounds[:, 1] - oy) / cell).astype(np.int64)
    j1 = np.floor((bounds[:, 3] - oy) / cell).astype(np.int64)
    ni, nj = i1 - i0 + 1, j1 - j0 + 1
    per_edge = ni * nj
    edge = np.repeat(np.arange(net.n_edges, dtype=np.int64), per_edge)
    k = np.arange(len(edge)) - np.repeat(np.cumsum(per_edge) - per_edge, per_edge)
    ci = i0[edge] + k % ni[edge]
    cj = j0[edge] + k // ni[edge]
    cell_of = cj * cols + ci
    order = np.lexsort((edge, cell_of))
    edge, cell_of = edge[order], cell_of[order]
    cell_start = np.searchsorted(cell_of, np.arange(cols * rows + 1)).astype(np.int64)
    rec_counts = counts[edge]
    coord_start = np.concatenate([[0], np.cumsum(rec_counts)]).astype(np.int64)
    take = (np.repeat(first[edge], rec_counts)
            + np.arange(coord_start[-1]) - np.repeat(coord_start[:-1], rec_counts))
    u, v = net.edge_u[edge].astype(np.int64), net.edge_v[edge].astype(np.int64)
    arrays = {"edge": edge, "u": u, "v": v, "u_id": net.node_ids[u], "v_id": net.node_ids[v],
              "u_xy": net.node_xy[u], "v_xy": net.node_xy[v], "length": net.edge_length[edge],
              "coord_start": coord_start, "coords": coords[take], "cell_start": cell_start}
    store = TileStore(path=str(folder), crs=net.crs, origin=(ox, oy), cell_m=cell, cols=cols,
                      rows=rows, extent_wkb=shapely.to_wkb(net.extent))
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}-"))
    try:
        for name, array in arrays.items():
            np.save(tmp / f"{name}.npy", np.ascontiguousarray(array))
        meta = {"version": STORE_VERSION, "crs": net.crs, "origin": [ox, oy], "cell_m": cell,
                "cols": cols, "rows": rows, "n_nodes": net.n_nodes, "n_edges": net.n_edges}
        (tmp / "meta.json").write_text(json.dumps(meta))
        (tmp / "extent.wkb").write_bytes(store.extent_wkb)
        try:
            tmp.replace(folder)
        except OSError:  # written meanwhile by another run: use that one
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return store


def _read_store(folder: Path) -> TileStore | None:
    try:
        meta = json.loads((folder / "meta.json").read_text())
        extent = (folder / "extent.wkb").read_bytes()
    except (OSError, ValueError):
        return None
    if meta.get("version") != STORE_VERSION:
        return None
    return TileStore(path=str(folder), crs=meta["crs"], origin=tuple(meta["origin"]),
                     cell_m=float(meta["cell_m"]), cols=int(meta["cols"]),
                     rows=int(meta["rows"]), extent_wkb=extent)


def store_for(net: WalkNetwork) -> tuple[TileStore, Path | None]:
    """The tile store of ``net``: cached by content, or written now to a temporary folder.

    Returns the store and the temporary folder to delete after the run (None when cached).
    """
    if net.source is not None and settings.use_cache:
        folder = Path(settings.cache_folder) / "tiles" / f"{net.source}-v{STORE_VERSION}"
        found = _read_store(folder)
        if found is not None:
            return found, None
        try:
            return write_store(net, folder), None
        except OSError:  # a read-only cache folder: fall through to a temporary one
            pass
    tmp = Path(tempfile.mkdtemp(prefix="coverage15-tiles-"))
    return write_store(net, tmp / "store"), tmp


def _open(path: str) -> dict[str, npt.NDArray[np.generic]]:
    """The store's arrays, memory-mapped for one tile's cut.

    Mapped per call, not once per worker: a mapping kept open keeps every page a worker has
    read resident in it, so after a few tiles its memory held most of the store whatever the
    tile's size. Unmapped when the cut is done (every array taken from it is a copy), a
    worker holds the pages of the tile it is working on. Mapping the files costs a few
    milliseconds.
    """
    return {name: np.load(Path(path) / f"{name}.npy", mmap_mode="r") for name in _ARRAYS}


def load_tile(store: TileStore, box: shapely.Geometry) -> WalkNetwork:
    """The sub-network of the stored network within ``box`` (as :func:`subnetwork` cuts it)."""
    a = _open(store.path)
    minx, miny, maxx, maxy = shapely.bounds(box)
    ox, oy = store.origin
    i0, i1 = (int(np.clip(np.floor((x - ox) / store.cell_m), 0, store.cols - 1))
              for x in (minx, maxx))
    j0, j1 = (int(np.clip(np.floor((y - oy) / store.cell_m), 0, store.rows - 1))
              for y in (miny, maxy))
    starts = a["cell_start"]
    pieces = [np.arange(starts[j * store.cols + i0], starts[j * store.cols + i1 + 1])
              for j in range(j0, j1 + 1)]
    rec = np.concatenate(pieces) if pieces else np.array([], dtype=np.int64)
    edge = np.asarray(a["edge"][rec])
    edge, first = np.unique(edge, return_index=True)  # sorted: the network's order
    rec = rec[first]
    cs = np.asarray(a["coord_start"][rec])
    ce = np.asarray(a["coord_start"][rec + 1])
    n_coords = ce - cs
    take = np.repeat(cs, n_coords) + np.arange(n_coords.sum()) - np.repeat(
        np.cumsum(n_coords) - n_coords, n_coords)
    geoms = shapely.linestrings(np.asarray(a["coords"][take]),
                                indices=np.repeat(np.arange(len(rec)), n_coords))
    keep = shapely.intersects(geoms, box)
    rec, geoms = rec[keep], geoms[keep]
    u, v = np.asarray(a["u"][rec]), np.asarray(a["v"][rec])
    nodes, where = np.unique(np.concatenate([u, v]), return_index=True)
    ids = np.concatenate([np.asarray(a["u_id"][rec]), np.asarray(a["v_id"][rec])])
    xy = np.concatenate([np.asarray(a["u_xy"][rec]), np.asarray(a["v_xy"][rec])])
    return WalkNetwork(
        crs=store.crs,
        node_ids=ids[where],
        node_xy=xy[where],
        edge_u=np.searchsorted(nodes, u).astype(np.int32),
        edge_v=np.searchsorted(nodes, v).astype(np.int32),
        edge_length=np.asarray(a["length"][rec], dtype=np.float64),
        edge_geometry=geoms,
        extent=_extent(store.extent_wkb),
    )


@cache
def _extent(wkb: bytes) -> shapely.Geometry:
    return shapely.from_wkb(wkb)
