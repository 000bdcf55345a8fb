"""Where should the next facilities go? Covering models on the walking network.

Candidate sites (street nodes, an existing layer, or a file) are snapped to street edges exactly
like facilities, and :func:`coverage15.reach.distances.point_distances` gives, per candidate, the
demand points it would bring within the walking limit. Only demand the layer does not already
serve (or that does not yet pass a rule) counts. Two questions are answered on these sets:

- **Maximal covering** (:func:`recommend`): ``k`` sites that newly cover the most demand. A lazy
  greedy (CELF) by default, within ``1 - 1/e`` of the optimum in theory; an exact integer
  programme (HiGHS, extra ``optimize``) on request, warm-started from the greedy answer.
- **Set covering** (:func:`cover`): the fewest sites so that every flagged 街镇 passes the
  layer's rules: share rules (``one_plus_n``, ``demand_share``) need enough newly passing
  residents, ``full_coverage`` needs enough sites inside the 街镇.

:func:`~.scenarios.whatif` re-runs the pipeline with the proposals added: it checks
that they cover what was promised, gives the shares and flags after, and puts them on the map.
The solvers are in :mod:`coverage15.planning._covering`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp
import shapely

from coverage15._errors import ConfigError
from coverage15._types import FloatArray, IntArray
from coverage15.planning._candidates import candidate_sites, coverage_sets
from coverage15.planning._covering import (
    EXACT_MAX_CANDIDATES,
    EXACT_MAX_PAIRS,
    Solution,
    exact_cover,
    greedy_cover,
)
from coverage15.planning._reach_sets import rule_passing
from coverage15.planning._words import (
    credits,
    site_lines,
    summary_zh,
    tell_proposals,
    unit_changes,
)
from coverage15.planning.scenarios import KEYS, WhatIf, write_bundle
from coverage15.reach.coverage import assign_units
from coverage15.reach.kernel import service_areas
from coverage15.result import Result

__all__ = [
    "EXACT_MAX_CANDIDATES",
    "EXACT_MAX_PAIRS",
    "Recommendation",
    "Solution",
    "candidate_sites",
    "cover",
    "exact_cover",
    "greedy_cover",
    "recommend",
    "write_recommendation",
]

Method = Literal["greedy", "exact", "both"]
Scope = Literal["assessed", "flagged", "network"]
Progress = Callable[[str, int, int], None]


# --- scope and rules ------------------------------------------------------------------------


def _unit_table(result: Result) -> tuple[IntArray, pd.DataFrame]:
    """Each demand point's unit position, and the gap report in unit-position order."""
    if result.demand is None:
        msg = f"{result.config.source}: recommending sites needs a [demand] layer"
        raise ConfigError(msg)
    keys = pd.MultiIndex.from_arrays([result.units["district"], result.units["unit"]],
                                     names=KEYS)
    table = result.gap_report.drop_duplicates(KEYS).set_index(KEYS).reindex(keys)
    return assign_units(result.demand, result.units).to_numpy(), table.reset_index()


def _rule(result: Result, rule_id: str, layer: str) -> Any:
    rule = next((r for r in result.rules if r.id == rule_id), None)
    if rule is None or rule.id in result.check.skipped:
        why = "not in the targets" if rule is None else result.check.skipped[rule.id]
        msg = (f"rule {rule_id!r}: {why}; rules: {', '.join(r.id for r in result.rules)}")
        raise ConfigError(msg)
    if layer not in rule.layers:
        msg = f"rule {rule_id!r} does not use layer {layer!r} (it uses {list(rule.layers)})"
        raise ConfigError(msg)
    return rule


def _passing(result: Result, layer: str, rule_id: str | None) -> tuple[Any, Any, float]:
    """Per demand point: already passing, and would pass with one more site of ``layer``.

    And the limit that site must be within (a rule's own for the layer's side, at the
    verdict profile; without a rule, the run's).
    """
    d = result.demand
    assert d is not None
    if rule_id is None:
        return (d[f"{layer}_n"].to_numpy() > 0, np.ones(len(d), dtype=bool),
                result.config.analysis.limit_m)
    rule = _rule(result, rule_id, layer)
    if rule.kind == "full_coverage":
        msg = f"rule {rule_id!r} counts sites per 街镇; use it with cover (--cover-rule)"
        raise ConfigError(msg)
    return rule_passing(result, layer, rule)


