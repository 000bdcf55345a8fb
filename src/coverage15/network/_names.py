"""Street names on a network's edges, and a place told by its street and nearest crossing.

OSM ways keep their ``name`` tag through osmnx (a simplified edge that joins ways may hold a
list of names: the first is kept). :func:`edge_names` lines the names up with the edges
:func:`coverage15.network.graph.network_from_graph` keeps; :func:`place_names` tells a planner
where a point is: "南京东路（近河南中路）", coordinates only where no street has a name.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely

__all__ = ["CROSSING_MAX_M", "edge_names", "place_names"]

CROSSING_MAX_M = 400.0  # a crossing farther than this along the street is not "near"


def _one_name(value: Any) -> str | None:
    if isinstance(value, list | tuple):
        value = next((v for v in value if isinstance(v, str) and v.strip()), None)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def edge_names(
    edges: Iterable[tuple[Any, Any, dict[str, Any]]], node_ids: npt.NDArray[np.int64],
    u: npt.NDArray[np.int32], v: npt.NDArray[np.int32],
) -> npt.NDArray[np.object_]:
    """The ``name`` of each kept edge (None where the street has none).

    ``edges`` are the graph's ``(a, b, data)``; kept edges are matched on their end node ids.
    Pieces of a cut loop (new nodes with negative ids) take the name of the loop's other
    pieces.
    """
    by_ends: dict[tuple[int, int], str] = {}
    for a, b, data in edges:
        name = _one_name(data.get("name"))
        if name is not None:
            by_ends.setdefault((min(int(a), int(b)), max(int(a), int(b))), name)
    ids_u, ids_v = node_ids[u], node_ids[v]
    out = np.array([by_ends.get((min(int(a), int(b)), max(int(a), int(b))))
                    for a, b in zip(ids_u, ids_v, strict=True)], dtype=object)
    loose = np.flatnonzero((ids_u < 0) | (ids_v < 0))
    for _ in range(2):  # a loop's end pieces first reach its real node, then its middle
        for e in loose[[out[i] is None for i in loose]]:
            real = int(ids_u[e]) if ids_u[e] >= 0 else int(ids_v[e]) if ids_v[e] >= 0 else None
            name = by_ends.get((real, real)) if real is not None else None
            if name is None:
                ends = [u[e], v[e]]
                touching = loose[np.isin(u[loose], ends) | np.isin(v[loose], ends)]
                name = next((out[t] for t in touching if out[t] is not None), None)
            out[e] = name
    return out


def _lonlat(xy: npt.NDArray[np.float64], crs: str) -> npt.NDArray[np.float64]:
    import pyproj

    t = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    return np.column_stack(t.transform(xy[:, 0], xy[:, 1]))


def place_names(net: Any, xy: npt.NDArray[np.float64]) -> list[tuple[str, str]]:
    """Per point (working CRS): its street and nearest crossing, in Chinese and English.

    ``net`` is a :class:`coverage15.network.graph.WalkNetwork` (not imported: graph imports
    this module).

    The street is the name of the nearest named edge within 50 m; the crossing, the nearest
    node (within :data:`CROSSING_MAX_M`) where a street of another name meets it: "长街
    （近横路）", "长街 near 横路". A point where two named streets meet is "长街与横路交叉口",
    "长街 at 横路". Without a named street near, the point's coordinates (lon, lat) stand in.
    """
    names = net.edge_name if net.edge_name is not None else np.full(net.n_edges, None)
    named = np.flatnonzero(np.array([n is not None for n in names], dtype=bool))
    lonlat = _lonlat(np.asarray(xy, dtype=float).reshape(-1, 2), net.crs)
    points = shapely.points(np.asarray(xy, dtype=float).reshape(-1, 2))
    out: list[tuple[str, str]] = []
    if len(named) == 0:
        return [(f"{x:.5f}, {y:.5f}", f"{x:.5f}, {y:.5f}") for x, y in lonlat]
    tree = shapely.STRtree(net.edge_geometry[named])
    indptr, inc = net.incidence
    for p, (lon, lat) in zip(points, lonlat, strict=True):
        hit = tree.query_nearest(p, max_distance=50.0, all_matches=True)
        if len(hit) == 0:
            out.append((f"{lon:.5f}, {lat:.5f}", f"{lon:.5f}, {lat:.5f}"))
            continue
        # every named street as near as the nearest (within a metre: coordinates that went
        # to degrees and back are not exact)
        near = tree.query(p, predicate="dwithin",
                          distance=float(shapely.distance(p, net.edge_geometry[named[hit[0]]]))
                          + 1.0)
        here = sorted({str(names[named[h]]) for h in near})
        if len(here) > 1:  # at a crossing of named streets
            out.append((f"{here[0]}与{here[1]}交叉口", f"{here[0]} at {here[1]}"))
            continue
        street = here[0]
        ends = np.flatnonzero(np.array([n == street for n in names], dtype=bool))
        nodes = np.unique(np.concatenate([net.edge_u[ends], net.edge_v[ends]]))
        d = np.hypot(*(net.node_xy[nodes] - shapely.get_coordinates(p)).T)
        crossing = None
        for n in nodes[np.argsort(d, kind="stable")]:
            if np.hypot(*(net.node_xy[n] - shapely.get_coordinates(p)[0])) > CROSSING_MAX_M:
                break
            others = sorted({str(names[e]) for e in inc[indptr[n]:indptr[n + 1]]
                             if names[e] is not None and names[e] != street})
            if others:
                crossing = others[0]
                break
        if crossing is None:
            out.append((street, street))
        else:
            out.append((f"{street}（近{crossing}）", f"{street} near {crossing}"))
    return out
