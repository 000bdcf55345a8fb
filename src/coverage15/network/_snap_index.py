"""Exact nearest-street search for many points at once, through a grid of street segments.

:func:`coverage15.network.graph.snap_points` needs, for every point, the nearest edge and the
position on it. GEOS's STRtree nearest search costs several microseconds per point. Here every
straight segment of every edge is filed under the grid cells its bounding box touches; a point
looks only at the segments filed in its own cell and the eight around it, all at once in numpy.
Every segment closer to the point than one cell size is among those, so a nearest segment found
closer than a cell size is the nearest of all. Points with no such segment (farther than a cell
from every street) are left for the caller's STRtree.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely

from coverage15._types import FloatArray, IntArray
from coverage15.network._tiles import ranges

__all__ = ["SegmentGrid", "segment_grid", "z_order"]

CELL_M = 100.0
CHUNK = 50_000  # points per vectorised batch (about 40 candidate segments each)

_GRIDS: weakref.WeakKeyDictionary[Any, SegmentGrid] = weakref.WeakKeyDictionary()


class SegmentGrid:
    """The segments of a set of LineStrings, filed under square grid cells.

    Parameters
    ----------
    geometry
        LineStrings (the network's edges).
    cell_m
        Cell size: the distance within which an answer is certain.
    """

    def __init__(self, geometry: npt.NDArray[np.object_], cell_m: float = CELL_M) -> None:
        coords, index = shapely.get_coordinates(geometry, return_index=True)
        inner = index[1:] == index[:-1]
        a = coords[:-1][inner]
        b = coords[1:][inner]
        self.ax, self.ay = a[:, 0].copy(), a[:, 1].copy()
        self.dx, self.dy = b[:, 0] - a[:, 0], b[:, 1] - a[:, 1]
        self.edge = index[:-1][inner].astype(np.int64)
        self.length = np.hypot(self.dx, self.dy)
        self.inv_len2 = np.divide(1.0, self.length**2, out=np.zeros_like(self.length),
                                  where=self.length > 0)
        before = np.cumsum(self.length) - self.length
        run = np.flatnonzero(np.concatenate([[True], self.edge[1:] != self.edge[:-1]]))
        size = np.diff(np.append(run, len(self.edge)))
        self.start_m = before - np.repeat(before[run], size)  # along the edge, at the segment
        self.cell_m = cell_m
        self.origin = coords.min(axis=0) if len(coords) else np.zeros(2)
        lo = np.floor((np.minimum(a, b) - self.origin) / cell_m).astype(np.int64)
        hi = np.floor((np.maximum(a, b) - self.origin) / cell_m).astype(np.int64)
        self.n_rows = int(hi[:, 1].max()) + 1 if len(hi) else 1
        span = hi - lo + 1
        per_seg = span[:, 0] * span[:, 1]
        one = np.flatnonzero(per_seg == 1)  # most segments lie in a single cell
        many = np.flatnonzero(per_seg > 1)
        seg = np.repeat(many, per_seg[many])
        k = ranges(np.zeros(len(many), dtype=np.int64), per_seg[many])
        rows = span[seg, 1]
        key = np.concatenate([lo[one, 0] * self.n_rows + lo[one, 1],
                              (lo[seg, 0] + k // rows) * self.n_rows + lo[seg, 1] + k % rows])
        seg = np.concatenate([one, seg])
        order = np.argsort(key, kind="stable")
        self.keys = key[order]
        self.seg = seg[order]

    def nearest(self, xy: FloatArray) -> tuple[IntArray, FloatArray, FloatArray,
                                                npt.NDArray[np.bool_]]:
        """Nearest edge, position along it, distance, and whether that answer is certain.

        Parameters
        ----------
        xy
            Point coordinates, shape ``(n, 2)``.

        Returns
        -------
        tuple
            ``(edge, offset_m, dist_m, sure)``; where ``sure`` is False the other values are
            meaningless (``edge == -1``) and the point needs another search.
        """
        n = len(xy)
        edge = np.full(n, -1, dtype=np.int64)
        offset = np.full(n, np.nan)
        dist = np.full(n, np.inf)
        sure = np.zeros(n, dtype=bool)
        # first the point's own cell only, then the 3 x 3 block for the points still unsure
        todo = np.arange(n)
        for ring in (0, 1):
            for lo in range(0, len(todo), CHUNK):
                part = todo[lo:lo + CHUNK]
                e, o, d, certain = self._search(xy[part], ring)
                edge[part], offset[part], dist[part], sure[part] = e, o, d, certain
            todo = np.flatnonzero(~sure)
            if len(todo) == 0:
                break
        edge[~sure] = -1
        return edge, offset, dist, sure

    def _search(self, xy: FloatArray, ring: int) -> tuple[IntArray, FloatArray, FloatArray,
                                                          npt.NDArray[np.bool_]]:
        """Nearest among the segments filed within ``ring`` cells of each point's cell."""
        n = len(xy)
        rel = (np.nan_to_num(xy, nan=-1e12) - self.origin) / self.cell_m
        cell = np.clip(np.floor(rel), -2**40, 2**40).astype(np.int64)
        # every segment closer than this is filed in the searched cells
        frac = rel - cell
        certain_m = (ring + np.minimum(frac, 1.0 - frac).min(axis=1)) * self.cell_m
        r0 = np.clip(cell[:, 1] - ring, 0, self.n_rows - 1)
        r1 = np.clip(cell[:, 1] + ring, 0, self.n_rows - 1)
        rows_ok = (cell[:, 1] + ring >= 0) & (cell[:, 1] - ring <= self.n_rows - 1)
        width = 2 * ring + 1
        first = np.empty((n, width), dtype=np.int64)
        last = np.empty((n, width), dtype=np.int64)
        for j in range(width):
            col = (cell[:, 0] + j - ring) * self.n_rows
            first[:, j] = np.searchsorted(self.keys, col + r0, side="left")
            last[:, j] = np.where(rows_ok, np.searchsorted(self.keys, col + r1, side="right"),
                                  first[:, j])
        counts = np.maximum(last - first, 0).sum(axis=1)
        cand = self.seg[ranges(first.ravel(), last.ravel())]
        point = np.repeat(np.arange(n), counts)
        px = xy[point, 0] - self.ax[cand]
        py = xy[point, 1] - self.ay[cand]
        dx, dy = self.dx[cand], self.dy[cand]
        t = np.clip((px * dx + py * dy) * self.inv_len2[cand], 0.0, 1.0)
        d = np.hypot(px - t * dx, py - t * dy)
        edge = np.full(n, -1, dtype=np.int64)
        offset = np.full(n, np.nan)
        dist = np.full(n, np.inf)
        has = np.flatnonzero(counts > 0)
        if len(has):
            starts = (np.cumsum(counts) - counts)[has]
            dist[has] = np.minimum.reduceat(d, starts)
            best = np.flatnonzero(d == dist[point])
            best = best[np.concatenate([[True], point[best][1:] != point[best][:-1]])]
            who = point[best]
            seg = cand[best]
            edge[who] = self.edge[seg]
            offset[who] = self.start_m[seg] + t[best] * self.length[seg]
        return edge, offset, dist, dist < certain_m


def segment_grid(owner: Any, geometry: npt.NDArray[np.object_], n_points: int,
                 ) -> SegmentGrid | None:
    """The :class:`SegmentGrid` of ``geometry``, built once per ``owner`` (a network).

    Building it costs about as much as an STRtree search for a tenth as many points as there
    are segments, so it is built only for at least half as many points as there are edges
    (about an eighth of the segments); None means "use the STRtree".
    """
    grid = _GRIDS.get(owner)
    if grid is None and n_points >= len(geometry) // 2:
        grid = _GRIDS[owner] = SegmentGrid(geometry)
    return grid


def z_order(xy: npt.NDArray[np.float64], cell_m: float = 100.0) -> npt.NDArray[np.int64]:
    """Positions that sort points along a Z-order (Morton) curve over ``cell_m`` cells."""
    if len(xy) == 0:
        return np.array([], dtype=np.int64)
    cell = np.floor((xy - np.nanmin(xy, axis=0)) / cell_m)
    cell = np.clip(np.nan_to_num(cell), 0, 2**31 - 1).astype(np.uint64)
    code = np.zeros(len(xy), dtype=np.uint64)
    for bit in range(31):
        one = np.uint64(1) << np.uint64(bit)
        code |= ((cell[:, 0] & one) << np.uint64(bit))
        code |= ((cell[:, 1] & one) << np.uint64(bit + 1))
    return np.argsort(code, kind="stable").astype(np.int64)
