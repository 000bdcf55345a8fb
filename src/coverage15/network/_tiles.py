"""Array machinery for the distance work of :mod:`coverage15.reach.service_areas`.

Ragged joins over CSR-style groupings, a grid index of nodes (to list the nodes in a box
without scanning the whole network) and the per-tile sub-network matrix that
:func:`coverage15.reach.distances.network_reach` hands to ``scipy.sparse.csgraph``, cut straight
out of the network's CSR arrays so that the work per tile does not grow with the network.
"""

from __future__ import annotations

import numpy as np

from coverage15._types import FloatArray, IntArray

__all__ = ["MAX_DENSE", "NodeGrid", "index_by", "ragged_join", "ranges"]


def ranges(first: IntArray, last: IntArray) -> IntArray:
    """``concatenate([arange(a, b) for a, b in zip(first, last)])``, vectorised."""
    counts = np.maximum(last - first, 0)
    ends = np.cumsum(counts)
    total = int(ends[-1]) if len(ends) else 0
    return np.repeat(first - ends + counts, counts) + np.arange(total)


MAX_DENSE = 20_000_000  # cells of one dense Dijkstra answer (160 MB); more runs in chunks


class NodeGrid:
    """Nodes sorted into square cells, to list the nodes in a box without a full scan."""

    def __init__(self, xy: FloatArray, cell_m: float) -> None:
        self.xy = xy
        self.cell_m = cell_m
        self.origin = xy.min(axis=0) if len(xy) else np.zeros(2)
        cell = np.floor((xy - self.origin) / cell_m).astype(np.int64)
        self.n_rows = int(cell[:, 1].max()) + 1 if len(xy) else 1
        key = cell[:, 0] * self.n_rows + cell[:, 1]
        self.order = np.argsort(key, kind="stable")
        self.keys = key[self.order]

    def within(self, lo: FloatArray, hi: FloatArray) -> IntArray:
        """Positions of the nodes inside the box ``[lo, hi]``, ascending."""
        c0 = np.floor((lo - self.origin) / self.cell_m).astype(np.int64)
        c1 = np.floor((hi - self.origin) / self.cell_m).astype(np.int64)
        r0, r1 = max(int(c0[1]), 0), min(int(c1[1]), self.n_rows - 1)
        if r1 < r0:
            return np.array([], dtype=np.int64)
        cols = np.arange(max(int(c0[0]), 0), int(c1[0]) + 1)
        first = np.searchsorted(self.keys, cols * self.n_rows + r0, side="left")
        last = np.searchsorted(self.keys, cols * self.n_rows + r1, side="right")
        cand = self.order[ranges(first, last)]
        xy = self.xy[cand]
        inside = np.all((xy >= lo) & (xy <= hi), axis=1)
        return np.sort(cand[inside])


def ragged_join(keys: IntArray, indptr: IntArray) -> tuple[IntArray, IntArray]:
    """For each ``keys[i]``, list positions ``indptr[k]..indptr[k+1]``; return (i, position)."""
    counts = indptr[keys + 1] - indptr[keys]
    left = np.repeat(np.arange(len(keys)), counts)
    starts = np.repeat(indptr[keys], counts)
    within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return left, starts + within


def index_by(values: IntArray, size: int) -> tuple[IntArray, IntArray]:
    """CSR-style grouping of positions by integer value: ``(indptr, order)``."""
    order = np.argsort(values, kind="stable")
    counts = np.bincount(values, minlength=size)
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64), order