# --- maximal covering and set covering on a run ------------------------------------------------


@dataclass(frozen=True)
class Recommendation:
    """Proposed sites for a layer and what they add.

    Attributes
    ----------
    layer, label : str
    form : {"max_cover", "min_cover"}
    proposals : geopandas.GeoDataFrame
        EPSG:4326: ``rank``, ``facility_id``, ``name``, ``jiezhen``, ``district``,
        ``newly_covered`` (marginal, in rank order), ``cumulative``, ``cumulative_share``.
    areas : geopandas.GeoDataFrame
        The proposals' service areas (EPSG:4326).
    newly_covered : geopandas.GeoDataFrame
        Demand points newly covered (or newly passing the objective rule), with ``rank``
        of the first proposal reaching them; the ``row`` in the run's demand table.
    greedy, exact : Solution
    stats : dict
        Scope, counts, shares before and after, solver comparison.
    requirements : pandas.DataFrame or None
        Set covering: per rule and 街镇 what is needed, reachable, and met.
    """

    layer: str
    label: str
    form: Literal["max_cover", "min_cover"]
    proposals: gpd.GeoDataFrame
    areas: gpd.GeoDataFrame
    newly_covered: gpd.GeoDataFrame
    greedy: Solution
    exact: Solution | None
    stats: dict[str, Any]
    requirements: pd.DataFrame | None = None

    def summary(self, after: WhatIf | None = None) -> list[str]:
        """Terminal summary lines; with ``after`` (the re-run with the proposals) its check."""
        s, g, e = self.stats, self.greedy, self.exact
        what = f"pass {s['objective']}" if s["objective"] else f"covered by {self.label}"
        lines = [f"candidates ({s['candidates']}): {s['n_candidates']}, "
                 f"{s['n_useful']} of them newly cover demand",
                 f"scope ({s['scope']}): {s['scope_units']} 街镇, {s['scope_points']} residential "
                 f"points, {s['before']} {what} ({s['share_before']:.1%})"]
        if self.form == "max_cover":
            lines.append(f"greedy: {len(g.chosen)} sites newly cover {g.covered:.0f} points")
        else:
            lines.append(f"{s['n_requirements']} requirement(s) of {s['rules']} in "
                         f"{s['scope_units']} flagged 街镇; greedy: {len(g.chosen)} sites")
        if e is not None:
            value = f"{e.covered:.0f} points" if self.form == "max_cover" else (
                f"{len(e.chosen)} sites")
            bound = "no bound yet" if e.bound is None else f"bound {e.bound:g}"
            lines.append(f"exact (HiGHS): {value}, {e.status} ({bound}, "
                         f"{e.seconds:.1f} s); greedy gap {s['greedy_gap']:.1%}")
        lines.append(f"proposed: {len(self.proposals)} new {self.label}: newly cover "
                     f"{s['newly_covered']} points = {s['newly_covered_share']:.1%} of the scope "
                     f"({s['gap_closed_share']:.1%} of the uncovered); {s['share_before']:.1%} → "
                     f"{s['share_after']:.1%}")
        lines += self._site_lines(after)
        if self.requirements is not None:
            unmet = self.requirements.loc[~self.requirements["met"]]
            lines += [f"  cannot meet {r.rule} in {r.district} {r.jiezhen}: needs {r.need:g}, "
                      f"candidates reach {r.reachable:g}" for r in unmet.itertuples()]
        if after is not None:
            moved = unit_changes(after.diff)
            credit = self.credits(after)

            def told(units: list[tuple[str, str]]) -> str:
                return ", ".join(f"{d} {j}" + (f" (site {credit[(d, j)][0]}"
                                               + (f", in {credit[(d, j)][1]})"
                                                  if credit[(d, j)][1] != j else ")")
                                               if (d, j) in credit else "")
                                 for d, j in units)

            passes, fails = moved["newly passes"], moved["newly fails"]
            lines.append(f"re-run with the proposals: {_confirmed(self, after.after)} of "
                         f"{s['newly_covered']} promised points covered; "
                         f"{len(passes)} 街镇 newly pass" + (f": {told(passes)}" if passes else "")
                         + f"; {len(fails)} newly fail" + (f": {told(fails)}" if fails else ""))
        return lines

    def summary_zh(self, after: WhatIf | None = None) -> list[str]:
        """The summary in Chinese, for the planner: the sites, what each changes, who passes."""
        return summary_zh(self, after)

    def credits(self, after: WhatIf) -> dict[tuple[str, str], tuple[int, str]]:
        """Each 街镇 that newly passes → (rank of the site that completes it, that site's 街镇)."""
        return credits(self, after)

    def _site_lines(self, after: WhatIf | None) -> list[str]:
        return site_lines(self, after)


