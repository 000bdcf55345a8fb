"""Bands around reached street stretches, built for many groups at once.

:func:`coverage15.service_areas.service_area_polygons` uses these helpers. A group's polygon
is the union of its stretches buffered by a band width. Unioning one small band per stretch
costs GEOS a fixed overhead per pairwise union, so stretches are first joined into longer
chains: at each node, a group's stretches that meet there are paired, the straightest
continuations first, and each chain becomes one LineString (``shapely.line_merge``). Buffering
a chain gives the same band as buffering its stretches one by one and unioning them (a round
join is the union of the two round caps), up to the rounding of the arcs. The per-group unions
then run as vectorised GEOS calls on padded 2-D batches, spread over worker threads (GEOS
releases the GIL). Work is not repeated: groups with exactly the same stretches are built once
(:func:`same_groups`; e.g. facilities on the same node), and a chain shared by several groups
is buffered once.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
import shapely
from scipy.sparse import csgraph

from ._tiles import ranges

__all__ = ["bands_by_group", "chain_lines", "same_groups", "usable_threads"]

IntArray = npt.NDArray[np.int64]
ObjArray = npt.NDArray[np.object_]
BATCH_PIECES = 5_000  # lines per padded batch handed to one vectorised buffer and union
MAX_THREADS = 4


def chain_lines(
    lines: ObjArray, group: IntArray, *, node_u: npt.NDArray[np.integer[Any]],
    node_v: npt.NDArray[np.integer[Any]],
    at_u: npt.NDArray[np.bool_], at_v: npt.NDArray[np.bool_],
) -> tuple[ObjArray, IntArray]:
    """Join each group's stretches into chains through the nodes where they meet.

    Parameters
    ----------
    lines
        One LineString per stretch, running from its edge's ``u`` end towards ``v``.
    group
        Group of each stretch.
    node_u, node_v
        The stretch's edge ends (node positions).
    at_u, at_v
        Whether the stretch reaches that end of its edge (so it touches the node there; its
        end point must then be the edge's end vertex exactly).

    Returns
    -------
    tuple
        ``(chains, chain_group)``: merged LineStrings and the group of each. Every stretch is
        in exactly one chain; a chain never mixes groups.
    """
    n = len(lines)
    if n == 0:
        return lines, group
    coords, index = shapely.get_coordinates(lines, return_index=True)
    counts = np.bincount(index, minlength=n)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    last = first + counts - 1
    pu, pv = np.flatnonzero(at_u), np.flatnonzero(at_v)
    # direction in which each stretch leaves the node it touches
    away = np.concatenate([coords[first[pu] + 1] - coords[first[pu]],
                           coords[last[pv] - 1] - coords[last[pv]]])
    angle = np.arctan2(away[:, 1], away[:, 0])
    end_group = np.concatenate([group[pu], group[pv]])
    end_node = np.concatenate([node_u[pu], node_v[pv]]).astype(np.int64)
    end_piece = np.concatenate([pu, pv])
    order = np.lexsort((angle, end_node, end_group))
    end_group, end_node, end_piece = end_group[order], end_node[order], end_piece[order]
    new = np.ones(len(order), dtype=bool)
    new[1:] = (np.diff(end_group) != 0) | (np.diff(end_node) != 0)
    start = np.flatnonzero(new)
    size = np.diff(np.append(start, len(order)))
    pos = np.arange(len(order)) - np.repeat(start, size)
    half = np.repeat(size // 2, size)
    # ends sorted by angle round the node: the one half a turn round is the straightest
    a = np.flatnonzero(pos < half)
    b = a + half[a]
    link = sp.coo_matrix((np.ones(len(a)), (end_piece[a], end_piece[b])), shape=(n, n))
    _, chain = csgraph.connected_components(link, directed=False)
    by_chain = np.argsort(chain, kind="stable")
    present, dense = np.unique(chain[by_chain], return_inverse=True)
    merged = shapely.line_merge(shapely.multilinestrings(lines[by_chain],
                                                         indices=dense.ravel()))
    parts, which = shapely.get_parts(merged, return_index=True)
    chain_group = np.empty(len(present), dtype=np.int64)
    chain_group[dense.ravel()] = group[by_chain]
    return parts, chain_group[which]


def same_groups(group: IntArray, n_groups: int, *columns: npt.NDArray[Any]) -> IntArray:
    """Per group, the first group whose rows are exactly the same (itself if none before).

    Parameters
    ----------
    group
        Group of each row.
    n_groups
        Number of groups.
    *columns
        The rows' values (e.g. edge, start, end); two groups are the same when they hold the
        same set of rows, compared exactly.

    Returns
    -------
    numpy.ndarray
        ``rep`` with ``rep[g] <= g``; groups without rows all map to the first such group.
    """
    order = np.lexsort((*columns[::-1], group))
    starts = np.concatenate([[0], np.cumsum(np.bincount(group, minlength=n_groups))])
    sorted_cols = [np.ascontiguousarray(c[order]) for c in columns]
    seen: dict[bytes, int] = {}
    rep = np.empty(n_groups, dtype=np.int64)
    for g in range(n_groups):
        a, b = starts[g], starts[g + 1]
        key = b"".join(c[a:b].tobytes() for c in sorted_cols)
        rep[g] = seen.setdefault(key, g)
    return rep


def usable_threads(threads: int | None) -> int:
    """Worker threads: ``threads`` if given, else the usable CPUs (at most ``MAX_THREADS``)."""
    if threads is not None:
        return max(1, int(threads))
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count() or 1
    return max(1, min(usable, MAX_THREADS))


def bands_by_group(
    lines: ObjArray, group: IntArray, n_groups: int, *, buffer_m: float, quad_segs: int,
    threads: int | None = None,
) -> ObjArray:
    """Per group, the union of its ``lines`` buffered by ``buffer_m`` (``None``: no lines).

    Groups are sorted by size and cut into padded 2-D batches of similar width (little
    padding); each batch is buffered and unioned by vectorised GEOS calls
    (``shapely.union_all(..., axis=1)``), batches running on worker threads. Lines that are
    exactly the same (same coordinates; a chain shared by several groups) are buffered once.
    """
    out = np.full(n_groups, None, dtype=object)
    counts = np.bincount(group, minlength=n_groups)
    order = np.argsort(group, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)])
    present = np.flatnonzero(counts > 0)
    if len(present) == 0:
        return out
    workers = usable_threads(threads)
    present = present[np.argsort(-counts[present], kind="stable")]
    batch_size = min(BATCH_PIECES, max(1, int(counts[present].sum()) // (4 * workers)))
    batch_of = np.cumsum(counts[present]) // batch_size
    batches = np.split(present, np.flatnonzero(np.diff(batch_of)) + 1)
    # buffer each distinct line once
    first: dict[bytes, int] = {}
    same = np.fromiter((first.setdefault(k, len(first)) for k in shapely.to_wkb(lines)),
                       dtype=np.int64, count=len(lines))
    distinct = np.empty(len(first), dtype=np.int64)
    distinct[same] = np.arange(len(lines))
    chunks = np.array_split(lines[distinct], max(1, min(4 * workers, len(distinct) // 500)))

    def buffer_chunk(chunk: ObjArray) -> ObjArray:
        bands: ObjArray = shapely.buffer(chunk, buffer_m, quad_segs=quad_segs)
        return bands

    def one_batch(members: IntArray) -> ObjArray:
        size = counts[members]
        bands = buffered[same[order[ranges(starts[members], starts[members + 1])]]]
        if size.max() == 1:
            return bands
        grid = np.full((len(members), int(size.max())), None, dtype=object)
        grid[np.repeat(np.arange(len(members)), size),
             ranges(np.zeros(len(members), dtype=np.int64), size)] = bands
        result: ObjArray = shapely.union_all(grid, axis=1)
        return result

    if workers > 1 and len(batches) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            buffered = np.concatenate(list(pool.map(buffer_chunk, chunks)))
            done = list(pool.map(one_batch, batches))
    else:
        buffered = np.concatenate([buffer_chunk(c) for c in chunks])
        done = [one_batch(b) for b in batches]
    for members, result in zip(batches, done, strict=True):
        out[members] = result
    return out
