"""Which demand points each site would bring within the walking limit, and which would pass.

:func:`coverage_sets` is shared by the covering models (:mod:`coverage15.planning.recommend`)
and the what-if's account of each added site (:mod:`coverage15.planning._words`).
:func:`rule_passing` says which points pass a share rule and which one more site of a layer
would make pass, at the rule's own limits per side at the verdict profile: the limits the
run's verdicts use (in "1+N", a meal point counts within 10 minutes, not the centre's 15).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
import shapely

from coverage15._types import IntArray
from coverage15.network.graph import snap_points
from coverage15.reach.kernel import layer_reach

if TYPE_CHECKING:
    from coverage15.reach.targets import Rule
    from coverage15.result import Result

__all__ = ["coverage_sets", "rule_passing", "side_limit_m"]


def coverage_sets(result: Result, candidates: gpd.GeoDataFrame, rows: IntArray, *,
                  limit_m: float | None = None) -> sp.csr_matrix:
    """Boolean matrix: candidate x demand row (of ``rows``) within ``limit_m``.

    ``limit_m``: the walking limit (default: the run's, ``analysis.limit_m``), e.g. a rule's
    limit for the layer's side (:func:`side_limit_m`).
    """
    a, net = result.config.analysis, result.network
    limit = a.limit_m if limit_m is None else float(limit_m)
    assert result.demand is not None
    out = sp.csr_matrix((len(candidates), len(rows)), dtype=bool)
    if len(rows) == 0 or len(candidates) == 0:
        return out
    demand = result.demand.iloc[rows]
    # a walk is never shorter than the straight line (plus the snaps when they are not walked)
    reach_m = limit + (0.0 if a.access_leg else 2 * a.snap_max_m)
    tree = shapely.STRtree(demand.geometry.to_crs(net.crs).to_numpy())
    near = np.unique(tree.query(candidates.geometry.to_crs(net.crs).to_numpy(),
                                predicate="dwithin", distance=reach_m)[0])
    areas = layer_reach(net, candidates.iloc[near], dataclasses.replace(a, pairs_limit_m=limit),
                        polygons=False,
                        demand_snap=snap_points(net, demand, snap_max_m=a.snap_max_m))
    source, target, dist = areas.pairs
    keep = np.asarray(dist) <= limit
    return sp.csr_matrix((np.ones(int(keep.sum()), bool), (near[source[keep]], target[keep])),
                         shape=out.shape)


def side_limit_m(result: Result, layer: str, rule: Rule) -> float:
    """The walking limit of ``layer``'s side of a share rule, at the verdict profile."""
    a = result.config.analysis
    side = ("layer" if rule.kind != "one_plus_n"
            else "centre" if layer in rule.centre_layers else "station")
    return rule.limit_m(side, a.walk_profiles[0], a.minutes)  # type: ignore[arg-type]


def _within(result: Result, keys: Sequence[str], limit_m: float) -> npt.NDArray[np.int64]:
    """Per demand point: the facilities of ``keys`` within ``limit_m`` (the run's pairs)."""
    assert result.demand is not None
    n = len(result.demand)
    total = np.zeros(n, dtype=np.int64)
    for key in keys:
        if key in result.pairs:
            _, target, dist = result.pairs[key]
            total += np.bincount(np.asarray(target)[np.asarray(dist) <= limit_m], minlength=n)
        else:  # a result without its pairs: the counts at the run's limit
            total += result.demand[f"{key}_n"].to_numpy().astype(np.int64)
    return total


def rule_passing(result: Result, layer: str, rule: Rule,
                 ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_], float]:
    """Per demand point: passes ``rule`` now, and would pass with one more site of ``layer``.

    Also returns the limit that site must be within (its side's, at the verdict profile).
    For "1+N" and a centre layer: the points with their N stations within the station limit;
    for a station layer: those with a centre within the centre limit and N - 1 stations.
    """
    assert result.demand is not None
    passing = np.asarray(result.check.demand_pass[rule.id], dtype=bool)
    limit = side_limit_m(result, layer, rule)
    if rule.kind == "demand_share":
        return passing, np.ones(len(passing), dtype=bool), limit
    a = result.config.analysis
    profile = a.walk_profiles[0]
    centres = _within(result, rule.centre_layers, rule.limit_m("centre", profile, a.minutes))
    stations = _within(result, rule.station_layers,
                       rule.limit_m("station", profile, a.minutes))
    if layer in rule.centre_layers:
        return passing, np.asarray(stations >= rule.n), limit
    return passing, np.asarray((centres >= 1) & (stations == rule.n - 1)), limit