def _is(flags: pd.Series, *, value: bool) -> Any:
    """Where a nullable flag column equals ``value`` (missing is neither)."""
    return flags.astype("boolean").eq(value).fillna(False).to_numpy(dtype=bool)


def _scope_mask(table: pd.DataFrame, scope: Scope) -> Any:
    if scope == "assessed":
        return (table["network"] == "full").to_numpy()
    if scope == "flagged":
        return _is(table["uncovered"], value=True)
    if scope == "network":
        return table["network"].notna().to_numpy()
    msg = f"scope {scope!r}: use 'assessed', 'flagged' or 'network'"
    raise ConfigError(msg)


def _solve(sets: sp.csr_matrix, weight: FloatArray, *, method: Method, k: int | None,
           group: IntArray | None, cap: FloatArray | None, time_limit_s: float,
           progress: Progress | None) -> tuple[Solution, Solution | None, Solution]:
    if method not in ("greedy", "exact", "both"):
        msg = f"method {method!r}: use 'greedy', 'exact' or 'both'"
        raise ConfigError(msg)
    if progress is not None:
        progress("greedy", 0, 0)
    greedy = greedy_cover(sets, weight, k=k, group=group, cap=cap)
    if method == "greedy":
        return greedy, None, greedy
    if progress is not None:
        progress("exact", 0, 0)
    exact = exact_cover(sets, weight, k=k, group=group, cap=cap, time_limit_s=time_limit_s,
                        warm=greedy)
    better = exact.covered > greedy.covered + 1e-9 if k is not None else (
        len(exact.chosen) < len(greedy.chosen))
    return greedy, exact, exact if better or method == "exact" else greedy


