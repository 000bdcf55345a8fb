"""Covering models on candidate x demand sets: lazy greedy and exact (HiGHS) solvers.

Pure combinatorics, no geography: a boolean matrix ``sets`` (candidates x columns), a weight
per column, and optionally a requirement ``group`` per column with the weight each group needs
(``cap``). One objective serves both questions of :mod:`coverage15.planning.recommend`:

``f(X) = sum over groups r of min(cap_r, weight of the columns of r covered by X)``

- maximal covering: ``k`` sites maximising ``f`` (one group, no cap);
- set covering: the fewest sites with ``f(X) = sum(cap)`` (every requirement met).

``f`` is monotone submodular: a stale marginal gain is an upper bound, so the lazy greedy
(CELF) re-evaluates only the top of its queue and picks what the plain greedy would; for
maximal covering it is within ``1 - 1/e`` of the optimum.
"""

from __future__ import annotations

import contextlib
import heapq
import math
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from coverage15._errors import ConfigError
from coverage15._types import FloatArray, IntArray

__all__ = [
    "DOMINANCE_MAX_PRODUCTS",
    "EXACT_MAX_CANDIDATES",
    "EXACT_MAX_PAIRS",
    "Solution",
    "exact_cover",
    "greedy_cover",
]


EXACT_MAX_CANDIDATES = 20_000
"""Exact solutions are refused above this many distinct useful candidates..."""
EXACT_MAX_PAIRS = 1_000_000
"""...or this many (candidate, demand group) coverage pairs after merging identical columns.
Central Shanghai, every street node as a candidate: ~3,500 candidates and ~140,000 pairs
before merging; k = 10 solves to optimality in well under a second."""
DOMINANCE_MAX_PRODUCTS = 50_000_000
"""Dominated candidates are found with a sparse product; skipped when it would be larger."""


@dataclass(frozen=True)
class Solution:
    """Sites chosen by one solver.

    ``chosen`` lists candidate positions in order of marginal gain (``gains``); ``covered`` is the
    weight they cover, counting a requirement group at most up to its cap. ``bound`` (exact
    only) is the best any solution can do: the most coverage, or the fewest sites.
    """

    chosen: IntArray
    gains: FloatArray
    covered: float
    method: str
    status: str
    seconds: float
    bound: float | None = None


_STDOUT_LOCK = threading.Lock()


@contextmanager
def _no_stdout() -> Iterator[None]:
    """Send what C code writes to the process's standard output to nowhere, for a moment.

    The file descriptor is the process's, so the redirect is serialised between threads
    (what other threads print in that moment is lost too). Without a standard output there
    is nothing to hide.
    """
    with _STDOUT_LOCK:
        with contextlib.suppress(AttributeError, OSError, ValueError):  # None or closed
            sys.stdout.flush()
        try:
            saved = os.dup(1)  # where C's stdout writes, whatever sys.stdout is now
        except OSError:  # no fd 1
            yield
            return
        try:
            with Path(os.devnull).open("wb") as null:
                os.dup2(null.fileno(), 1)
                yield
        finally:
            os.dup2(saved, 1)
            os.close(saved)


def _caps(sets: sp.csr_matrix, group: IntArray | None,
          cap: FloatArray | None) -> tuple[IntArray, FloatArray]:
    g = np.zeros(sets.shape[1], dtype=np.int64) if group is None else np.asarray(group, np.int64)
    c = np.full(int(g.max(initial=0)) + 1, np.inf) if cap is None else np.asarray(cap, float)
    return g, c


