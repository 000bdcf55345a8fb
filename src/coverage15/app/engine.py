"""The scenario engine: the run's base state, held read-only, and fast re-evaluation of edits.

A full :func:`coverage15.analysis.analyse` takes seconds (the service areas dominate). An edit
changes one layer by a few facilities, so the engine keeps each layer's :class:`LayerAreas`
from the base run and runs :func:`~coverage15.reach.kernel.layer_reach` only on the sites a
scenario adds (once per site and place, cached). Then the same steps as ``analyse`` run on
the changed layer set: demand coverage → per-街镇 table → target checks → gap report →
district report. Unedited layers keep their base union of service areas; an edited layer's
union is rebuilt from its polygons (or, when it only gained sites, extended by them).

A :class:`Scenario` is immutable: an edit makes a new one, so a failing edit leaves nothing
half-changed. Its numbers equal those of :func:`coverage15.planning.scenarios.whatif` for the
same change (tests/test_app.py checks it row by row).
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from coverage15._errors import ConfigError
from coverage15.analysis import RuleInputs, _districts_of
from coverage15.app._cover import update_covered
from coverage15.inputs.config import RunConfig
from coverage15.network.graph import Snap, snap_points
from coverage15.reach import coverage, gaps, targets
from coverage15.reach.completeness import (
    apply_completeness,
    completeness_cautions,
    completeness_table,
)
from coverage15.reach.coverage import _area_inside
from coverage15.reach.kernel import LayerAreas, layer_reach, pairs_within, reach_analysis
from coverage15.result import Result
from coverage15.scale.partition import compute_layers

__all__ = ["Base", "Evaluation", "LayerEdit", "Scenario", "Site"]

SITE_CACHE = 4096  # single-site reach results kept (each a polygon and its demand pairs)


@dataclass(frozen=True)
class Site:
    """A facility a scenario adds (WGS84)."""

    id: str
    name: str
    lon: float
    lat: float


@dataclass(frozen=True)
class LayerEdit:
    """One layer's change: base facility ids closed, sites added (in order)."""

    removed: frozenset[str] = frozenset()
    added: tuple[Site, ...] = ()

    @property
    def empty(self) -> bool:
        """Whether the layer is as in the base run."""
        return not self.removed and not self.added


@dataclass(frozen=True)
class Scenario:
    """A set of edits on the base run (immutable: every edit returns a new one)."""

    edits: Mapping[str, LayerEdit] = field(default_factory=dict)

    def edit(self, layer: str) -> LayerEdit:
        """The edit of ``layer`` (empty when untouched)."""
        return self.edits.get(layer, LayerEdit())

    def with_edit(self, layer: str, edit: LayerEdit) -> Scenario:
        """A copy with ``layer``'s edit replaced."""
        edits = {k: v for k, v in self.edits.items() if k != layer}
        if not edit.empty:
            edits[layer] = edit
        return Scenario(edits)

    def to_json(self) -> dict[str, Any]:
        """A plain dict (saved scenarios)."""
        return {"edits": {k: {"removed": sorted(e.removed),
                              "added": [dataclasses.asdict(s) for s in e.added]}
                          for k, e in self.edits.items()}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Scenario:
        """Inverse of :meth:`to_json` (values checked by the caller, :meth:`Base.check`)."""
        edits = {}
        for key, e in dict(data.get("edits", {})).items():
            added = tuple(Site(str(s["id"]), str(s["name"]), float(s["lon"]), float(s["lat"]))
                          for s in e.get("added", []))
            edits[str(key)] = LayerEdit(frozenset(str(i) for i in e.get("removed", [])),
                                        added)
        return cls(edits)


@dataclass
class _LayerState:
    points: gpd.GeoDataFrame
    areas: LayerAreas
    unit_of: npt.NDArray[np.int64]
    union: shapely.Geometry | None
    edit: LayerEdit = LayerEdit()  # what made it from the base layer


@dataclass
class Evaluation:
    """A scenario's figures: the 街镇 table, district rows, citywide checks, facilities.

    ``layers`` holds each layer's facilities and reach (service-area polygons in the
    network's CRS), ``covered`` the area of each 街镇 and district inside its service areas.
    """

    gap_report: pd.DataFrame
    district_report: pd.DataFrame | None
    check: targets.TargetCheck
    layers: dict[str, _LayerState]
    covered: dict[str, tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]]
    views: dict[str, Any] = field(default_factory=dict)  # JSON views, made once (app.views)