def _finish(result: Result, layer: str, *, form: Literal["max_cover", "min_cover"],
            candidates: gpd.GeoDataFrame, by_site: sp.csr_matrix, rows: IntArray,
            solutions: tuple[Solution, Solution | None, Solution], stats: dict[str, Any],
            requirements: pd.DataFrame | None = None) -> Recommendation:
    """Proposals, their service areas, the newly covered points and the shares."""
    greedy, exact, best = solutions
    assert result.demand is not None
    a, label = result.config.analysis, result.config.layers[layer].label
    rank = np.zeros(len(rows), dtype=np.int64)
    marginal = []
    for i, j in enumerate(best.chosen, start=1):
        cols = by_site.indices[by_site.indptr[j]:by_site.indptr[j + 1]]
        cols = cols[rank[cols] == 0]
        rank[cols] = i
        marginal.append(len(cols))
    props = candidates.iloc[best.chosen].reset_index(drop=True)
    props.insert(0, "rank", np.arange(1, len(props) + 1))
    place = assign_units(props, result.units).to_numpy()
    names = np.vstack([result.units[["district", "unit"]].to_numpy(dtype=object),
                       [[None, None]]])
    props["district"], props["jiezhen"] = names[place, 0], names[place, 1]
    props["newly_covered"] = np.array(marginal, dtype=np.int64)
    props["cumulative"] = np.cumsum(props["newly_covered"]).astype(np.int64)
    points = max(int(stats["scope_points"]), 1)
    props["cumulative_share"] = ((stats["before"] + props["cumulative"]) / points).round(4)
    areas = service_areas(result.network, props, a)
    props["snap_m"] = areas["snap_m"].round(1).to_numpy()
    where, _ = _unit_table(result)
    tell_proposals(result, layer, props, rows=rows, rank=rank, stats=stats, where=where)
    areas = gpd.GeoDataFrame(
        props[["rank", "facility_id", "name", "newly_covered"]].assign(
            reach_m=areas["reach_m"].round(0).to_numpy(),
            area_km2=(shapely.area(areas.geometry.to_numpy()) / 1e6).round(4)),
        geometry=areas.geometry.to_numpy(), crs=areas.crs).to_crs("EPSG:4326")
    hit = rank > 0
    newly = result.demand.iloc[rows[hit]][["name", "jiezhen", "district", "geometry"]].copy()
    newly.insert(0, "row", rows[hit])
    newly.insert(1, "rank", rank[hit])
    n_new = int(hit.sum())
    stats = {**stats, "sites": stats.pop("_sites"), "layer": layer, "form": form,
             "n_proposed": len(props),
             "newly_covered": n_new, "newly_covered_share": round(n_new / points, 4),
             "gap_closed_share": round(n_new / max(points - stats["before"], 1), 4),
             "share_before": round(stats["before"] / points, 4),
             "share_after": round((stats["before"] + n_new) / points, 4)}
    for key, sol in (("greedy", greedy), ("exact", exact)):
        if sol is not None:
            stats[key] = {"sites": len(sol.chosen), "covered": sol.covered, "status": sol.status,
                          "bound": sol.bound, "seconds": round(sol.seconds, 3)}
    if exact is not None:
        stats["greedy_gap"] = round(
            (exact.covered - greedy.covered) / max(exact.covered, 1e-9) if form == "max_cover"
            else (len(greedy.chosen) - len(exact.chosen)) / max(len(exact.chosen), 1), 4)
    return Recommendation(layer, label, form, gpd.GeoDataFrame(props, crs="EPSG:4326"), areas,
                          gpd.GeoDataFrame(newly, crs="EPSG:4326"), greedy, exact, stats,
                          requirements)


def _check_layer(result: Result, layer: str) -> None:
    if layer not in result.layers:
        msg = (f"layer {layer!r} is not in this run ({result.config.source}); "
               f"layers: {', '.join(result.layers)}")
        raise ConfigError(msg)


def recommend(
    result: Result, *, layer: str, k: int = 10, candidates: str = "nodes",
    objective: str | None = None, scope: Scope = "assessed", method: Method = "greedy",
    spacing_m: float = 0.0, time_limit_s: float = 60.0, progress: Progress | None = None,
    **file_options: Any,
) -> Recommendation:
    """The ``k`` new sites of ``layer`` that newly cover the most residential points.

    Parameters
    ----------
    result
        The baseline run (with a demand layer).
    layer
        The facility layer to extend, e.g. ``"centre"``.
    k
        Number of new sites.
    candidates, spacing_m, file_options
        Where sites may go (see :func:`candidate_sites`).
    objective
        None: points not yet within reach of ``layer``; a rule id (``one_plus_n`` or a
        ``demand_share`` rule on the layer): points not yet passing it that one more site of
        the layer would make pass (for "1+N" and a centre layer: those with their stations).
    scope
        Which demand counts: ``"assessed"`` (街镇 wholly inside the network, as in the gap
        report), ``"flagged"`` (uncovered 街镇) or ``"network"`` (every point on the network).
    method
        ``"greedy"``, ``"exact"`` or ``"both"`` (proposals from the better; gap reported).
    time_limit_s
        For the exact solver.
    progress
        Called as ``progress(step, done, total)``.

    Returns
    -------
    Recommendation
    """
    _check_layer(result, layer)
    if k < 1:
        msg = f"k must be at least 1, got {k}"
        raise ConfigError(msg)
    where, table = _unit_table(result)
    assert result.demand is not None
    on = result.demand["on_network"].to_numpy(dtype=bool)
    unit_ok = np.append(_scope_mask(table, scope), False)
    in_scope = on if scope == "network" else unit_ok[where]
    passing, fixable, limit_m = _passing(result, layer, objective)
    rows = np.flatnonzero(in_scope & ~passing & fixable & on)
    if progress is not None:
        progress("candidates", 0, 0)
    cands = candidate_sites(result, candidates, spacing_m=spacing_m, **file_options)
    sets = coverage_sets(result, cands, rows, limit_m=limit_m)
    solutions = _solve(sets, np.ones(len(rows)), method=method, k=k, group=None, cap=None,
                       time_limit_s=time_limit_s, progress=progress)
    stats = {"candidates": candidates, "n_candidates": len(cands), "scope": scope,
             "n_useful": int((sets.getnnz(axis=1) > 0).sum()), "objective": objective,
             "scope_units": len(np.unique(where[in_scope & (where >= 0)])),
             "scope_points": int(in_scope.sum()), "before": int((in_scope & passing).sum()),
             "eligible": len(rows), "reachable": int((sets.getnnz(axis=0) > 0).sum()),
             "k": k, "method": method}
    return _finish(result, layer, form="max_cover", candidates=cands, by_site=sets, rows=rows,
                   solutions=solutions, stats=stats)