def greedy_cover(
    sets: sp.csr_matrix, weight: FloatArray, *, k: int | None = None,
    group: IntArray | None = None, cap: FloatArray | None = None,
) -> Solution:
    """Lazy greedy (CELF) on ``f(X) = sum_r min(cap_r, weight covered by X in group r)``.

    ``f`` is monotone submodular, so a stale marginal gain is an upper bound and only the top
    of the priority queue is re-evaluated. Ties go to the lower candidate position.

    Parameters
    ----------
    sets
        Boolean matrix, candidates x columns (demand points, or requirement slots).
    weight
        Weight of each column (0 to ignore it).
    k
        Number of sites (maximal covering); None: until every cap is met (set covering).
    group, cap
        Requirement group of each column and the weight each group needs; default one group
        without a cap.

    Returns
    -------
    Solution
        Stops early when no candidate adds anything.
    """
    start = time.perf_counter()
    sets = sp.csr_matrix(sets, dtype=bool)
    group, cap_all = _caps(sets, group, cap)
    residual = cap_all.copy()
    weight = np.asarray(weight, dtype=float)
    onehot = sp.csr_matrix((weight, (np.arange(len(group)), group)),
                           shape=(len(group), len(residual)))
    per = (sets.astype(float) @ onehot).tocsr()
    per.data = np.minimum(per.data, residual[per.indices])
    first = np.asarray(per.sum(axis=1)).ravel()
    heap = [(-g, j, 0) for j, g in enumerate(first) if g > 0]
    heapq.heapify(heap)
    covered = np.zeros(sets.shape[1], dtype=bool)
    chosen: list[int] = []
    gains: list[float] = []

    def fresh(j: int) -> IntArray:
        cols = sets.indices[sets.indptr[j]:sets.indptr[j + 1]]
        return cols[~covered[cols]]  # type: ignore[no-any-return]

    while heap and (k is None or len(chosen) < k):
        neg, j, stamp = heapq.heappop(heap)
        if stamp != len(chosen):
            cols = fresh(j)
            g = float(np.minimum(np.bincount(group[cols], weights=weight[cols],
                                             minlength=len(residual)), residual).sum())
            if g > 1e-12:
                heapq.heappush(heap, (-g, j, len(chosen)))
            continue
        cols = fresh(j)
        chosen.append(j)
        gains.append(-neg)
        residual = np.maximum(residual - np.bincount(group[cols], weights=weight[cols],
                                                     minlength=len(residual)), 0.0)
        covered[cols] = True
        if k is None and not (residual > 1e-9).any():
            break
    met = k is not None or not (residual > 1e-9).any()
    picked = np.array(chosen, dtype=np.int64)
    if k is None and met and len(picked) > 1:
        picked = _drop_redundant(sets, weight, group, np.asarray(cap_all), picked)
        if len(picked) < len(chosen):  # re-rank what is left by marginal gain
            again = greedy_cover(sets[picked], weight, k=len(picked), group=group, cap=cap_all)
            picked, gains = picked[again.chosen], list(again.gains)
    return Solution(picked, np.array(gains), float(sum(gains)), "greedy",
                    "heuristic" if met else "caps not met", time.perf_counter() - start)


def _drop_redundant(sets: sp.csr_matrix, weight: FloatArray, group: IntArray,
                    cap: FloatArray, picked: IntArray) -> IntArray:
    """Remove picks, last (least useful) first, while the rest still meet every cap."""
    keep = np.ones(len(picked), dtype=bool)
    for i in range(len(picked) - 1, -1, -1):
        keep[i] = False
        hit = np.asarray(sets[picked[keep]].sum(axis=0)).ravel() > 0
        got = np.bincount(group, weights=weight * hit, minlength=len(cap))
        keep[i] = bool((got < cap - 1e-9).any())
    return picked[keep]


def _merge_columns(sets: sp.csr_matrix, group: IntArray) -> tuple[IntArray, IntArray]:
    """Code per column, equal for columns with the same candidates and group; first of each."""
    csc = sp.csc_matrix(sets, dtype=bool)
    csc.sort_indices()
    seen: dict[tuple[int, bytes], int] = {}
    codes = np.array([seen.setdefault((int(g), csc.indices[a:b].tobytes()), len(seen))
                      for g, a, b in zip(group, csc.indptr[:-1], csc.indptr[1:], strict=True)],
                     dtype=np.int64)
    _, first = np.unique(codes, return_index=True)
    return codes, first


