"""Persons behind residential points, and population per unit.

A residential point stands for an unknown number of people. A run can weigh the points by a
column of their own (``[demand] weight_field``), or spread a population table per district or
街镇 (``[population] column``, e.g. ``age_60_plus``) equally over the unit's points: an
estimate, and labelled as one. Shares of people are then reported beside the unweighted
shares of residential points (居住点); neither replaces the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = ["DemandWeights", "demand_weights", "population_by_position"]


@dataclass(frozen=True)
class DemandWeights:
    """Persons per demand point (NaN: unknown) and where the numbers come from.

    ``source`` is ``"column"`` (the points' own ``weight_field``) or ``"estimate"`` (a unit
    population spread equally over its points); ``note`` says so in a sentence.
    """

    persons: npt.NDArray[np.float64]
    source: Literal["column", "estimate"]
    note: str


def population_by_position(population: pd.DataFrame, names: pd.Series) -> pd.DataFrame:
    """The population rows of units ``names`` by their position (NaN for a unit not listed)."""
    table = population.groupby(level=0).sum(min_count=1)
    out = table.reindex(names.astype(str).str.strip().to_numpy())
    out.index = pd.RangeIndex(len(names))
    return out


def demand_weights(
    points: pd.DataFrame,
    *,
    weight_field: str | None,
    unit_of: npt.NDArray[np.int64],
    unit_names: pd.Series,
    population: pd.DataFrame | None,
    column: str | None,
) -> DemandWeights | None:
    """Weights of the demand points, or None when the run has neither source.

    Parameters
    ----------
    points
        The demand points (their attribute columns).
    weight_field
        A column of ``points`` with persons per point (non-numbers: unknown).
    unit_of
        Position of each point's unit in ``unit_names`` (``-1``: in none).
    unit_names
        Names of the units the population table is keyed by (districts or 街镇), by position.
    population, column
        The population table (indexed by unit name) and the column to spread.
    """
    if weight_field is not None and weight_field in points.columns:
        values = pd.to_numeric(points[weight_field], errors="coerce").to_numpy(dtype=float)
        return DemandWeights(values, "column", f"persons per point from column {weight_field}")
    if population is None or column is None or column not in population.columns:
        return None
    people = population_by_position(population, unit_names)[column].to_numpy(dtype=float)
    located = unit_of >= 0
    n_points = np.bincount(unit_of[located], minlength=len(unit_names)).astype(float)
    per_point = np.divide(people, n_points, out=np.full(len(people), np.nan),
                          where=n_points > 0)
    values = np.full(len(unit_of), np.nan)
    values[located] = per_point[unit_of[located]]
    return DemandWeights(values, "estimate",
                         f"estimate: {column} of each unit spread equally over its residential "
                         "points")