def cover(
    result: Result, *, layer: str, rules: Sequence[str] | None = None,
    candidates: str = "nodes", method: Method = "greedy", spacing_m: float = 0.0,
    time_limit_s: float = 60.0, progress: Progress | None = None, **file_options: Any,
) -> Recommendation:
    """The fewest new sites of ``layer`` so that every flagged 街镇 passes ``rules``.

    A flagged 街镇 failing a share rule (``one_plus_n`` with the layer among its centres or
    stations, ``demand_share`` on the layer) needs ``ceil(min_share * points) - passing``
    more of its residential points to pass, counting only points one more site can fix; one
    failing ``full_coverage`` on the layer needs ``min_count - count`` sites inside it. A
    requirement the candidates cannot meet is reported (``met`` False) and left out.

    Parameters
    ----------
    result, layer, candidates, spacing_m, method, time_limit_s, progress, file_options
        As in :func:`recommend`.
    rules
        Rule ids; default every per-街镇 rule of the run that uses ``layer``.

    Returns
    -------
    Recommendation
        With ``requirements`` (``rule``, ``district``, ``jiezhen``, ``need``,
        ``reachable``, ``achieved``, ``met``).
    """
    _check_layer(result, layer)
    where, table = _unit_table(result)
    assert result.demand is not None
    ids = list(rules) if rules else [r.id for r in result.rules if layer in r.layers
                                     and r.kind != "citywide_count"
                                     and r.id not in result.check.skipped]
    chosen_rules = [_rule(result, rid, layer) for rid in ids]
    if not chosen_rules or any(r.kind == "citywide_count" for r in chosen_rules):
        msg = f"cover needs per-街镇 rules using layer {layer!r}, got {ids}"
        raise ConfigError(msg)
    flagged = _is(table["uncovered"], value=True)
    on = result.demand["on_network"].to_numpy(dtype=bool)
    in_scope = np.append(flagged, False)[where]
    blocks: list[tuple[Any, list[tuple[str, int, float]], IntArray, float]] = []
    for rule in chosen_rules:
        fails = flagged & _is(table[f"pass_{rule.id}"], value=False)
        units = np.flatnonzero(fails)
        if rule.kind == "full_coverage":
            need = rule.min_count - table[f"{layer}_count"].to_numpy()[units]
            blocks.append((rule, [(rule.id, int(u), float(n)) for u, n in
                                  zip(units, need, strict=True)], np.array([], np.int64), 0.0))
            continue
        passing, fixable, limit_m = _passing(result, layer, rule.id)
        fails_at = np.append(fails, False)[where]
        n_pts = np.bincount(where[fails_at], minlength=len(table))
        n_pass = np.bincount(where[fails_at], weights=passing[fails_at], minlength=len(table))
        reqs = [(rule.id, int(u), float(math.ceil(rule.min_share * n_pts[u] - 1e-9) - n_pass[u]))
                for u in units]
        blocks.append((rule, reqs, np.flatnonzero(fails_at & ~passing & fixable & on), limit_m))
    rows = np.unique(np.concatenate([b[2] for b in blocks]))
    if progress is not None:
        progress("candidates", 0, 0)
    cands = candidate_sites(result, candidates, spacing_m=spacing_m, **file_options)
    before = (result.demand[f"{layer}_n"].to_numpy() > 0) & in_scope
    # what the sites add is told as for maximal covering: the scope's points newly within
    # reach of the layer (whether or not that makes them pass a rule); one walk for both
    uncovered = np.flatnonzero(in_scope & ~before & on)
    walked = np.union1d(rows, uncovered)
    both = coverage_sets(result, cands, walked).tocsc()
    by_site = both[:, np.searchsorted(walked, rows)].tocsr()
    reach = both[:, np.searchsorted(walked, uncovered)].tocsr()
    cand_unit = assign_units(cands, result.units).to_numpy()
    parts: list[sp.csr_matrix] = []
    groups: list[IntArray] = []
    caps: list[float] = []
    req_rows: list[tuple[str, int, float]] = []
    for rule, reqs, block_rows, limit_m in blocks:
        # a rule's own limit for the layer's side (1+N: stations within 10 minutes) needs
        # its own walk; the run's limit is the one already walked
        own = (by_site[:, np.searchsorted(rows, block_rows)].tocsc()
               if abs(limit_m - result.config.analysis.limit_m) < 1e-9
               else coverage_sets(result, cands, block_rows, limit_m=limit_m).tocsc())
        for _, u, need in reqs:
            r = len(caps)
            caps.append(need)
            req_rows.append((rule.id, u, need))
            if rule.kind == "full_coverage":
                sites = np.flatnonzero(cand_unit == u)
                parts.append(sp.csr_matrix((np.ones(len(sites), bool),
                                            (sites, np.arange(len(sites)))),
                                           shape=(len(cands), len(sites))))
                groups.append(np.full(len(sites), r))
            else:
                mine = np.flatnonzero(where[block_rows] == u)
                parts.append(own[:, mine])
                groups.append(np.full(len(mine), r))
    sets = sp.hstack(parts or [sp.csr_matrix((len(cands), 0), dtype=bool)]).tocsr()
    group = np.concatenate(groups or [np.array([], np.int64)]).astype(np.int64)
    reachable = np.bincount(group, weights=sets.getnnz(axis=0) > 0, minlength=len(caps))
    cap = np.array(caps, dtype=float)
    feasible = cap <= reachable
    solutions = _solve(sets, np.ones(len(group)), method=method, k=None, group=group,
                       cap=np.where(feasible, cap, 0.0), time_limit_s=time_limit_s,
                       progress=progress)
    hit = np.asarray(sets[solutions[2].chosen].sum(axis=0)).ravel() > 0
    achieved = np.bincount(group, weights=hit, minlength=len(caps))
    names = table[KEYS].to_numpy(dtype=object)
    requirements = pd.DataFrame({
        "rule": [r[0] for r in req_rows], "district": [names[r[1], 0] for r in req_rows],
        "jiezhen": [names[r[1], 1] for r in req_rows], "need": cap, "reachable": reachable,
        "achieved": achieved, "met": achieved >= cap - 1e-9})
    stats = {"candidates": candidates, "n_candidates": len(cands), "scope": "flagged",
             "n_useful": int((by_site.getnnz(axis=1) > 0).sum()), "objective": None,
             "scope_units": int(flagged.sum()), "scope_points": int(in_scope.sum()),
             "before": int(before.sum()), "eligible": len(rows), "rules": ids,
             "reachable": int((by_site.getnnz(axis=0) > 0).sum()),
             "n_requirements": len(caps), "unmet": int((~requirements["met"]).sum()),
             "method": method}
    return _finish(result, layer, form="min_cover", candidates=cands, by_site=reach,
                   rows=uncovered, solutions=solutions, stats=stats, requirements=requirements)