class Base:
    """The base run and everything an edit reuses; read-only once built (thread-safe)."""

    def __init__(self, result: Result, *, areas: dict[str, LayerAreas] | None = None,
                 demand_points: gpd.GeoDataFrame | None = None,
                 progress: Callable[[str, int, int], None] | None = None) -> None:
        self.result = result
        self.config: RunConfig = result.config
        self.net = result.network
        self.analysis = result.config.analysis
        self.units = result.units
        self.rules = list(result.rules)
        self.keys = list(result.layers)
        self.labels = {k: layer.spec.label for k, layer in result.layers.items()}
        # as the analysis: pairs to the largest limit any walking profile or rule needs
        self.reach_a = reach_analysis(self.analysis, self.rules)
        demand = demand_points
        if demand is None and result.demand is not None:
            demand = gpd.GeoDataFrame(geometry=result.demand.geometry.to_numpy(),
                                      crs=result.demand.crs)
        self.demand_points = demand
        if areas is None:  # the run's distance work (a cache hit after the run itself)
            areas, _, _, _ = compute_layers(
                self.net, {k: layer.points for k, layer in result.layers.items()}, demand,
                self.reach_a, progress=progress)
        self.areas = areas
        self.demand_snap: Snap | None = (
            snap_points(self.net, demand, snap_max_m=self.analysis.snap_max_m)
            if demand is not None else None)
        self.demand_unit: npt.NDArray[np.int64] | None = (
            coverage.assign_units(demand, self.units).to_numpy() if demand is not None
            else None)
        self.layer_state = {
            k: _LayerState(layer.points, areas[k],
                           coverage.assign_units(layer.points, self.units).to_numpy(),
                           result.unions[k])
            for k, layer in result.layers.items()}
        self.ids = {k: set(layer.points["facility_id"].astype(str))
                    for k, layer in result.layers.items()}
        self.study_area = shapely.union_all(self.units.geometry.to_numpy())
        self._sites: OrderedDict[tuple[float, float], LayerAreas] = OrderedDict()
        crs = self.analysis.working_crs
        self.unit_shapes, self.unit_metric = _shapes(self.units, self.net.extent, crs)
        # the network's completeness, as the analysis applies it to every table (it depends
        # on the streets and the homes only, not on any edit)
        snap_m = result.demand["snap_m"].to_numpy() if result.demand is not None else None
        self.complete = completeness_table(self.units, self.net, self.demand_unit, snap_m)
        base = pd.DataFrame({"network": self.unit_shapes.network}, index=self.unit_shapes.index)
        self.cautions = completeness_cautions(self.units["unit"].tolist(), self.complete,
                                              apply_completeness(base, self.complete))
        # every table then takes the completeness columns, and its sparse 街镇 as partial
        self.unit_shapes = dataclasses.replace(
            self.unit_shapes, network=base["network"].to_numpy(dtype=object),
            extra={c: self.complete[c].to_numpy() for c in self.complete.columns})
        # population per 街镇 and district for the ratio rules: the same for every scenario
        everyone = RuleInputs({}, self.analysis, result.population, self.config, {})
        self.population = {"jiezhen": everyone.check_args("jiezhen", self.units["unit"], {},
                                                          None)["population"]}
        self.unit_bounds = shapely.bounds(self.unit_metric)
        self.unit_covered = {k: _area_inside(self.unit_metric, u)
                             for k, u in result.unions.items()}
        self.in_district: Callable[[Any], Any] | None = None
        self.unit_names = self.units[["unit", "district"]]
        self.district_names = self.unit_names
        self.district_demand_unit: npt.NDArray[np.int64] | None = None
        self.district_metric = np.array([], dtype=object)
        self.district_bounds = np.zeros((0, 4))
        self.district_covered = {k: np.zeros(0) for k in self.keys}
        if result.districts_gdf is not None:
            district_areas, self.in_district = _districts_of(self.units, result.districts_gdf)
            self.district_shapes, self.district_metric = _shapes(district_areas,
                                                                 self.net.extent, crs)
            self.district_bounds = shapely.bounds(self.district_metric)
            self.district_covered = {k: _area_inside(self.district_metric, u)
                                     for k, u in result.unions.items()}
            self.district_names = result.districts_gdf[["unit", "district"]]
            self.district_demand_unit = (self.in_district(self.demand_unit)
                                         if self.demand_unit is not None else None)
            self.population["district"] = everyone.check_args(
                "district", result.districts_gdf["unit"], {}, None)["population"]
        self._lock = threading.Lock()

    # --- checks ------------------------------------------------------------------------------

    def check(self, scenario: Scenario) -> None:
        """Raise :class:`ConfigError` unless every edit names a layer, base ids and sites inside."""
        for key, e in scenario.edits.items():
            if key not in self.layer_state:
                msg = f"layer {key!r} is not in this run; layers: {', '.join(self.keys)}"
                raise ConfigError(msg)
            unknown = sorted(e.removed - self.ids[key])
            if unknown:
                msg = f"layer {key!r} has no facility {unknown[0]!r}"
                raise ConfigError(msg)
            for s in e.added:
                self.check_site(s.lon, s.lat)
            if len(e.removed) == len(self.ids[key]) and not e.added:
                msg = f"the scenario would leave layer {key!r} empty"
                raise ConfigError(msg)

    def check_site(self, lon: float, lat: float) -> None:
        """Raise :class:`ConfigError` unless the point is finite and inside a 街镇."""
        if not (np.isfinite(lon) and np.isfinite(lat)):
            msg = "a site needs finite coordinates"
            raise ConfigError(msg)
        if not self.study_area.covers(shapely.Point(lon, lat)):
            msg = (f"the site ({lon:.6f}, {lat:.6f}) lies outside the study area (the 街镇 of "
                   "this run)")
            raise ConfigError(msg)

    # --- reach of added sites ------------------------------------------------------------------

    def site_areas(self, site: Site) -> LayerAreas:
        """Reach of one added site (snap, polygon, demand pairs), cached by place."""
        key = (site.lon, site.lat)
        with self._lock:
            if key in self._sites:
                self._sites.move_to_end(key)
                return self._sites[key]
        points = gpd.GeoSeries([shapely.Point(site.lon, site.lat)], crs="EPSG:4326")
        found = layer_reach(self.net, points, self.reach_a, demand_snap=self.demand_snap,
                            polygons=True, threads=1)
        with self._lock:
            self._sites[key] = found
            while len(self._sites) > SITE_CACHE:
                self._sites.popitem(last=False)
        return found

    def snap_of(self, lon: float, lat: float) -> tuple[float, float, float] | None:
        """The street point a site snaps to (lon, lat, metres), or None when too far."""
        points = gpd.GeoSeries([shapely.Point(lon, lat)], crs="EPSG:4326")
        snap = snap_points(self.net, points, snap_max_m=self.analysis.snap_max_m)
        if not bool(snap.snapped[0]):
            return None
        edge = self.net.edge_geometry[int(snap.edge[0])]
        near = shapely.shortest_line(edge, points.to_crs(self.net.crs).iloc[0])
        at = gpd.GeoSeries([shapely.get_point(near, 0)], crs=self.net.crs).to_crs(4326)
        return float(at.x.iloc[0]), float(at.y.iloc[0]), float(snap.snap_m[0])

    # --- evaluation ----------------------------------------------------------------------------

    def _layer(self, key: str, edit: LayerEdit, previous: Evaluation | None) -> _LayerState:
        base = self.layer_state[key]
        if edit.empty:
            return base
        if previous is not None and previous.layers[key].edit == edit:
            return previous.layers[key]  # another layer was edited
        keep = ~base.points["facility_id"].astype(str).isin(edit.removed).to_numpy()
        added = gpd.GeoDataFrame(
            {"facility_id": [s.id for s in edit.added], "name": [s.name for s in edit.added]},
            geometry=[shapely.Point(s.lon, s.lat) for s in edit.added], crs="EPSG:4326")
        points = gpd.GeoDataFrame(
            pd.concat([base.points.loc[keep], added],  # attributes (e.g. beds) kept
                      ignore_index=True), geometry="geometry", crs="EPSG:4326")
        site = [self.site_areas(s) for s in edit.added]
        a = base.areas
        kept_at = np.flatnonzero(keep)
        renumber = np.full(len(keep), -1, dtype=np.int64)
        renumber[kept_at] = np.arange(len(kept_at))
        mask = keep[a.pairs[0]]
        f = [renumber[a.pairs[0][mask]]]
        d = [a.pairs[1][mask]]
        m = [a.pairs[2][mask]]
        for i, s in enumerate(site):
            f.append(np.full(len(s.pairs[0]), len(kept_at) + i, dtype=np.int64))
            d.append(s.pairs[1])
            m.append(s.pairs[2])
        areas = LayerAreas(
            snap_m=np.concatenate([a.snap_m[keep], *[s.snap_m for s in site]]),
            on_network=np.concatenate([a.on_network[keep], *[s.on_network for s in site]]),
            polygons=np.concatenate([a.polygons[keep], *[s.polygons for s in site]]),
            reached_m=np.concatenate([a.reached_m[keep], *[s.reached_m for s in site]]),
            pairs=(np.concatenate(f).astype(np.int64), np.concatenate(d).astype(np.int64),
                   np.concatenate(m).astype(float)))
        unit_of = np.concatenate([base.unit_of[keep], coverage.assign_units(
            added, self.units).to_numpy()]).astype(np.int64)
        return _LayerState(points, areas, unit_of, None, edit)

    def _covered(self, key: str, state: _LayerState, previous: Evaluation | None,
                 ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Area of each 街镇 and district inside the layer's service areas (m²).

        Updated from ``previous`` (or the base run) where service areas changed since
        (:func:`._cover.update_covered`).
        """
        before = previous.layers[key] if previous is not None else self.layer_state[key]
        old_cover = (previous.covered[key] if previous is not None
                     else (self.unit_covered[key], self.district_covered[key]))
        old, new = before.areas.polygons, state.areas.polygons
        if old is new:
            return old_cover
        found = update_covered(old, new, old_cover,
                               ((self.unit_metric, self.unit_bounds),
                                (self.district_metric, self.district_bounds)))
        return old_cover if found is None else (found[0], found[1])

    def _table(self, shapes: _Shapes, unit_of: Mapping[str, npt.NDArray[np.int64]],
               demand_unit: npt.NDArray[np.int64] | None, cover: pd.DataFrame | None,
               covered: Mapping[str, npt.NDArray[np.float64]]) -> pd.DataFrame:
        """:func:`coverage15.reach.coverage.coverage_by_unit` from cached areas."""
        area = shapes.area
        table: dict[str, Any] = {  # gathered, then one frame (faster than column by column)
            "area_km2": area / 1e6, "network_share": shapes.network_share,
            "network": pd.Series(shapes.network, index=shapes.index, dtype="object")}
        counts = coverage.count_by_unit(len(area), unit_of, demand_unit, cover)
        table["demand_points"] = counts.pop("demand_points")
        for key in unit_of:
            for column in (f"{key}_count", f"{key}_demand_share"):
                if column in counts:
                    table[column] = counts[column]
            table[f"{key}_area_share"] = np.clip(np.divide(
                covered[key], area, out=np.zeros_like(area), where=area > 0), 0.0, 1.0)
        return pd.DataFrame({**table, **shapes.extra}, index=shapes.index)

    def evaluate(self, scenario: Scenario, previous: Evaluation | None = None) -> Evaluation:
        """The scenario's figures, by the steps of :func:`coverage15.analysis.analyse`.

        ``previous`` (an evaluation of another scenario on this base, typically the one before
        the edit) lets the area shares change only where service areas changed.
        """
        self.check(scenario)
        states = {k: self._layer(k, scenario.edit(k), previous) for k in self.keys}
        covered = {k: self._covered(k, s, previous) for k, s in states.items()}
        cover = (coverage.demand_coverage(len(self.demand_points), {
            k: pairs_within(s.areas.pairs, self.analysis.limit_m) for k, s in states.items()})
                 if self.demand_points is not None else None)
        layers = {k: dataclasses.replace(self.result.layers[k], points=s.points)
                  for k, s in states.items()}
        extra = RuleInputs({k: s.areas.pairs for k, s in states.items()}, self.analysis,
                           None, self.config, layers)  # the population is the base's
        unit_of = {k: s.unit_of for k, s in states.items()}
        table = self._table(self.unit_shapes, unit_of, self.demand_unit, cover,
                            {k: c[0] for k, c in covered.items()})
        totals = {k: len(s.points) for k, s in states.items()}
        check = targets.check_targets(
            table, self.rules, demand_cover=cover, demand_unit=self.demand_unit,
            layer_labels=self.labels, layer_totals=totals,
            **{**extra.check_args("jiezhen", self.units["unit"], unit_of, None),
               "population": self.population["jiezhen"]})
        gap = gaps.gap_report(self.unit_names, table, check, self.keys)
        gaps.add_caution(gap, self.cautions)
        district_report = None
        if self.in_district is not None and self.result.districts_gdf is not None:
            d_unit = self.district_demand_unit
            d_table = self._table(self.district_shapes,
                                  {k: self.in_district(u) for k, u in unit_of.items()},
                                  d_unit, cover, {k: c[1] for k, c in covered.items()})
            districts = self.result.districts_gdf
            d_check = targets.check_targets(
                d_table, [r for r in self.rules if r.kind != "full_coverage"],
                demand_cover=cover, demand_unit=d_unit, layer_labels=self.labels,
                layer_totals=totals,
                **{**extra.check_args("district", districts["unit"],
                                      {k: self.in_district(u) for k, u in unit_of.items()},
                                      None), "population": self.population["district"]})
            district_report = gaps.units_by_district(
                gaps.gap_report(self.district_names, d_table, d_check, self.keys,
                                unit_column="district"), gap)
        return Evaluation(gap, district_report, check, states, covered)


@dataclass(frozen=True)
class _Shapes:
    """Constant per-polygon figures of 街镇 or districts."""

    index: pd.Index
    area: npt.NDArray[np.float64]
    network_share: npt.NDArray[np.float64]
    network: npt.NDArray[np.object_]
    extra: dict[str, Any] = field(default_factory=dict)  # further columns of every table


def _shapes(frame: gpd.GeoDataFrame, extent: shapely.Geometry, working_crs: str,
            ) -> tuple[_Shapes, npt.NDArray[np.object_]]:
    table = coverage.coverage_by_unit(frame, facility_units={}, demand_unit=None,
                                      demand_cover=None, unions={}, extent=extent,
                                      working_crs=working_crs)
    metric = frame.geometry.to_crs(working_crs).to_numpy()
    return (_Shapes(table.index, table["area_km2"].to_numpy() * 1e6,
                    table["network_share"].to_numpy(), table["network"].to_numpy()), metric)