def _dominant(merged: sp.csr_matrix) -> tuple[IntArray, IntArray]:
    """Candidates worth keeping, and the kept one standing in for each candidate.

    A candidate whose columns equal or lie within another's is never needed: swapping it for
    the other loses nothing. Candidates covering nothing are dropped (``-1``).
    """
    n = merged.shape[0]
    codes, keep = _merge_columns(merged.T.tocsr(), np.zeros(n, dtype=np.int64))
    b = merged[keep].astype(np.int32).tocsr()
    size = b.getnnz(axis=1)
    stand = np.arange(len(keep))
    if (b.getnnz(axis=0).astype(np.int64) ** 2).sum() <= DOMINANCE_MAX_PRODUCTS:
        shared = (b @ b.T).tocoo()
        sup = (shared.data == size[shared.row]) & (shared.row != shared.col)
        row, col = shared.row[sup], shared.col[sup]
        order = np.lexsort((-size[col], row))  # the largest superset is itself kept
        row, col = row[order], col[order]
        first = np.ones(len(row), dtype=bool)
        first[1:] = row[1:] != row[:-1]
        stand[row[first]] = col[first]
    alive = (stand == np.arange(len(keep))) & (size > 0)
    position = np.cumsum(alive) - 1
    rep = np.where(size[stand] > 0, position[stand], -1)[codes]
    return keep[alive], rep


