"""Cleaning a street graph's edge arrays: loops, orientation, fragments.

:func:`coverage15.network.graph.network_from_graph` uses these on the arrays it reads from a graph;
each takes and returns plain arrays (node positions index ``node_ids`` and ``xy``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
import shapely
from shapely.ops import substring

from coverage15._errors import NetworkError

__all__ = ["drop_fragments", "orient", "split_loops"]


def split_loops(
    u: npt.NDArray[np.int32], v: npt.NDArray[np.int32], geometry: npt.NDArray[np.object_], *,
    node_ids: npt.NDArray[np.int64], xy: npt.NDArray[np.float64],
) -> tuple[Any, ...]:
    """Cut each street that leaves a node and comes back to it into three edges.

    A closed way joined to the rest at one node (a loop road, a service road round a block)
    is an edge from that node to itself. The distance code works on edges between two
    different nodes, so each loop (one of its two directions) is cut at a third and two
    thirds of its length, at two new nodes (negative ids). Every metre of it stays
    walkable. Loops shorter than 1 m, or whose drawing does not start at their node, are
    dropped; the last value returned is how many.
    """
    loop = np.flatnonzero(u == v)
    if len(loop) == 0:
        return u, v, geometry, node_ids, xy, 0
    start = shapely.get_coordinates(shapely.get_point(geometry[loop], 0))
    usable = ((shapely.length(geometry[loop]) >= 1.0)
              & (np.hypot(*(start - xy[u[loop]]).T) < 1e-6))  # drawn from its node
    # a two-way loop comes in both directions: one per node and set of vertices (a loop
    # and its reverse have the same vertices; two different loops at a node do not)
    seen: set[tuple[int, bytes]] = set()
    kept = []
    for e in loop[usable]:
        vertices = np.round(shapely.get_coordinates(geometry[e]), 2)
        key = (int(u[e]), np.unique(vertices, axis=0).tobytes())
        if key not in seen:
            seen.add(key)
            kept.append(e)
    loop = np.asarray(kept, dtype=np.int64)
    k = len(loop)
    n = len(node_ids)
    a, b = n + 2 * np.arange(k), n + 2 * np.arange(k) + 1
    cut = [(0.0, 1 / 3), (1 / 3, 2 / 3), (2 / 3, 1.0)]
    pieces = np.array([substring(geometry[e], lo, hi, normalized=True)
                       for e in loop for lo, hi in cut], dtype=object)
    ends = np.column_stack([u[loop], a, b, u[loop]]).astype(np.int32)
    new_u, new_v = ends[:, :3].ravel(), ends[:, 1:].ravel()
    points = shapely.line_interpolate_point(geometry[np.repeat(loop, 2)],
                                            np.tile([1 / 3, 2 / 3], k), normalized=True)
    low = min(int(node_ids.min()), 0)
    new_ids = low - 1 - np.arange(2 * k, dtype=np.int64)
    rest = u != v
    return (np.concatenate([u[rest], new_u]), np.concatenate([v[rest], new_v]),
            np.concatenate([geometry[rest], pieces]), np.concatenate([node_ids, new_ids]),
            np.concatenate([xy, shapely.get_coordinates(points)]), int((~usable).sum()))


def drop_fragments(
    u: npt.NDArray[np.int32], v: npt.NDArray[np.int32], geometry: npt.NDArray[np.object_],
    lengths: npt.NDArray[np.float64], *, node_ids: npt.NDArray[np.int64],
    xy: npt.NDArray[np.float64], min_component_m: float,
) -> tuple[Any, ...]:
    """Drop the edges of connected parts shorter than ``min_component_m`` in total.

    Returns the arrays without them (nodes renumbered) and, last, how many edges went.
    """
    n = len(node_ids)
    adjacency = sp.coo_matrix((np.ones(len(u)), (u, v)), shape=(n, n))
    _, labels = sp.csgraph.connected_components(adjacency, directed=False)
    total = np.bincount(labels[u], weights=lengths, minlength=labels.max() + 1)
    good_component = total >= min_component_m
    keep_edge = good_component[labels[u]]
    used = np.zeros(n, dtype=bool)
    used[u[keep_edge]] = True
    used[v[keep_edge]] = True
    dropped = int((~keep_edge).sum())
    if not keep_edge.any():
        msg = f"every part of the street network is shorter than {min_component_m:.0f} m"
        raise NetworkError(msg)
    new_pos = np.cumsum(used) - 1
    return (
        new_pos[u[keep_edge]].astype(np.int32),
        new_pos[v[keep_edge]].astype(np.int32),
        geometry[keep_edge],
        lengths[keep_edge],
        node_ids[used],
        xy[used],
        dropped,
    )


def orient(
    geometry: npt.NDArray[np.object_], u_xy: npt.NDArray[np.float64],
    v_xy: npt.NDArray[np.float64],
) -> npt.NDArray[np.object_]:
    """Reverse the geometries that run from ``v`` to ``u``."""
    first = shapely.get_coordinates(shapely.get_point(geometry, 0))
    to_u = np.hypot(*(first - u_xy).T)
    to_v = np.hypot(*(first - v_xy).T)
    flip = to_v < to_u
    out = geometry.copy()
    out[flip] = shapely.reverse(geometry[flip])
    return out