# --- outputs ---------------------------------------------------------------------------------


def _points_csv(frame: gpd.GeoDataFrame) -> pd.DataFrame:
    xy = shapely.get_coordinates(frame.geometry.to_crs("EPSG:4326").to_numpy())
    return pd.DataFrame(frame.drop(columns="geometry")).assign(
        lon=xy[:, 0].round(6), lat=xy[:, 1].round(6))


def _confirmed(rec: Recommendation, after: Result) -> int:
    """How many promised points the re-run finds covered (or passing the objective)."""
    assert after.demand is not None
    rows = rec.newly_covered["row"].to_numpy()
    rule = rec.stats["objective"]
    ok = (after.check.demand_pass[rule] if rule else
          after.demand[f"{rec.layer}_n"].to_numpy() > 0)
    return int(np.asarray(ok)[rows].sum())


def write_recommendation(
    rec: Recommendation, result: Result, out_dir: str | Path, *,
    after: WhatIf | None = None, map_html: bool = True, map_options: object | None = None,
) -> dict[str, Path]:
    """Write proposals, atomically, into ``out_dir``.

    Files: ``recommend.gpkg`` (layers ``proposals``, ``proposal_areas``, ``newly_covered``,
    ``units``), ``recommendations.csv``, ``gap_report.csv`` (the baseline report plus
    ``proposed_sites``, ``newly_covered`` and, with ``after``, the ``*_after`` columns),
    ``requirements.csv`` (set covering), ``summary.json`` and, with ``after``, ``map.html``
    (the re-run with the proposals as their own layer).

    Parameters
    ----------
    rec
        From :func:`recommend` or :func:`cover`.
    result
        The baseline run.
    out_dir
        Output folder.
    after
        :func:`coverage15.planning.scenarios.whatif` with the proposals added: the after columns,
        the re-run check and the map.
    map_html, map_options
        Write the map; :class:`coverage15.outputs.maps.MapOptions`.

    Returns
    -------
    dict
        Output name → path.
    """
    units = result.units_gdf()
    key = pd.MultiIndex.from_frame(units[KEYS])
    for column, frame in (("proposed_sites", rec.proposals),
                          ("newly_covered", rec.newly_covered)):
        counts = frame.groupby(KEYS).size()
        units[column] = counts.reindex(key).fillna(0).astype("int64").to_numpy()
    summary: dict[str, Any] = {"config": result.config.name, "stats": rec.stats}
    if after is not None:
        d = after.diff
        for c in [c for c in d.columns if c.endswith("_after")]:
            units[c] = d[c].to_numpy()
        summary["rerun_confirms"] = _confirmed(rec, after.after)
        summary["whatif"] = after.summary()
    summary["lines"] = rec.summary(after)
    summary["lines_zh"] = rec.summary_zh(after)
    proposals = rec.proposals.copy()
    if after is not None:
        credit = rec.credits(after)
        proposals["now_passes"] = ["、".join(j for (_, j), (r, _) in credit.items() if r == rank)
                                   for rank in proposals["rank"]]
    tables = {"recommendations.csv": _points_csv(proposals),
              "gap_report.csv": pd.DataFrame(units.drop(columns="geometry"))}
    if rec.requirements is not None:
        tables["requirements.csv"] = rec.requirements
    return write_bundle(out_dir, tables=tables, gpkg="recommend.gpkg",
                        layers={"proposals": proposals, "proposal_areas": rec.areas,
                                "newly_covered": rec.newly_covered, "units": units},
                        summary=summary, map_result=after.after if after and map_html else None,
                        map_options=_with_sites(map_options, result, proposals))


def _with_sites(options: object | None, result: Result, proposals: pd.DataFrame) -> object:
    """Map options that number the proposed sites (their ids on the map: ``new:…``)."""
    from coverage15.outputs.maps import MapOptions

    opts = options if isinstance(options, MapOptions) else MapOptions.from_config(
        result.config.map)
    sites = pd.DataFrame(proposals.drop(columns="geometry")).assign(
        facility_id="new:" + proposals["facility_id"].astype(str))
    return dataclasses.replace(opts, proposals=sites)
