"""Bands around reached street stretches, built for many groups at once.

:func:`coverage15.reach.service_areas.service_area_polygons` uses these helpers. A group's polygon
is the union of its stretches buffered by a band width. Buffering many short stretches and
uniting them costs GEOS work per band end, so stretches are first joined into long chains
(:func:`chain_lines`): at each node, a group's stretch ends that meet there are paired
(straight across a crossing), and each run of paired stretches becomes one LineString,
which may pass the same node more than once. Buffering a chain gives the same band as
buffering its stretches one by one and uniting them (a round join is the union of the two
round caps), up to the rounding of the arcs. Each group's chain bands are then united in one
GEOS pass (:func:`bands_by_group`), groups spread over worker threads (GEOS releases the GIL).
Work is not repeated: groups with exactly the same stretches are built once
(:func:`same_groups`; e.g. facilities on the same node), and a chain shared by several groups
is buffered once.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
import shapely
from scipy.sparse import csgraph

from coverage15._types import IntArray, ObjArray
from coverage15.network._tiles import ranges

__all__ = ["bands_by_group", "chain_lines", "gc_paused", "group_blocks", "on_threads",
           "same_groups", "usable_threads"]

BATCH_PIECES = 5_000  # bands per batch handed to one worker
BLOCK_ROWS = 8_000  # stretches per block of groups whose chains one worker builds
MAX_THREADS = 4
T = TypeVar("T")
R = TypeVar("R")


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for a block that makes many short-lived objects.

    Building polygons makes tens of thousands of shapely geometries. Each counts towards the
    collector's thresholds, so the collector runs dozens of times during the build and now
    and then walks every object the process holds (a loaded networkx graph: a few hundred
    thousand), about 0.1 s each time, for nothing: geometries and arrays hold no reference
    cycles. Reference counting still frees everything as usual. The collector's previous
    state is restored on exit.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def chain_lines(
    lines: ObjArray, group: IntArray, *, node_u: npt.NDArray[np.integer[Any]],
    node_v: npt.NDArray[np.integer[Any]],
    at_u: npt.NDArray[np.bool_], at_v: npt.NDArray[np.bool_],
) -> tuple[ObjArray, IntArray]:
    """Join each group's stretches into chains through the nodes where they meet.

    At every node, the group's stretch ends there are sorted by the direction in which they
    leave the node and each is paired with the one half a turn round (straight across a
    crossing); with an odd number of ends, one is left to end a chain. Following the pairs
    from stretch to stretch gives each chain: as few chains as the group's nodes of odd
    degree allow, so as few band ends as possible. (Which ends are paired changes the
    number of band vertices by a few per cent, never the union.)

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
        ``(chains, chain_group)``: LineStrings and the group of each. Every stretch is in
        exactly one chain, whole; a chain never mixes groups. A chain that comes back to
        where it started is closed.
    """
    n = len(lines)
    if n == 0:
        return lines, group
    coords, index = shapely.get_coordinates(lines, return_index=True)
    counts = np.bincount(index, minlength=n)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    last = first + counts - 1
    # end 2i is stretch i's start (at its edge's u), end 2i + 1 its finish (at v)
    pu, pv = np.flatnonzero(at_u), np.flatnonzero(at_v)
    away = np.concatenate([coords[first[pu] + 1] - coords[first[pu]],
                           coords[last[pv] - 1] - coords[last[pv]]])
    angle = np.arctan2(away[:, 1], away[:, 0])
    end_group = np.concatenate([group[pu], group[pv]])
    end_node = np.concatenate([node_u[pu], node_v[pv]]).astype(np.int64)
    end = np.concatenate([2 * pu, 2 * pv + 1])
    order = _by_node_then_angle(end_group, end_node, angle)
    end_group, end_node, end = end_group[order], end_node[order], end[order]
    new = np.ones(len(order), dtype=bool)
    new[1:] = (np.diff(end_group) != 0) | (np.diff(end_node) != 0)
    start = np.flatnonzero(new)
    size = np.diff(np.append(start, len(order)))
    pos = np.arange(len(order)) - np.repeat(start, size)
    half = np.repeat(size // 2, size)
    # ends sorted by angle round the node: each is paired with the one half a turn round
    # (straight across a crossing); with an odd number, one is left to end a chain
    a = np.flatnonzero(pos < half)
    b = a + half[a]
    partner = np.full(2 * n, -1, dtype=np.int64)
    partner[end[a]] = end[b]
    partner[end[b]] = end[a]
    piece, backwards, chain = _walk(partner)
    # the chains' coordinates: each stretch in walking order, its first vertex dropped after
    # the first stretch of a chain (it is the previous stretch's last)
    cnt = counts[piece]
    step = np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    rev = np.repeat(backwards, cnt)
    step = np.where(rev, np.repeat(cnt - 1, cnt) - step, step)
    opens = np.ones(len(piece), dtype=bool)
    opens[1:] = chain[1:] != chain[:-1]
    entry_vertex = step == np.where(rev, np.repeat(cnt - 1, cnt), 0)
    keep = ~(entry_vertex & ~np.repeat(opens, cnt))
    xy = coords[(np.repeat(first[piece], cnt) + step)[keep]]
    chains = shapely.linestrings(xy, indices=np.repeat(chain, cnt)[keep])
    return chains, group[piece[opens]]


def _by_node_then_angle(group: IntArray, node: IntArray, angle: npt.NDArray[np.float64],
                        ) -> IntArray:
    """``lexsort((angle, node, group))``, as one argsort of a float key when that is exact.

    The key is ``(group * nodes + node) * 8 + angle + pi``: the angle (in ``[0, 2 pi]``) sits
    below the integer part, so the integer part must be well inside float precision.
    """
    if len(group) == 0:
        return np.arange(0, dtype=np.int64)
    nodes = int(node.max()) + 1
    if (int(group.max()) + 1) * nodes >= 2**36:  # key < 2**39: angles to 2**-13 rad
        return np.lexsort((angle, node, group))
    key = (group * nodes + node).astype(np.float64) * 8.0 + (angle + np.pi)
    return np.argsort(key, kind="stable")


def _walk(partner: IntArray) -> tuple[IntArray, npt.NDArray[np.bool_], IntArray]:
    """Order pieces along the chains their paired ends form.

    ``partner[e]`` is the end paired with end ``e`` (-1: none); piece ``i`` has ends ``2i``
    and ``2i + 1``. Returns ``(piece, backwards, chain)`` in walking order: chain by chain,
    each piece once, ``backwards`` when it is walked from end ``2i + 1`` to ``2i``.
    """
    n = len(partner) // 2
    ends = np.arange(2 * n)
    paired = partner >= 0
    a = ends[paired & (ends < partner)]
    link = sp.coo_matrix((np.ones(len(a)), (a // 2, partner[a] // 2)), shape=(n, n))
    n_chains, chain_of = csgraph.connected_components(link, directed=False)
    # each chain is walked from its lowest free end, a closed one from its lowest piece
    entry = np.full(n_chains, 2 * n, dtype=np.int64)
    free = ends[~paired]
    np.minimum.at(entry, chain_of[free // 2], free)
    closed = entry == 2 * n
    lowest = np.full(n_chains, n, dtype=np.int64)
    np.minimum.at(lowest, chain_of, np.arange(n))
    entry[closed] = 2 * lowest[closed]
    # a walk state is the end a piece is entered by; it leaves by the other end and enters
    # the next piece by the end paired with that one
    nxt = partner[ends ^ 1].copy()
    e = entry[closed]
    nxt[partner[e] ^ 1] = -1  # closed chains end where they started, in both directions
    nxt[e ^ 1] = -1
    # pointer jumping: each state's last state and how many steps away it is
    jump, steps, tail = nxt.copy(), (nxt >= 0).astype(np.int64), ends.copy()
    while True:
        live = np.flatnonzero(jump >= 0)
        if len(live) == 0:
            break
        to = jump[live]
        steps[live] += steps[to]
        tail[live] = tail[to]
        jump[live] = jump[to]
    # keep the states of the walk that starts at the entry
    walked = ends[tail == tail[entry[chain_of[ends // 2]]]]
    piece = walked // 2
    rank = steps[entry[chain_of[piece]]] - steps[walked]
    order = np.lexsort((rank, chain_of[piece]))
    walked = walked[order]
    return walked // 2, (walked % 2) == 1, chain_of[walked // 2].astype(np.int64)


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
    keys = (group, *columns)
    order = (np.arange(len(group)) if _rows_sorted(keys)  # as reached_intervals gives them
             else np.lexsort(keys[::-1]))
    starts = np.concatenate([[0], np.cumsum(np.bincount(group, minlength=n_groups))])
    sorted_cols = [np.ascontiguousarray(c[order]) for c in columns]
    seen: dict[bytes, int] = {}
    rep = np.empty(n_groups, dtype=np.int64)
    for g in range(n_groups):
        a, b = starts[g], starts[g + 1]
        key = b"".join(c[a:b].tobytes() for c in sorted_cols)
        rep[g] = seen.setdefault(key, g)
    return rep


def _rows_sorted(keys: tuple[npt.NDArray[Any], ...]) -> bool:
    """Whether the rows ``zip(*keys)`` are in lexicographic order already."""
    if len(keys[0]) < 2:
        return True
    undecided = np.ones(len(keys[0]) - 1, dtype=bool)  # equal so far
    for k in keys:
        if (undecided & (k[1:] < k[:-1])).any():
            return False
        undecided &= k[1:] == k[:-1]
    return True


def usable_threads(threads: int | None) -> int:
    """Worker threads: ``threads`` if given, else the usable CPUs (at most ``MAX_THREADS``)."""
    if threads is not None:
        return max(1, int(threads))
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count() or 1
    return max(1, min(usable, MAX_THREADS))


def group_blocks(group: IntArray, rows: int | None = None) -> list[slice]:
    """Consecutive slices of about ``rows`` rows (``BLOCK_ROWS``), never splitting a group.

    ``group`` must be sorted. The blocks depend on the rows only, not on the number of
    threads, so results built block by block are the same on any number of threads.
    """
    if len(group) == 0:
        return []
    rows = BLOCK_ROWS if rows is None else rows
    starts = np.concatenate([[0], np.flatnonzero(np.diff(group)) + 1])
    cuts = starts[np.unique(starts // rows, return_index=True)[1]]
    ends = np.append(cuts[1:], len(group))
    return [slice(int(a), int(b)) for a, b in zip(cuts, ends, strict=True)]


def on_threads(fn: Callable[[T], R], items: Sequence[T], workers: int) -> list[R]:
    """``[fn(item) for item in items]``, on ``workers`` threads when there is more than one."""
    if workers > 1 and len(items) > 1:
        with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
            return list(pool.map(fn, items))
    return [fn(item) for item in items]


def bands_by_group(
    lines: ObjArray, group: IntArray, n_groups: int, *, buffer_m: float, quad_segs: int,
    threads: int | None = None, wkb: npt.NDArray[np.object_] | None = None,
) -> ObjArray:
    """Per group, the union of its ``lines`` buffered by ``buffer_m`` (``None``: no lines).

    Lines that are exactly the same (same coordinates; a chain shared by several groups) are
    buffered once; ``wkb`` (``shapely.to_wkb(lines)``, if the caller has it) tells them. A
    group's bands are then united in one GEOS pass: buffering their MultiPolygon by 0 nodes
    every ring once and keeps what lies inside any band, where ``shapely.union_all`` unites
    them pair by pair (about 1.5 times the work on city networks; the results are the same
    polygons). Groups are cut into batches of similar size, run on worker threads.
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
    keys = shapely.to_wkb(lines) if wkb is None else wkb
    same = np.fromiter((first.setdefault(k, len(first)) for k in keys),
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
        solid = ~shapely.is_empty(bands)  # (an empty line has an empty band)
        owner, bands = np.repeat(np.arange(len(members)), size)[solid], bands[solid]
        if (shapely.get_type_id(bands) != shapely.GeometryType.POLYGON).any():
            # a chain's band is one Polygon; other lines may give MultiPolygons
            bands, part_of = shapely.get_parts(bands, return_index=True)
            owner = owner[part_of]
        who, dense = np.unique(owner, return_inverse=True)
        multi = shapely.multipolygons(bands, indices=dense.ravel())
        result = np.full(len(members), shapely.Polygon(), dtype=object)
        result[who] = shapely.buffer(multi, 0.0)
        return result

    buffered = np.concatenate(on_threads(buffer_chunk, chunks, workers))
    done = on_threads(one_batch, batches, workers)
    for members, result in zip(batches, done, strict=True):
        out[members] = result
    return out
