"""Proposed sites in a planner's words: where each is, and what it changes.

Used by :mod:`coverage15.planning.recommend`: a site is told by its street and nearest
crossing (the network's own street names, :func:`coverage15.network._names.place_names`) and
its 街镇; its effect by the points it newly covers, the 街镇 whose share it moves (before →
after, counting the sites ranked before it) and, after the re-run, the 街镇 that now pass.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from coverage15.network._names import place_names
from coverage15.reach._reasons import pct

if TYPE_CHECKING:
    import geopandas as gpd

    from coverage15.result import Result

__all__ = ["credits", "move", "name_sites", "pct", "site_effects", "site_lines", "summary_zh",
           "tell_proposals", "tell_sites", "unit_changes"]


def move(before: float, after: float) -> str:
    """``before → after`` as percentages, with as many decimals as it takes to differ."""
    for d in range(3):
        a, b = pct(before, d), pct(after, d)
        if a != b or before == after:
            return f"{a} → {b}"
    return f"{pct(before, 3)} → {pct(after, 3)}"


def name_sites(result: Result, sites: gpd.GeoDataFrame) -> tuple[list[str], list[str]]:
    """Each site's street and nearest crossing, in Chinese and in English."""
    if len(sites) == 0:
        return [], []
    xy = np.column_stack([sites.geometry.to_crs(result.network.crs).x,
                          sites.geometry.to_crs(result.network.crs).y])
    places = place_names(result.network, xy)
    return [p[0] for p in places], [p[1] for p in places]


def site_effects(before_covered: np.ndarray, where: np.ndarray, names: np.ndarray, *,
                 rows: np.ndarray, rank: np.ndarray, n_sites: int) -> list[list[dict[str, Any]]]:
    """Per site (in rank order): the 街镇 whose share it moves, before → after.

    Parameters
    ----------
    before_covered
        Per demand point: counted before any proposal.
    where
        Per demand point: its unit position (-1 outside every unit).
    names
        Per unit position: ``(district, jiezhen)``.
    rows, rank
        The newly covered demand rows and the rank of the first site reaching each.
    n_sites
        How many sites.
    """
    located = where >= 0
    n_units = len(names)
    points = np.bincount(where[located], minlength=n_units)
    done = np.bincount(where[located], weights=before_covered[located], minlength=n_units)
    out: list[list[dict[str, Any]]] = []
    for i in range(1, n_sites + 1):
        mine = rows[rank == i]
        mine = mine[where[mine] >= 0]
        gained = np.bincount(where[mine], minlength=n_units)
        changes = []
        for u in np.flatnonzero(gained):
            share_before = done[u] / max(points[u], 1)
            done[u] += gained[u]
            changes.append({"district": names[u][0], "jiezhen": names[u][1],
                            "points": int(gained[u]), "before": round(share_before, 4),
                            "after": round(done[u] / max(points[u], 1), 4)})
        out.append(sorted(changes, key=lambda c: -c["points"]))
    return out


def unit_changes(diff: pd.DataFrame) -> dict[str, list[tuple[str, str]]]:
    """The 街镇 that newly pass and newly fail in a what-if diff, by name."""
    return {what: [(r.district, r.jiezhen) for r in diff.loc[diff["change"] == what]
                   .itertuples(index=False)] for what in ("newly passes", "newly fails")}