def exact_cover(
    sets: sp.csr_matrix, weight: FloatArray, *, k: int | None = None,
    group: IntArray | None = None, cap: FloatArray | None = None,
    time_limit_s: float = 60.0, max_candidates: int = EXACT_MAX_CANDIDATES,
    max_pairs: int = EXACT_MAX_PAIRS, warm: Solution | None = None,
) -> Solution:
    """Optimal covering by integer programming (HiGHS through ``highspy``).

    With ``k``: maximise the covered weight with at most ``k`` sites (maximal covering).
    Without: the fewest sites meeting every group's ``cap`` (set covering). Columns with the
    same candidates and group are merged, identical candidates too, and a candidate whose
    columns lie within another's is dropped (the other does at least as well), before solving.

    Parameters
    ----------
    sets, weight, k, group, cap
        As in :func:`greedy_cover`.
    time_limit_s
        Solver time limit; the best solution found and the bound are returned when hit.
    max_candidates, max_pairs
        Size limits (after merging) above which the exact solution is refused.
    warm
        A feasible solution (the greedy one) to start from.

    Returns
    -------
    Solution
        ``status`` is ``"optimal"`` or ``"time limit"``; ``bound`` the solver's proven bound.

    Raises
    ------
    ConfigError
        When the instance is too large or the ``optimize`` extra is not installed.
    """
    try:
        import highspy
    except ImportError as exc:
        msg = ("an exact solution needs HiGHS: pip install 'coverage15[optimize]' "
               "(or use the greedy method)")
        raise ConfigError(msg) from exc
    start = time.perf_counter()
    sets = sp.csr_matrix(sets, dtype=bool)

    def nothing_to_do() -> Solution:
        return Solution(np.array([], np.int64), np.array([]), 0.0, "exact", "optimal",
                        time.perf_counter() - start, 0.0)

    if sets.shape[1] == 0 or sets.shape[0] == 0:  # nothing to cover, or nothing to cover with
        return nothing_to_do()
    group, caps = _caps(sets, group, cap)
    weight = np.asarray(weight, dtype=float)
    codes, first = _merge_columns(sets, group)
    w = np.bincount(codes, weights=weight)
    merged = (sets.astype(np.int32) @ sp.csr_matrix(
        (np.ones(len(codes), np.int32), (np.arange(len(codes)), codes)),
        shape=(len(codes), len(w)))).tocsr()
    merged.data[:] = 1  # candidate x merged column: covers or not
    keep, rep = _dominant(merged)
    b = merged[keep].tocoo()
    n, m = len(keep), len(w)
    if n == 0:
        return nothing_to_do()
    if n > max_candidates or b.nnz > max_pairs:
        msg = (f"exact solution refused: {n} distinct candidates and {b.nnz} coverage pairs "
               f"exceed the limits ({max_candidates} / {max_pairs}); thin the candidates "
               "(--spacing-m), narrow the scope, or keep the greedy answer")
        raise ConfigError(msg)
    g_of = group[first]
    r_id = np.unique(g_of[np.isfinite(caps[g_of])])
    n_rows = m + (1 if k is not None else len(r_id))
    ri = [b.col, np.arange(m)]
    ci = [b.row, n + np.arange(m)]
    vals = [-w[b.col], np.ones(m)]
    if k is not None:
        ri.append(np.full(n, m))
        ci.append(np.arange(n))
        vals.append(np.ones(n))
    else:
        has = np.isin(g_of, r_id)
        ri.append(m + np.searchsorted(r_id, g_of[has]))
        ci.append(n + np.flatnonzero(has))
        vals.append(np.ones(int(has.sum())))
    a = sp.csc_matrix((np.concatenate(vals), (np.concatenate(ri), np.concatenate(ci))),
                      shape=(n_rows, n + m))
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n + m, n_rows
    lp.col_cost_ = np.concatenate([np.zeros(n), -np.ones(m)] if k is not None
                                  else [np.ones(n), np.zeros(m)])
    lp.col_lower_ = np.zeros(n + m)
    lp.col_upper_ = np.concatenate([np.ones(n), w])
    upper = [float(k)] if k is not None else [np.inf] * len(r_id)
    lower = [-np.inf] if k is not None else list(caps[r_id])
    lp.row_lower_ = np.concatenate([np.full(m, -np.inf), lower])
    lp.row_upper_ = np.concatenate([np.zeros(m), upper])
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = a.indptr, a.indices, a.data
    lp.integrality_ = ([highspy.HighsVarType.kInteger] * n
                       + [highspy.HighsVarType.kContinuous] * m)
    with _no_stdout():  # HiGHS prints its banner when created, before any option is set
        h = highspy.Highs()  # type: ignore[no-untyped-call]
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(time_limit_s))
    h.setOptionValue("mip_rel_gap", 0.0)
    # an integral objective is proven optimal once the bound is less than 1 away
    integral = k is None or bool(np.all(weight == np.round(weight)))
    h.setOptionValue("mip_abs_gap", 0.999 if integral else 1e-6)
    h.passModel(lp)
    if warm is not None and len(warm.chosen):
        x = np.zeros(n + m)
        x[rep[warm.chosen]] = 1.0
        x[n:] = w * (merged[warm.chosen].sum(axis=0).A1 > 0)
        solution = highspy.HighsSolution()
        solution.col_value, solution.value_valid = list(x), True
        h.setSolution(solution)
    h.run()
    status = h.getModelStatus()
    info = h.getInfo()
    word = ("optimal" if status == highspy.HighsModelStatus.kOptimal else "time limit"
            if status == highspy.HighsModelStatus.kTimeLimit else h.modelStatusToString(status))
    if status == highspy.HighsModelStatus.kInfeasible or info.primal_solution_status == 0:
        if warm is not None and status == highspy.HighsModelStatus.kTimeLimit:
            # stopped before it held any solution of its own: the warm start stands
            return Solution(warm.chosen, warm.gains, warm.covered, "exact", word,
                            time.perf_counter() - start, None)
        msg = f"the exact solver found no solution ({h.modelStatusToString(status)})"
        raise ConfigError(msg)
    picked = keep[np.asarray(h.getSolution().col_value)[:n] > 0.5]
    order = greedy_cover(sets[picked], weight, group=group, cap=caps)  # rank by marginal gain
    bound: float | None = None
    if math.isfinite(info.mip_dual_bound):  # not yet, if stopped very early
        bound = -info.mip_dual_bound if k is not None else math.ceil(info.mip_dual_bound - 1e-6)
        if k is not None and integral:
            bound = math.floor(bound + 1e-6)
    return Solution(picked[order.chosen], order.gains, order.covered, "exact", word,
                    time.perf_counter() - start, None if bound is None else float(bound))
