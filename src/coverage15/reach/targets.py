"""The plan's targets as rules from a config file, checked for every unit.

Rule kinds
----------
``one_plus_n``
    "1+N": a demand point passes when at least one facility of the centre layers and at
    least ``n`` of the station layers are within the walking limit; a unit passes when the
    share of its demand points that pass reaches ``min_share``. Needs the network, so it is
    only evaluated for units wholly inside the network extent.
``full_coverage``
    Each unit has at least ``min_count`` facilities of ``layer`` (the plan's rule for
    康复辅具租赁点 and 社工站). Needs no network: evaluated for every unit.
``demand_share``
    At least ``min_share`` of a unit's demand points within reach of ``layer``.
``citywide_count``
    The whole study area has at least ``min_count`` facilities of ``layer`` (e.g. ~500
    社区综合为老服务中心 by 2025). One result for the run, not per unit.
``facility_sum``
    The sum of a facility ``attribute`` (e.g. ``beds``; the count without one) of ``layer``
    reaches ``min_value``, citywide or per district/街镇 (``scope``).
``ratio``
    That sum per ``per`` persons of a ``population`` column (e.g. beds per 1,000 residents
    aged 60+) reaches ``min_value`` per district or 街镇; see :mod:`._ratios`.

Walking rules (``one_plus_n``, ``demand_share``) may set their own limit, per side:
``minutes``/``distance_m`` for the rule, ``centre_minutes``/``station_minutes`` (or
``*_distance_m``) for one side; minutes are walked at each profile's speed. They are
evaluated for every walking profile of the analysis from the pairs within the largest limit.

A rule naming a layer the run does not define is reported as "not evaluated", not an error:
one targets file serves runs with different layers.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from coverage15._errors import ConfigError
from coverage15.inputs.config import read_toml
from coverage15.inputs.specs import WalkProfile
from coverage15.reach import _ratios, _reasons

__all__ = [
    "CitywideResult",
    "Rule",
    "TargetCheck",
    "check_targets",
    "load_targets",
]

RuleKind = Literal["one_plus_n", "full_coverage", "demand_share", "citywide_count",
                   "facility_sum", "ratio"]
KINDS: tuple[str, ...] = ("one_plus_n", "full_coverage", "demand_share", "citywide_count",
                          "facility_sum", "ratio")
Scope = Literal["citywide", "district", "jiezhen"]
Pairs = tuple[np.ndarray, np.ndarray, np.ndarray]
_LIMIT_KEYS = ("minutes", "distance_m", "centre_minutes", "centre_distance_m",
               "station_minutes", "station_distance_m")


@dataclass(frozen=True)
class Rule:
    """One target rule (see the module docstring for the kinds)."""

    id: str
    kind: RuleKind
    label: str = ""
    layer: str | None = None
    centre_layers: tuple[str, ...] = ()
    station_layers: tuple[str, ...] = ()
    n: int = 1
    min_share: float = 1.0
    min_count: int = 1
    minutes: float | None = None
    distance_m: float | None = None
    centre_minutes: float | None = None
    centre_distance_m: float | None = None
    station_minutes: float | None = None
    station_distance_m: float | None = None
    attribute: str | None = None
    population: str | None = None
    per: float = 1000.0
    min_value: float = 0.0
    scope: Scope = "citywide"

    def limit_m(self, side: Literal["centre", "station", "layer"], profile: WalkProfile,
                minutes: float) -> float:
        """The walking limit of one side of the rule at ``profile``'s speed.

        A side's own distance, else its own minutes, else the rule's distance, else the
        rule's minutes, else the analysis' ``minutes``.
        """
        own_d = getattr(self, f"{side}_distance_m", None)
        own_m = getattr(self, f"{side}_minutes", None)
        if own_d is not None:
            return float(own_d)
        if own_m is not None:
            return profile.limit_m(own_m)
        if self.distance_m is not None:
            return float(self.distance_m)
        return profile.limit_m(self.minutes if self.minutes is not None else minutes)

    def max_limit_m(self, profiles: Sequence[WalkProfile], minutes: float) -> float:
        """The largest limit of any side at any profile (0 for rules without walking)."""
        if not self.needs_network:
            return 0.0
        sides: tuple[Literal["centre", "station", "layer"], ...] = (
            ("centre", "station") if self.kind == "one_plus_n" else ("layer",))
        return max(self.limit_m(s, p, minutes) for s in sides for p in profiles)

    @property
    def layers(self) -> tuple[str, ...]:
        """Every layer the rule needs."""
        if self.kind == "one_plus_n":
            return self.centre_layers + self.station_layers
        return (self.layer,) if self.layer else ()

    @property
    def needs_network(self) -> bool:
        """Whether the rule depends on walking distances."""
        return self.kind in ("one_plus_n", "demand_share")


@dataclass(frozen=True)
class CitywideResult:
    """Outcome of a citywide rule."""

    rule: Rule
    value: float | None
    passed: bool | None
    reason: str
    reason_zh: str = ""


@dataclass(frozen=True)
class TargetCheck:
    """Per-unit flags and reasons, and citywide outcomes.

    Attributes
    ----------
    flags : pandas.DataFrame
        Indexed like the unit table: ``{rule}_share`` for share rules, ``pass_{rule}``
        (True/False, missing when not evaluated), ``uncovered`` (True: fails a rule judged
        there; False: passes every rule, all judged; missing: passes the rules judged, but
        walking rules could not be) and ``reason``.
    citywide : list of CitywideResult
    skipped : dict
        Rule id → why it was not evaluated.
    skipped_zh : dict
        The same, in Chinese.
    demand_pass : dict
        Rule id → boolean array per demand point (share rules).
    """

    flags: pd.DataFrame
    citywide: list[CitywideResult]
    skipped: dict[str, str] = field(default_factory=dict)
    demand_pass: dict[str, np.ndarray] = field(default_factory=dict)
    skipped_zh: dict[str, str] = field(default_factory=dict)
    profiles: tuple[WalkProfile, ...] = ()


def _rule_from(table: Any, i: int, file: str, problems: list[str]) -> Rule | None:
    where = f"{file} rule #{i + 1}"
    if not isinstance(table, dict):
        problems.append(f"{where}: expected a table")
        return None
    rid = table.get("id")
    kind = table.get("kind")
    if not isinstance(rid, str) or not rid.isidentifier() or not rid.isascii():
        problems.append(f"{where}: id must be an ascii identifier (it names a column), got {rid!r}")
        return None
    where = f"{file} rule {rid!r}"
    if kind not in KINDS:
        problems.append(f"{where}: kind {kind!r} is not one of {KINDS}")
        return None
    known = {"id", "kind", "label", "layer", "centre_layers", "station_layers", "n",
             "min_share", "min_count", "minutes", "distance_m", "centre_minutes",
             "centre_distance_m", "station_minutes", "station_distance_m", "attribute",
             "population", "per", "min_value", "scope"}
    for key in sorted(set(table) - known):
        problems.append(f"{where}: unknown key {key!r}")
    share = table.get("min_share", 1.0)
    if not isinstance(share, int | float) or not 0.0 <= share <= 1.0:
        problems.append(f"{where}: min_share must be a share in [0, 1], got {share!r}")
        share = 1.0
    for key in ("n", "min_count"):
        value = table.get(key, 1)
        if not isinstance(value, int) or value < 0:
            problems.append(f"{where}: {key} must be a whole number >= 0, got {value!r}")
    layer = table.get("layer")
    if kind != "one_plus_n" and not isinstance(layer, str):
        problems.append(f"{where}: needs layer = \"<layer key>\"")
    centres, stations = (_keys(table, key, where, problems)
                         for key in ("centre_layers", "station_layers"))
    if kind == "one_plus_n" and not centres:
        problems.append(f"{where}: needs centre_layers = [\"...\"]")
    extra = _limits_and_ratio(table, kind, where, problems)
    return Rule(
        id=rid,
        kind=kind,
        label=str(table.get("label", rid)),
        layer=layer if isinstance(layer, str) else None,
        centre_layers=centres,
        station_layers=stations,
        n=int(table.get("n", 1)) if isinstance(table.get("n", 1), int) else 1,
        min_share=float(share),
        min_count=int(table.get("min_count", 1)) if isinstance(table.get("min_count", 1), int)
        else 1,
        **extra,
    )


def _limits_and_ratio(table: dict[str, Any], kind: str, where: str,
                      problems: list[str]) -> dict[str, Any]:
    """The walking limits and the sum/ratio keys of a rule, checked."""
    out: dict[str, Any] = {}
    for key in _LIMIT_KEYS:
        if key not in table:
            continue
        value = table[key]
        if kind not in ("one_plus_n", "demand_share"):
            problems.append(f"{where}: {key} only applies to walking rules "
                            "(one_plus_n, demand_share)")
        elif key.startswith(("centre_", "station_")) and kind != "one_plus_n":
            problems.append(f"{where}: {key} only applies to one_plus_n (use "
                            f"{key.split('_', 1)[1]})")
        elif isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            problems.append(f"{where}: {key} must be a number > 0, got {value!r}")
        else:
            out[key] = float(value)
    ratio_keys = ("attribute", "population", "per", "min_value", "scope")
    if kind not in ("facility_sum", "ratio"):
        for key in ratio_keys:
            if key in table:
                problems.append(f"{where}: {key} only applies to facility_sum and ratio")
        return out
    for key in ("attribute", "population"):
        if key in table and not isinstance(table[key], str):
            problems.append(f"{where}: {key} must be a column name, got {table[key]!r}")
        elif key in table:
            out[key] = table[key]
    if kind == "ratio" and "population" not in table:
        problems.append(f"{where}: needs population = \"<population column>\", e.g. "
                        "\"age_60_plus\"")
    if kind == "facility_sum" and "population" in table:
        problems.append(f"{where}: population only applies to ratio")
    for key in ("per", "min_value"):
        value = table.get(key)
        if value is None:
            if key == "min_value":
                problems.append(f"{where}: needs min_value = <number>")
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            problems.append(f"{where}: {key} must be a number >= 0, got {value!r}")
        else:
            out[key] = float(value)
    scope = table.get("scope", "citywide" if kind == "facility_sum" else "district")
    allowed = ("citywide", "district", "jiezhen")
    if scope not in allowed:
        problems.append(f"{where}: scope {scope!r} is not one of {allowed}")
    else:
        out["scope"] = scope
    return out


def _keys(table: dict[str, Any], key: str, where: str, problems: list[str]) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(f"{where}: {key} must be a list of layer keys, e.g. "
                        f"{key} = [\"meal_point\"], got {value!r}")
        return ()
    return tuple(value)


def load_targets(path: str | os.PathLike[str]) -> list[Rule]:
    """Read target rules from a TOML file with ``[[rules]]`` tables.

    Raises
    ------
    ConfigError
        Listing every problem, each naming the rule and key at fault.
    """
    file = Path(path)
    if not file.is_file():
        msg = f"targets {file}: file not found; check `targets` in the run config"
        raise ConfigError(msg)
    doc = read_toml(file, "targets")
    problems: list[str] = []
    rules = [_rule_from(t, i, file.name, problems) for i, t in enumerate(doc.get("rules", []))]
    ids = [r.id for r in rules if r is not None]
    for dup in sorted({i for i in ids if ids.count(i) > 1}):
        problems.append(f"{file.name}: rule id {dup!r} is used twice")
    if not ids and not problems:
        problems.append(f"{file.name}: no [[rules]] defined")
    if problems:
        msg = f"targets {file} has {len(problems)} problem(s):\n  " + "\n  ".join(problems)
        raise ConfigError(msg)
    return [r for r in rules if r is not None]


def _side_count(keys: Sequence[str], pairs: Mapping[str, Pairs], n_demand: int,
                limit_m: float) -> np.ndarray:
    """Facilities of ``keys`` within ``limit_m`` of each demand point."""
    total = np.zeros(n_demand, dtype=np.int64)
    for key in keys:
        _, target, dist = pairs[key]
        total = total + np.bincount(np.asarray(target)[np.asarray(dist) <= limit_m],
                                    minlength=n_demand)
    return total


def _demand_passing(rule: Rule, demand_cover: pd.DataFrame,
                    pairs: Mapping[str, Pairs] | None, profile: WalkProfile | None,
                    minutes: float) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """Whether each demand point meets a walking rule (at ``profile``'s speed and limits).

    For "1+N" also whether each point has its centre and its N stations (the two sides).
    """
    n = len(demand_cover)
    if pairs is None or profile is None:
        def count(keys: Sequence[str], side: str) -> np.ndarray:
            out = np.zeros(n, dtype=np.int64)
            for k in keys:
                out = out + demand_cover[f"{k}_n"].to_numpy()
            return out
    else:
        def count(keys: Sequence[str], side: str) -> np.ndarray:
            limit = rule.limit_m(side, profile, minutes)  # type: ignore[arg-type]
            return _side_count(keys, pairs, n, limit)
    if rule.kind == "one_plus_n":
        centre_ok = count(rule.centre_layers, "centre") >= 1
        station_ok = count(rule.station_layers, "station") >= rule.n
        return centre_ok & station_ok, (centre_ok, station_ok)
    assert rule.layer is not None
    return count((rule.layer,), "layer") > 0, None


def _unit_share(demand_unit: np.ndarray, passing: np.ndarray, n_units: int,
                weights: np.ndarray | None = None) -> np.ndarray:
    """Share of each unit's points (or of their weights) that pass; NaN where none."""
    located = demand_unit >= 0
    if weights is not None:
        located = located & np.isfinite(weights)
    w = np.ones(len(passing)) if weights is None else np.nan_to_num(weights, nan=0.0)
    total = np.bincount(demand_unit[located], weights=w[located], minlength=n_units)
    good = np.bincount(demand_unit[located], weights=(w * passing)[located], minlength=n_units)
    has = total > 0 if weights is not None else (
        np.bincount(demand_unit[located], minlength=n_units) > 0)
    share: np.ndarray = np.where(has, good / np.where(has, total, 1.0), np.nan)
    return share


def check_targets(
    units: pd.DataFrame,
    rules: list[Rule],
    *,
    demand_cover: pd.DataFrame | None,
    demand_unit: np.ndarray | None,
    layer_labels: dict[str, str],
    layer_totals: dict[str, int],
    pairs: Mapping[str, Pairs] | None = None,
    profiles: Sequence[WalkProfile] = (),
    minutes: float = 15.0,
    weights: np.ndarray | None = None,
    level: _ratios.Level = "jiezhen",
    facilities: Mapping[str, _ratios.FacilityValues] | None = None,
    population: _ratios.UnitPopulation | None = None,
    share_basis: Literal["points", "people"] = "points",
) -> TargetCheck:
    """Evaluate every rule for every unit.

    Parameters
    ----------
    units
        :func:`coverage15.reach.coverage.coverage_by_unit` output (``network``, ``{key}_count``).
    rules
        From :func:`load_targets`.
    demand_cover
        :func:`coverage15.reach.coverage.demand_coverage` output, or None.
    demand_unit
        Unit position of each demand point (``-1`` when outside every unit).
    layer_labels
        Label of each layer in the run, for reasons.
    layer_totals
        Facilities per layer in the whole study area (for citywide rules).
    pairs
        Per layer, ``(facility, demand, dist_m)`` within the largest limit: with
        ``profiles``, walking rules are judged from these at each profile's speed and each
        rule's own limits (else from ``demand_cover``'s counts, at the run's one limit).
    profiles
        Walking profiles, the verdict profile first: its results fill ``{rule}_share`` and
        ``pass_{rule}``; every other profile's ``{rule}_share_{id}`` and ``pass_{rule}_{id}``.
    minutes
        The analysis' minutes (for rules without their own limit).
    weights
        Persons per demand point (NaN: unknown): adds ``{rule}_people_share[_{id}]``.
    share_basis
        What the walking rules' verdicts judge: the share of residential ``"points"``, or of
        ``"people"`` (the people share; without ``weights``: not evaluated).
    level
        What the units are (``jiezhen`` or ``district``), for sum and ratio rules.
    facilities
        Per layer, the unit of each facility and its attributes (sum and ratio rules).
    population
        Population per unit (ratio rules).

    Returns
    -------
    TargetCheck
    """
    flags: dict[str, Any] = {}  # the columns, made into one frame at the end (it is faster)
    n_units = len(units)
    reasons: list[list[str]] = [[] for _ in range(n_units)]
    reasons_zh: list[list[str]] = [[] for _ in range(n_units)]  # the same, in Chinese
    skipped: dict[str, str] = {}
    skipped_zh: dict[str, str] = {}
    citywide: list[CitywideResult] = []
    demand_pass: dict[str, np.ndarray] = {}
    verdict_columns: list[str] = []
    full = (units["network"] == "full").to_numpy()
    profs: tuple[WalkProfile | None, ...] = (
        tuple(profiles) if pairs is not None and profiles else (None,))
    slower_fail: list[list[str]] = [[] for _ in range(n_units)]
    for rule in rules:
        missing = [k for k in rule.layers if k not in layer_labels]
        if missing:
            close = {k: difflib.get_close_matches(k, sorted(layer_labels), n=1) for k in missing}
            hints = [f"did you mean {c[0]!r} for {k!r}?" for k, c in close.items() if c]
            skipped[rule.id] = (f"layer(s) {missing} not in this run's config"
                                + (f" ({'; '.join(hints)})" if hints else ""))
            skipped_zh[rule.id] = f"图层 {'、'.join(missing)} 不在本次运行的配置中，未评估"
            continue
        if rule.kind == "citywide_count":
            assert rule.layer is not None
            total = layer_totals[rule.layer]
            citywide.append(CitywideResult(
                rule, total, total >= rule.min_count,
                f"{total} {layer_labels[rule.layer]} (target ≥ {rule.min_count})",
                _reasons.citywide_reason_zh(rule, total, layer_labels),
            ))
            continue
        column = f"pass_{rule.id}"
        if rule.kind in ("facility_sum", "ratio"):
            _sum_or_ratio(rule, level, n_units, facilities=facilities, population=population,
                          flags=flags, reasons=reasons, reasons_zh=reasons_zh, skipped=skipped,
                          citywide=citywide, verdict_columns=verdict_columns)
            continue
        if rule.kind == "full_coverage":
            assert rule.layer is not None
            count = units[f"{rule.layer}_count"].to_numpy()
            count_ok = count >= rule.min_count
            for i in np.flatnonzero(~count_ok):
                en, zh = _reasons.count_reason(rule, int(count[i]), layer_labels)
                reasons[i].append(en)
                reasons_zh[i].append(zh)
            flags[column] = pd.array(count_ok, dtype="boolean")
            verdict_columns.append(column)
            continue
        if demand_cover is None or demand_unit is None:
            skipped[rule.id] = "no demand layer in this run"
            skipped_zh[rule.id] = "本次运行没有居住点（需求）图层，未评估"
            continue
        people = share_basis == "people"
        if people and weights is None:
            skipped[rule.id], skipped_zh[rule.id] = _reasons.NO_WEIGHTS
            continue
        n_points = np.bincount(demand_unit[demand_unit >= 0], minlength=n_units)
        evaluable = full & (n_points > 0)
        for position, profile in enumerate(profs):
            suffix = "" if position == 0 or profile is None else f"_{profile.id}"
            passing, side_ok = _demand_passing(rule, demand_cover, pairs, profile, minutes)
            demand_pass[f"{rule.id}{suffix}"] = passing
            share = _unit_share(demand_unit, passing, n_units)
            flags[f"{rule.id}_share{suffix}"] = share
            if weights is not None:
                flags[f"{rule.id}_people_share{suffix}"] = _unit_share(
                    demand_unit, passing, n_units, weights)
            if people:  # judged on the people share (NaN where no population: not judged)
                share = np.asarray(flags[f"{rule.id}_people_share{suffix}"], dtype=float)
            share_ok = share >= rule.min_share
            judged = evaluable & ~np.isnan(share)  # NaN: a people share without population
            flags[f"{column}{suffix}"] = pd.arrays.BooleanArray(share_ok & judged, ~judged)
            if suffix:
                assert profile is not None
                for i in np.flatnonzero(judged & ~share_ok):
                    slower_fail[i].append(f"{profile.id}:{rule.id}:{_reasons.pct(share[i])}")
                continue
            verdict_columns.append(column)
            sides = (None if side_ok is None else _reasons.one_plus_n_sides(
                side_ok[0], side_ok[1], np.asarray(demand_unit), n_units))
            n_all, n_pass = _reasons.counts(demand_unit, passing, n_units,
                                            weights if people else None)
            for i in np.flatnonzero(evaluable & ~share_ok & ~np.isnan(share)):
                en, zh = _reasons.share_reason(
                    rule, float(share[i]), n_points=round(n_all[i]),
                    n_pass=float(n_pass[i]), labels=layer_labels, people=people,
                    sides=None if sides is None else (float(sides[0][i]),
                                                      float(sides[1][i])))
                reasons[i].append(en)
                reasons_zh[i].append(zh)
    _reasons.slower_walkers(flags, profs, slower_fail, reasons, reasons_zh)
    failed = np.zeros(n_units, dtype=bool)
    for c in verdict_columns:
        failed |= ~pd.array(flags[c], dtype="boolean").to_numpy(dtype=bool, na_value=True)
    # uncovered: fails any rule judged there (count rules are judged everywhere: they need no
    # streets); passes: every rule judged (wholly inside the network); otherwise unknown
    flags["uncovered"] = pd.arrays.BooleanArray(failed, ~(full | failed))
    status = units["network"].to_numpy()
    share_in = units["network_share"].to_numpy()
    text: list[str] = []
    text_zh: list[str] = []
    for row in range(n_units):
        parts = list(reasons[row])
        parts_zh = list(reasons_zh[row])
        if status[row] != "full":
            en, zh = _reasons.network_reason(status[row], float(share_in[row]))
            parts.insert(0, en)
            parts_zh.insert(0, zh)
        text_zh.append("；".join(parts_zh) or "已评估的目标均达标")
        text.append("; ".join(parts) or "passes every evaluated rule")
    flags["reason"] = text
    flags["reason_zh"] = text_zh
    real = tuple(p for p in profs if p is not None)
    return TargetCheck(flags=pd.DataFrame(flags, index=units.index), citywide=citywide,
                       skipped=skipped, demand_pass=demand_pass, skipped_zh=skipped_zh,
                       profiles=real)


def _sum_or_ratio(rule: Rule, level: _ratios.Level, n_units: int, *,
                  facilities: Mapping[str, _ratios.FacilityValues] | None,
                  population: _ratios.UnitPopulation | None, flags: dict[str, Any],
                  reasons: list[list[str]], reasons_zh: list[list[str]],
                  skipped: dict[str, str], citywide: list[CitywideResult],
                  verdict_columns: list[str]) -> None:
    """Judge a ``facility_sum`` or ``ratio`` rule into ``flags`` (or citywide/skipped)."""
    if facilities is None:
        if rule.scope == level or (rule.scope == "citywide" and level == "jiezhen"):
            skipped[rule.id] = "no facility attributes given to the check"
        return
    outcome = _ratios.evaluate(rule, level=level, n_units=n_units, facilities=facilities,
                               population=population)
    if outcome is None:
        return
    if outcome.skipped is not None:
        skipped[rule.id] = outcome.skipped
        return
    if outcome.citywide is not None:
        value, passed, why = outcome.citywide
        zh = why  # the workbook's 汇总 sheet is in Chinese
        if value is not None and rule.min_value is not None:
            form = ",.1f" if rule.kind == "ratio" else ",.0f"
            lack = (f"，尚差 {rule.min_value - value:{form}}" if passed is False else "")
            zh = (f"{rule.label}：全市{'' if rule.kind == 'ratio' else '合计 '}{value:{form}}"
                  f"（目标 ≥ {rule.min_value:{form}}{lack}）")
        citywide.append(CitywideResult(rule, value, passed, why, zh))
        return
    assert outcome.unit_values is not None
    assert outcome.passed is not None
    flags[f"{rule.id}_value"] = np.round(outcome.unit_values, 2)
    flags[f"pass_{rule.id}"] = pd.array(outcome.passed.to_numpy(), dtype="boolean")
    verdict_columns.append(f"pass_{rule.id}")
    for i, why in (outcome.reasons or {}).items():
        got = float(outcome.unit_values[i])
        text = f"{got:.1f}" if rule.kind == "ratio" else f"{got:,.0f}"
        short = rule.min_value - got
        reasons[i].append(f"{why}; short by {short:,.1f}" if rule.kind == "ratio"
                          else f"{why}; short by {short:,.0f}")
        reasons_zh[i].append(f"{rule.label}：{text}（需 ≥ {rule.min_value:g}，尚差 "
                             + (f"{short:,.1f}）" if rule.kind == "ratio" else f"{short:,.0f}）"))