def tell_sites(result: Result, layer: str, sites: gpd.GeoDataFrame) -> pd.DataFrame:
    """Added sites told in a planner's words (for a what-if).

    Per site (in the given order): ``place`` / ``place_en`` (street and nearest crossing),
    ``district``, ``jiezhen``, ``newly_covered`` (residential points not within reach of
    ``layer`` before that it reaches and no site listed above it does) and ``effect`` /
    ``effect_en`` (the 街镇 whose share of points within reach it moves, before → after).
    """
    from coverage15.planning._reach_sets import coverage_sets
    from coverage15.reach.coverage import assign_units

    out = pd.DataFrame({"facility_id": sites["facility_id"].astype(str).to_numpy(),
                        "name": sites["name"].astype(str).to_numpy()})
    place, place_en = name_sites(result, sites)
    out["place"], out["place_en"] = place, place_en
    at = assign_units(sites.to_crs("EPSG:4326"), result.units).to_numpy()
    names = np.vstack([result.units[["district", "unit"]].to_numpy(dtype=object),
                       [[None, None]]])
    out["district"], out["jiezhen"] = names[at, 0], names[at, 1]
    effects: list[list[dict[str, Any]]] = [[] for _ in range(len(sites))]
    newly = np.zeros(len(sites), dtype=np.int64)
    if result.demand is not None and len(sites):
        covered = result.demand[f"{layer}_n"].to_numpy() > 0
        on = result.demand["on_network"].to_numpy(dtype=bool)
        rows = np.flatnonzero(~covered & on)
        sets = coverage_sets(result, sites[["facility_id", "name", "geometry"]]
                             .reset_index(drop=True), rows)
        rank = np.zeros(len(rows), dtype=np.int64)
        for i in range(len(sites)):
            cols = sets.indices[sets.indptr[i]:sets.indptr[i + 1]]
            cols = cols[rank[cols] == 0]
            rank[cols] = i + 1
            newly[i] = len(cols)
        where = assign_units(result.demand, result.units).to_numpy()
        unit_names = result.units[["district", "unit"]].to_numpy(dtype=object)
        hit = rank > 0
        effects = site_effects(covered, where, unit_names, rows=rows[hit], rank=rank[hit],
                               n_sites=len(sites))
    out["newly_covered"] = newly
    out["effect"] = ["；".join(f"{c['jiezhen']} {move(c['before'], c['after'])}" for c in e)
                     for e in effects]
    out["effect_en"] = ["; ".join(f"{c['jiezhen']} {move(c['before'], c['after'])}"
                                  for c in e) for e in effects]
    return out


def tell_proposals(result: Result, layer: str, props: gpd.GeoDataFrame, *, rows: np.ndarray,
                   rank: np.ndarray, stats: dict[str, Any], where: np.ndarray) -> None:
    """Name the proposals by street, crossing and 街镇, and say what each changes (in place).

    Adds ``place`` / ``place_en`` (street and nearest crossing), ``effect`` / ``effect_en``
    (the 街镇 whose share the site moves, before → after, counting the sites ranked before
    it) and, for street-node candidates, a ``name`` a planner can read; ``stats["_sites"]``.
    """
    assert result.demand is not None
    rule = stats["objective"]
    counted = (np.asarray(result.check.demand_pass[rule], dtype=bool) if rule else
               result.demand[f"{layer}_n"].to_numpy() > 0)
    names = result.units[["district", "unit"]].to_numpy(dtype=object)
    effects = site_effects(counted, where, names, rows=rows, rank=rank, n_sites=len(props))
    place, place_en = name_sites(result, props)
    props["place"], props["place_en"] = place, place_en
    jz = props["jiezhen"].fillna("街镇外").astype(str).to_numpy()
    nodes = (props["source"] == "nodes").to_numpy() if "source" in props else np.zeros(
        len(props), dtype=bool)
    props.loc[nodes, "name"] = [f"{j} {p}" for j, p, n in zip(jz, place, nodes, strict=True)
                                if n]
    props["effect"] = ["；".join(f"{c['jiezhen']} {move(c['before'], c['after'])}"
                                for c in e) for e in effects]
    props["effect_en"] = ["; ".join(f"{c['jiezhen']} {move(c['before'], c['after'])}"
                                   for c in e) for e in effects]
    stats["_sites"] = [{"rank": int(r.rank), "place": r.place, "place_en": r.place_en,
                        "district": r.district, "jiezhen": r.jiezhen,
                        "newly_covered": int(r.newly_covered), "changes": e}
                       for r, e in zip(props.itertuples(), effects, strict=True)]


