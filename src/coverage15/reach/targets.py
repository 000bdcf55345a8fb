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

A rule naming a layer the run does not define is reported as "not evaluated", not an error:
one targets file serves runs with different layers.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from coverage15._errors import ConfigError
from coverage15.inputs.config import read_toml
from coverage15.reach import _reasons

__all__ = [
    "CitywideResult",
    "Rule",
    "TargetCheck",
    "check_targets",
    "load_targets",
]

RuleKind = Literal["one_plus_n", "full_coverage", "demand_share", "citywide_count"]
KINDS: tuple[str, ...] = ("one_plus_n", "full_coverage", "demand_share", "citywide_count")


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
    value: int | None
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
             "min_share", "min_count"}
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
    )


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


def check_targets(
    units: pd.DataFrame,
    rules: list[Rule],
    *,
    demand_cover: pd.DataFrame | None,
    demand_unit: np.ndarray | None,
    layer_labels: dict[str, str],
    layer_totals: dict[str, int],
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

    Returns
    -------
    TargetCheck
    """
    flags = pd.DataFrame(index=units.index)
    reasons: list[list[str]] = [[] for _ in range(len(units))]
    reasons_zh: list[list[str]] = [[] for _ in range(len(units))]  # the same, in Chinese
    skipped: dict[str, str] = {}
    skipped_zh: dict[str, str] = {}
    citywide: list[CitywideResult] = []
    demand_pass: dict[str, np.ndarray] = {}
    full = (units["network"] == "full").to_numpy()
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
        result = pd.Series(pd.NA, index=units.index, dtype="boolean")
        if rule.kind == "full_coverage":
            assert rule.layer is not None
            count = units[f"{rule.layer}_count"].to_numpy()
            count_ok = count >= rule.min_count
            result[:] = count_ok
            for i in np.flatnonzero(~count_ok):
                en, zh = _reasons.count_reason(rule, int(count[i]), layer_labels)
                reasons[i].append(en)
                reasons_zh[i].append(zh)
            flags[column] = result
            continue
        if demand_cover is None or demand_unit is None:
            skipped[rule.id] = "no demand layer in this run"
            skipped_zh[rule.id] = "本次运行没有居住点（需求）图层，未评估"
            continue
        if rule.kind == "one_plus_n":
            centres = sum(demand_cover[f"{k}_n"].to_numpy() for k in rule.centre_layers)
            stations = np.zeros(len(demand_cover), dtype=np.int64)
            for k in rule.station_layers:
                stations = stations + demand_cover[f"{k}_n"].to_numpy()
            passing = (centres >= 1) & (stations >= rule.n)
            sides = _reasons.one_plus_n_sides(centres >= 1, stations >= rule.n,
                                              np.asarray(demand_unit), len(units))
        else:
            sides = None
            passing = demand_cover[f"{rule.layer}_n"].to_numpy() > 0
        demand_pass[rule.id] = passing
        located = demand_unit >= 0
        n_points = np.bincount(demand_unit[located], minlength=len(units))
        n_pass = np.bincount(demand_unit[located], weights=passing[located],
                             minlength=len(units))
        share = np.where(n_points > 0, n_pass / np.maximum(n_points, 1), np.nan)
        flags[f"{rule.id}_share"] = share
        evaluable = full & (n_points > 0)
        share_ok = share >= rule.min_share
        result[evaluable] = share_ok[evaluable]
        for i in np.flatnonzero(evaluable & ~share_ok):
            en, zh = _reasons.share_reason(
                rule, float(share[i]), n_points=int(n_points[i]), n_pass=float(n_pass[i]),
                labels=layer_labels,
                sides=None if sides is None else (float(sides[0][i]), float(sides[1][i])))
            reasons[i].append(en)
            reasons_zh[i].append(zh)
        flags[column] = result
    pass_cols = [c for c in flags.columns if c.startswith("pass_")]
    failed = (flags[pass_cols] == False).any(axis=1).to_numpy() if pass_cols else (  # noqa: E712
        np.zeros(len(units), dtype=bool))
    # uncovered: fails any rule judged there (count rules are judged everywhere: they need no
    # streets); passes: every rule judged (wholly inside the network); otherwise unknown
    uncovered = pd.Series(pd.NA, index=units.index, dtype="boolean")
    uncovered[full] = False
    uncovered[failed] = True
    flags["uncovered"] = uncovered
    status = units["network"].to_numpy()
    share_in = units["network_share"].to_numpy()
    text: list[str] = []
    text_zh: list[str] = []
    for row in range(len(units)):
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
    return TargetCheck(flags=flags, citywide=citywide, skipped=skipped, demand_pass=demand_pass,
                       skipped_zh=skipped_zh)
