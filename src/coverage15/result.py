"""The result of an analysis: one type that every output, map and planning step reads.

It lives below the orchestration (:mod:`coverage15.analysis`, :mod:`coverage15.pipeline`), so
the writers, maps and recommendations import it without importing the steps that make it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely

from coverage15.inputs.checks import Problem
from coverage15.inputs.config import RunConfig
from coverage15.inputs.layers import Layer
from coverage15.network.graph import WalkNetwork
from coverage15.reach import gaps, targets

__all__ = ["Result"]


@dataclass
class Result:
    """Everything an analysis produced: the inputs as used, every intermediate table, the verdicts.

    Attributes
    ----------
    config : RunConfig
    network : WalkNetwork
    layers : dict of Layer
        Loaded facility layers (points and rejected rows).
    facilities : dict of GeoDataFrame
        Facilities per layer in EPSG:4326 with ``snap_m``, ``on_network``, ``jiezhen``,
        ``district`` and ``reach_m`` (street metres within the limit).
    service_areas : GeoDataFrame
        One polygon per facility on the network (EPSG:4326): ``layer``, ``facility_id``, ``name``,
        ``reach_m``, ``area_km2``.
    unions : dict
        Union of each layer's service areas, in the working CRS.
    demand : GeoDataFrame or None
        Demand points with their unit, snap and per-layer ``{key}_n``/``{key}_m`` columns.
    units : GeoDataFrame
        街镇 polygons (``unit``, ``district``).
    gap_report : DataFrame
        One row per 街镇 (see :func:`coverage15.reach.gaps.gap_report`).
    district_report : DataFrame or None
        One row per district.
    check : TargetCheck
    rules : list of Rule
    rejected : DataFrame
        Every row set aside, with layer and reason.
    problems : list of Problem
        Findings about the inputs (warnings and counts of rows set aside).
    timings : dict
        Seconds per step.
    reused : list of str
        Layers (and ``"demand snaps"``) whose distance work came from the cache of an earlier
        run with the same network, inputs, settings and code.
    population : DataFrame or None
        The population table the ratio rules and weights used.
    profile_unions : dict
        Layer key → walking profile id → the union of the layer's service areas at that
        profile's limit (the run's minutes at its speed), in the working CRS, for every
        profile other than the verdict's (whose union is ``unions``).
    pairs : dict
        Layer key → ``(facility, demand, dist_m)`` for every facility–demand pair within the
        largest limit any walking profile and rule needs (what the verdicts were judged on).
    misplaced : DataFrame or None
        Rows of every layer that land outside the place they name (the location check,
        :func:`coverage15.inputs.places.location_mismatches`), with ``action`` (``flag``:
        they count where they land; ``set_aside``: they are in ``rejected``).
    """

    config: RunConfig
    network: WalkNetwork
    layers: dict[str, Layer]
    facilities: dict[str, gpd.GeoDataFrame]
    service_areas: gpd.GeoDataFrame
    unions: dict[str, shapely.Geometry]
    demand: gpd.GeoDataFrame | None
    units: gpd.GeoDataFrame
    gap_report: pd.DataFrame
    district_report: pd.DataFrame | None
    districts_gdf: gpd.GeoDataFrame | None
    district_areas: gpd.GeoDataFrame | None
    check: targets.TargetCheck
    rules: list[targets.Rule]
    rejected: pd.DataFrame
    problems: list[Problem] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    reused: list[str] = field(default_factory=list)
    population: pd.DataFrame | None = None
    profile_unions: dict[str, dict[str, shapely.Geometry]] = field(default_factory=dict)
    pairs: dict[str, tuple[Any, Any, Any]] = field(default_factory=dict)
    misplaced: pd.DataFrame | None = None

    def units_gdf(self) -> gpd.GeoDataFrame:
        """The gap report joined to the 街镇 polygons (EPSG:4326)."""
        geometry = self.units.set_index(["district", "unit"]).geometry
        keys = pd.MultiIndex.from_arrays([self.gap_report["district"],
                                          self.gap_report["jiezhen"]])
        return gpd.GeoDataFrame(self.gap_report.copy(), geometry=geometry.reindex(keys)
                                .to_numpy(), crs=self.units.crs)

    def summary(self) -> list[str]:
        """Terminal summary lines."""
        counts = {
            key: (layer.spec.label, len(layer.points), len(layer.rejected),
                  int(self.facilities[key]["on_network"].sum()))
            for key, layer in self.layers.items()
        }
        lines = gaps.summary_lines(self.gap_report, self.check, layer_counts=counts)
        if self.demand is not None:
            on = int(self.demand["on_network"].sum())
            lines.insert(len(counts), f"demand: {len(self.demand)} points, {on} on the network")
        warnings = [p for p in self.problems if p.severity != "info"]
        set_aside = len(self.rejected)  # (other notes are info rows of problems.csv too)
        lines.append(f"input checks: {len(warnings)} warning(s); {set_aside} row(s) set aside "
                     "(see problems.csv and rejected.csv)")
        lines += [f"  warning [{p.input}]: {p.message}" for p in warnings]
        if self.reused:
            lines.append("reused from an earlier run (same network, inputs, settings and "
                         f"code): {', '.join(self.reused)}")
        return lines