def summary_zh(rec: Any, after: Any = None) -> list[str]:
    """A recommendation's summary in Chinese: the sites, what each changes, who passes."""
    s = rec.stats
    what = f"达到 {s['objective']}" if s["objective"] else f"在{rec.label}步行 15 分钟内"
    lines = [f"范围：{s['scope_units']} 个街镇，{s['scope_points']} 个居住点，其中 "
             f"{s['before']} 个{what}（{pct(s['share_before'], 1)}）",
             f"拟建 {len(rec.proposals)} 处{rec.label}：新覆盖 {s['newly_covered']} "
             f"个居住点，覆盖率 {pct(s['share_before'], 1)} → {pct(s['share_after'], 1)}"]
    credit, flagged = _after_verdicts(rec, after)
    for p, site in zip(rec.proposals.itertuples(), s.get("sites", []), strict=False):
        moves = _moves(site, p.rank, credit, flagged, passes="（由此达标）",
                       fails="（仍未达标）")
        where = f"{p.district}{p.jiezhen}" if pd.notna(p.jiezhen) else "街镇外"
        lines.append(f"{p.rank}. {where} {site['place']}：新覆盖 {p.newly_covered} 个居住点；"
                     + ("、".join(moves) or "无街镇覆盖率变化"))
    if after is not None:
        moved = unit_changes(after.diff)
        for change, word in (("newly passes", "新达标"), ("newly fails", "新不达标")):
            units = moved[change]
            told = "、".join(
                f"{d}{j}" + (f"（第 {credit[(d, j)][0]} 处"
                             + (f"，位于{credit[(d, j)][1]}）" if credit[(d, j)][1] != j
                                else "）") if (d, j) in credit else "")
                for d, j in units)
            lines.append(f"{word}街镇 {len(units)} 个" + (f"：{told}" if units else ""))
    return lines

def credits(rec: Any, after: Any) -> dict[tuple[str, str], tuple[int, str]]:
    """Each 街镇 that newly passes → (rank of the site that completes it, that site's 街镇).

    The last site (by rank) that moves its share; failing that, a site inside it.
    """
    out: dict[tuple[str, str], tuple[int, str]] = {}
    for d, j in unit_changes(after.diff)["newly passes"]:
        ranks = [site["rank"] for site in rec.stats.get("sites", [])
                 if any(c["district"] == d and c["jiezhen"] == j for c in site["changes"])]
        ranks += [] if ranks else [int(p.rank) for p in rec.proposals.itertuples()
                                   if p.district == d and p.jiezhen == j]
        if ranks:
            rank = max(ranks)
            where = rec.proposals.loc[rec.proposals["rank"] == rank, "jiezhen"].iloc[0]
            out[(d, j)] = (rank, str(where) if pd.notna(where) else "outside every 街镇")
    return out

def _after_verdicts(rec: Any, after: Any,
                    ) -> tuple[dict[tuple[str, str], tuple[int, str]], dict[tuple[str, str], bool]]:
    """After the re-run (None: not re-run): :func:`credits`, and which 街镇 still fail."""
    if after is None:
        return {}, {}
    flagged = {(r.district, r.jiezhen): bool(r.uncovered_after is True)
               for r in after.diff.itertuples(index=False)}
    return credits(rec, after), flagged


def _moves(site: dict[str, Any], rank: int, credit: dict[tuple[str, str], tuple[int, str]],
           flagged: dict[tuple[str, str], bool], *, passes: str, fails: str) -> list[str]:
    """The 街镇 shares a site moves, each marked as completed by it or still failing.

    ``passes`` follows a 街镇 this site makes pass, ``fails`` one that fails after every site.
    """
    moves = []
    for c in site["changes"]:
        key = (c["district"], c["jiezhen"])
        verdict = (passes if credit.get(key, (0,))[0] == rank
                   else fails if flagged.get(key) else "")
        moves.append(f"{c['jiezhen']} {move(c['before'], c['after'])}{verdict}")
    return moves


def site_lines(rec: Any, after: Any) -> list[str]:
    """Per site: where, what it newly covers, the 街镇 it moves (and their verdict after)."""
    credit, flagged = _after_verdicts(rec, after)
    what = (f"passing {rec.stats['objective']}" if rec.stats["objective"]
            else f"within reach of {rec.label}")
    lines = [f"  sites in order (each 街镇's share of residential points {what}, "
             "before → after the site and those above it):"]
    for p, site in zip(rec.proposals.itertuples(), rec.stats.get("sites", []),
                       strict=False):
        moves = _moves(site, p.rank, credit, flagged, passes=" now passes",
                       fails=" still fails")
        extra = [f"{j} now passes" for (dd, j), (r, _) in credit.items()
                 if r == p.rank and not any(c["jiezhen"] == j and c["district"] == dd
                                            for c in site["changes"])]
        where = f"{p.district} {p.jiezhen}" if pd.notna(p.jiezhen) else "outside every 街镇"
        lines.append(f"  {p.rank:>2}. {site['place_en']} ({where}): +{p.newly_covered} "
                     f"points; {', '.join(moves + extra) or 'no 街镇 share moves'}"
                     f" [scope {p.cumulative_share:.1%} after sites 1–{p.rank}]")
    return lines
