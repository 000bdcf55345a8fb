"""Sum and ratio rules: a facility attribute summed, alone or per person of a population column.

``facility_sum`` (e.g. beds ≥ 178,000 citywide) and ``ratio`` (e.g. beds per 1,000 residents
aged 60+ per district) need no network: each facility counts in the unit it lies in. A rule is
judged where its data exist and says "not evaluated (no … column / no population for …)"
where they do not, never a guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import pandas as pd

__all__ = ["FacilityValues", "Outcome", "UnitPopulation", "evaluate"]

Level = Literal["jiezhen", "district"]


class Rule(Protocol):
    """What this module reads of a :class:`coverage15.reach.targets.Rule`."""

    @property
    def id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def layer(self) -> str | None: ...
    @property
    def attribute(self) -> str | None: ...
    @property
    def population(self) -> str | None: ...
    @property
    def per(self) -> float: ...
    @property
    def min_value(self) -> float: ...
    @property
    def scope(self) -> str: ...


@dataclass(frozen=True)
class FacilityValues:
    """A layer's facilities: the unit position of each (``-1``: none) and their attributes."""

    unit_of: np.ndarray
    attributes: pd.DataFrame


@dataclass(frozen=True)
class UnitPopulation:
    """Population columns per unit position (NaN: no figure for that unit).

    ``level`` is the kind of unit the table's rows are; ``totals`` the study area's totals
    (every row of the table); ``estimate`` says the figures are spread, not counted.
    """

    level: Level
    table: pd.DataFrame
    totals: Mapping[str, float]


@dataclass(frozen=True)
class Outcome:
    """One rule's result at one level: per-unit values and verdicts, or citywide, or why not."""

    unit_values: np.ndarray | None = None
    passed: pd.Series | None = None
    reasons: dict[int, str] | None = None
    citywide: tuple[float, bool, str] | None = None
    skipped: str | None = None


def _sums(rule: Rule, layer: FacilityValues, n_units: int) -> tuple[np.ndarray, float, str]:
    """Per unit and in all: the attribute's sum (or the count); a note on missing values."""
    if rule.attribute is None:
        values = np.ones(len(layer.unit_of))
        note = ""
    else:
        values = pd.to_numeric(layer.attributes[rule.attribute], errors="coerce").to_numpy(
            dtype=float)
        missing = int(np.isnan(values).sum())
        note = f"; {missing} without a {rule.attribute} value count as 0" if missing else ""
        values = np.nan_to_num(values, nan=0.0)
    inside = layer.unit_of >= 0
    per_unit = np.bincount(layer.unit_of[inside], weights=values[inside], minlength=n_units)
    return per_unit.astype(float), float(values.sum()), note


def evaluate(rule: Rule, *, level: Level, n_units: int,
             facilities: Mapping[str, FacilityValues],
             population: UnitPopulation | None) -> Outcome | None:
    """Judge a ``facility_sum`` or ``ratio`` rule for the units of ``level``.

    Returns None when the rule is for another level (e.g. a district rule in the 街镇 table).
    """
    wanted = {"citywide": "jiezhen"}.get(rule.scope, rule.scope)
    if wanted != level:
        return None  # another level's rule (citywide rules are judged once, with the 街镇)
    assert rule.layer is not None
    layer = facilities[rule.layer]
    if rule.attribute is not None and rule.attribute not in layer.attributes.columns:
        return Outcome(skipped=f"no {rule.attribute} column in layer {rule.layer}")
    per_unit, total, note = _sums(rule, layer, n_units)
    if rule.kind == "ratio":
        return _ratio(rule, level, n_units, per_unit, total=total, note=note,
                      population=population)
    what = rule.attribute or "facilities"
    if rule.scope == "citywide":
        return Outcome(citywide=(total, total >= rule.min_value,
                                 f"{total:,.0f} {what} (target ≥ {rule.min_value:,.0f})"
                                 f"{note}"))
    passed = pd.Series(per_unit >= rule.min_value, dtype="boolean")
    reasons = {int(i): f"{rule.id}: {per_unit[i]:,.0f} {what} (needs ≥ "
                       f"{rule.min_value:,.0f})" for i in np.flatnonzero(~passed)}
    return Outcome(unit_values=per_unit, passed=passed, reasons=reasons)


def _ratio(rule: Rule, level: Level, n_units: int, per_unit: np.ndarray, *, total: float,
           note: str, population: UnitPopulation | None) -> Outcome:
    """A ratio rule's outcome: the sum per ``rule.per`` persons of a population column."""
    what = rule.attribute or "facilities"
    assert rule.population is not None
    if population is None:
        return Outcome(skipped="no population table in this run ([population])")
    if rule.population not in population.table.columns:
        return Outcome(skipped=f"no {rule.population} column in the population table")
    if rule.scope == "citywide":
        people = float(population.totals.get(rule.population, np.nan))
        value = total / people * rule.per if people > 0 else np.nan
        return Outcome(citywide=(value, bool(value >= rule.min_value),
                                 f"{value:.1f} {what} per {rule.per:,.0f} {rule.population} "
                                 f"(target ≥ {rule.min_value:g}){note}"))
    if population.level != level:
        return Outcome(skipped=f"no population for each {level} (the table is per "
                               f"{population.level})")
    people = population.table[rule.population].to_numpy(dtype=float)
    known = np.isfinite(people) & (people > 0)
    values = np.where(known, per_unit / np.where(known, people, 1.0) * rule.per, np.nan)
    passed = pd.Series(pd.NA, index=range(n_units), dtype="boolean")
    passed[known] = values[known] >= rule.min_value
    reasons = {int(i): f"{rule.id}: {values[i]:.1f} {what} per {rule.per:,.0f} "
                       f"{rule.population} (needs ≥ {rule.min_value:g})"
               for i in np.flatnonzero(known & (values < rule.min_value))}
    return Outcome(unit_values=values, passed=passed, reasons=reasons)
