"""The analysis in memory: GeoDataFrames and a walk network in, a :class:`Result` out.

:func:`analyse` is what every front door calls: :func:`coverage15.pipeline.run` (a config
file), notebooks and scripts (GeoDataFrames), the planning tools. Its steps, each a function
of its own below, are: check the inputs → reach (the one kernel, here or per tile) →
facility tables → demand coverage → per-街镇 table and targets → gap and district reports.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from coverage15.inputs.checks import (
    Problem,
    check_locations,
    enforce,
    input_problems,
    outside_problems,
)
from coverage15.inputs.config import (
    AnalysisSpec,
    NetworkSpec,
    RunConfig,
    UnitSpec,
)
from coverage15.inputs.layers import Layer
from coverage15.inputs.readers import FRAME_SOURCE, layer_of, read_units
from coverage15.network.checks import (
    completeness_problems,
    scale_problems,
    snap_problems,
)
from coverage15.network.graph import WalkNetwork
from coverage15.reach import coverage, gaps, service_areas, targets, weights
from coverage15.reach._ratios import FacilityValues, UnitPopulation
from coverage15.reach.completeness import (
    apply_completeness,
    completeness_cautions,
    completeness_table,
)
from coverage15.reach.kernel import LayerAreas, pairs_within, reach_analysis
from coverage15.reach.rule_checks import rule_problems
from coverage15.result import Result
from coverage15.scale.partition import RunLog, compute_layers

__all__ = [
    "ADDED_COLUMNS",
    "Progress",
    "RuleInputs",
    "analyse",
    "name_districts",
    "timed",
]

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
ADDED_COLUMNS = ("jiezhen", "district", "snap_m", "on_network", "reach_m")
"""Columns the analysis adds to facilities and demand points (a source column of the same
name is kept as ``src_{name}``)."""


@contextmanager
def timed(timings: dict[str, float], name: str, progress: Progress | None) -> Iterator[None]:
    """Time a step into ``timings[name]`` and tell ``progress`` that it starts."""
    if progress is not None:
        progress(name, 0, 0)
    start = time.perf_counter()
    yield
    timings[name] = time.perf_counter() - start
    log.info("%s: %.2f s", name, timings[name])


def analyse(
    network: WalkNetwork,
    facilities: Mapping[str, gpd.GeoDataFrame | Layer],
    units: gpd.GeoDataFrame,
    *,
    demand: gpd.GeoDataFrame | Layer | None = None,
    districts: gpd.GeoDataFrame | None = None,
    rules: Sequence[targets.Rule] = (),
    analysis: AnalysisSpec | None = None,
    config: RunConfig | None = None,
    population: pd.DataFrame | None = None,
    weight_field: str | None = None,
    name: str = "coverage15 analysis",
    partitions: int = 1,
    scheduler: str | Any | None = None,
    progress: Progress | None = None,
    timings: dict[str, float] | None = None,
    accept: Sequence[str] = (),
) -> Result:
    """Walking coverage of facilities per 街镇 and district, checked against the plan's rules.

    Parameters
    ----------
    network
        The walk network (:func:`coverage15.build_walk_network`, or
        :func:`coverage15.network_from_graph` for a networkx/osmnx graph).
    facilities
        Layer key → points (from :func:`coverage15.read_points`, any GeoDataFrame of points,
        or a loaded :class:`~coverage15.inputs.layers.Layer`). The keys are the layer names
        that the rules use.
    units
        街镇 polygons: from :func:`coverage15.read_units`, or any polygon GeoDataFrame with a
        ``name`` (and, optionally, ``district``) column.
    demand
        Residential points; without them, shares of residents are not computed.
    districts
        District polygons (from :func:`coverage15.read_units`, or with a ``name`` column):
        adds the district report, each district being the union of its 街镇.
    rules
        Target rules (:func:`coverage15.load_targets`).
    analysis
        Walking limit and geometry options (default: ``config.analysis``, else
        :class:`AnalysisSpec`'s defaults: 15 minutes at 4 km/h).
    config
        The run config, when there is one (kept in the result for the outputs).
    population
        Population per district or 街镇 (:func:`coverage15.inputs.readers.read_population`:
        numeric columns indexed by the unit name; ``attrs["unit"]`` is ``"district"``
        (default) or ``"jiezhen"``, ``attrs["column"]`` the column spread over the
        residential points as weights, when they have no ``weight_field`` of their own).
        Ratio rules divide by its columns.
    weight_field
        A column of ``demand`` with persons per point (default: the config's
        ``[demand] weight_field``); shares of people are then reported beside those of points.
    name
        The analysis' name in outputs and maps, without a config.
    partitions, scheduler
        Split the reach work into tiles, on a Dask cluster (see
        :mod:`coverage15.scale.partition`).
    progress
        ``progress(step, done, total)`` during long steps.
    timings
        A dict to add the seconds per step to.
    accept
        Ids of problems to go ahead with (added to ``config.accept``): a problem that would
        change a verdict (a CRS the data contradicts, a distorting working CRS, most of a
        layer set aside, a rule naming a misspelt layer) otherwise stops the analysis.

    Returns
    -------
    Result
        Facilities, service areas, demand, the gap report and district report, the rule
        checks and every input problem.

    Raises
    ------
    CheckError
        A problem that would change a verdict, not accepted (see ``docs/failure-modes.md``).
    """
    timings = {} if timings is None else timings
    layers = {key: layer_of(key, points) for key, points in facilities.items()}
    demand_layer = layer_of("demand", demand) if demand is not None else None
    unit_table = _as_units(units, "units")
    district_table = _as_units(districts, "districts") if districts is not None else None
    if config is None:
        config = _config_for(name, layers, demand_layer, analysis or AnalysisSpec())
    elif analysis is not None and analysis != config.analysis:
        config = dataclasses.replace(config, analysis=analysis)  # the outputs say what ran
    if accept:
        config = dataclasses.replace(config, accept=(*config.accept, *accept))
    a = config.analysis
    rules = list(rules)
    # distances once, to the largest limit any walking profile and rule needs
    reach_a = reach_analysis(a, rules)

    with timed(timings, "check inputs", progress):
        problems: list[Problem] = []
        if district_table is not None:
            unit_table, named = name_districts(unit_table, district_table)
            problems += named
        everything = {**layers, **({"demand": demand_layer} if demand_layer else {})}
        everything, located, misplaced = check_locations(everything, unit_table,
                                                 working_crs=a.working_crs,
                                                 aliases=config.units.aliases)
        layers = {key: everything[key] for key in layers}
        demand_layer = everything.get("demand") if demand_layer is not None else None
        problems += located
        problems += input_problems(config, unit_table, layers, demand_layer)
        problems += scale_problems(network)
        problems += rule_problems(rules, layers)
        problems = enforce(problems, config.accept)

    with timed(timings, "service areas", progress):
        district_shapes = (_districts_of(unit_table, district_table)
                           if district_table is not None else None)
        # a partitioned run measures the coverage step's overlays on its workers, tile by tile
        measure = ({} if scheduler is None or partitions == 1
                   else _to_measure(unit_table, district_shapes, network.crs))
        areas, demand_snap_m, demand_snapped, runlog = compute_layers(
            network, {key: layer.points for key, layer in layers.items()},
            demand_layer.points if demand_layer is not None else None, reach_a,
            partitions=partitions, scheduler=scheduler, progress=progress,
            measure=measure, streets=("units",))
        all_pairs = {key: result.pairs for key, result in areas.items()}
        areas = {key: dataclasses.replace(result, pairs=pairs_within(result.pairs, a.limit_m))
                 for key, result in areas.items()}
        placed = _place_facilities(network, layers, areas, unit_table, a, unions=runlog.unions)
        problems += placed.problems + _partition_problems(runlog)

    with timed(timings, "coverage", progress):
        reached = _reach_demand(demand_layer, areas, unit_table, demand_snap_m, demand_snapped)
        table = coverage.coverage_by_unit(
            unit_table, facility_units=placed.unit_of, demand_unit=reached.unit_of,
            demand_cover=reached.cover, unions=placed.unions, extent=network.extent,
            working_crs=a.working_crs, measured=runlog.measured.get("units"))
        cautions = _completeness(table, unit_table, network, reached, problems,
                                 measured=runlog.measured.get("units"))
        labels = {key: layer.spec.label for key, layer in layers.items()}
        totals = {key: len(layer.points) for key, layer in layers.items()}
        extra = RuleInputs(all_pairs, a, population, config, layers, weight_field)
        weight = extra.demand_weights(unit_table, reached)
        check = targets.check_targets(
            table, rules, demand_cover=reached.cover, demand_unit=reached.unit_of,
            layer_labels=labels, layer_totals=totals,
            **extra.check_args("jiezhen", unit_table["unit"], placed.unit_of, weight))
        problems += _coverage_problems(table, placed.unit_of, reached.unit_of)
        _add_pass_columns(table, check, reached)
        gap = gaps.gap_report(unit_table[["unit", "district"]], table, check, list(layers))
        gaps.add_caution(gap, cautions)
        district_report, district_areas = (None, None)
        if district_table is not None and district_shapes is not None:
            district_report, district_areas, d_skipped = _district_report(
                district_table, district_shapes, placed=placed, reached=reached, gap=gap,
                rules=rules, net=network, a=a, labels=labels, totals=totals,
                keys=list(layers), extra=extra, weight=weight,
                measured=runlog.measured.get("districts"))
            for rid, why in d_skipped.items():  # e.g. a district ratio without its column
                check.skipped.setdefault(rid, why)

    rejected = pd.concat([layer.rejected for layer in layers.values()]
                         + ([demand_layer.rejected] if demand_layer is not None else []),
                         ignore_index=True)
    return Result(
        config=config, network=network, layers=layers, facilities=placed.tables,
        service_areas=placed.service_areas, unions=placed.unions, demand=reached.table,
        units=unit_table, gap_report=gap, district_report=district_report,
        districts_gdf=district_table, district_areas=district_areas, check=check,
        rules=rules, rejected=rejected, problems=problems, timings=timings,
        reused=runlog.cached, population=population, misplaced=misplaced,
        profile_unions={key: result.profile_unions for key, result in areas.items()},
        pairs=all_pairs)


def _as_units(frame: gpd.GeoDataFrame, what: str) -> gpd.GeoDataFrame:
    """Units as :func:`read_units` gives them (a frame that already has ``unit`` is kept)."""
    if "unit" in frame.columns:
        out = frame if "district" in frame.columns else frame.assign(district="")
        return out.to_crs("EPSG:4326") if out.crs is not None else out
    district = "district" if "district" in frame.columns else None
    return read_units(frame, name_field="name", district_field=district, what=what)


def _config_for(name: str, layers: dict[str, Layer], demand: Layer | None,
                analysis: AnalysisSpec) -> RunConfig:
    """The config an in-memory analysis would have had: its layers' specs, no files."""
    return RunConfig(name=name, source=None, network=NetworkSpec(source="memory"),
                     units=UnitSpec(path=FRAME_SOURCE, name_field="unit"),
                     layers={key: layer.spec for key, layer in layers.items()},
                     analysis=analysis, demand=demand.spec if demand is not None else None)


def name_districts(units: gpd.GeoDataFrame, districts: gpd.GeoDataFrame,
                    ) -> tuple[gpd.GeoDataFrame, list[Problem]]:
    """Give every 街镇 a district of the districts layer.

    A 街镇 whose district name is missing (no ``district_field``) or not in the districts
    layer takes the district its interior point lies in, and the run says how many did.
    """
    names = districts["unit"].astype(str)
    unknown = ~units["district"].astype(str).isin(set(names)).to_numpy()
    if not unknown.any():
        return units, []
    inside = gpd.GeoDataFrame(geometry=units.geometry.representative_point()[unknown],
                              crs=units.crs)
    where = coverage.assign_units(inside, districts.to_crs(units.crs)).to_numpy()
    units = units.copy()
    found = np.where(where >= 0, names.to_numpy(dtype=object)[np.maximum(where, 0)], "")
    units.loc[unknown, "district"] = found
    lost = int((where < 0).sum())
    message = (f"{int(unknown.sum())} 街镇 without a district name of the districts layer took "
               "the district they lie in" + (f"; {lost} lie in none" if lost else ""))
    return units, [Problem("warning" if lost else "info", "units", message,
                           int(unknown.sum()))]


def _with_unit(points: gpd.GeoDataFrame, units: gpd.GeoDataFrame,
               where: npt.NDArray[np.int64]) -> gpd.GeoDataFrame:
    """A copy of ``points`` with the 街镇 and district at positions ``where`` (-1: none).

    A source column of the same name as one coverage15 adds (:data:`ADDED_COLUMNS`) is kept
    as ``src_{name}``: the source's claim next to what coverage15 found.
    """
    names = np.append(units["unit"].to_numpy(dtype=object), [None])
    districts = np.append(units["district"].to_numpy(dtype=object), [None])
    out = points.rename(columns={c: f"src_{c}" for c in ADDED_COLUMNS
                                 if c in points.columns and f"src_{c}" not in points.columns})
    out = out.drop(columns=[c for c in ADDED_COLUMNS if c in out.columns])
    out["jiezhen"] = names[where]
    out["district"] = districts[where]
    return out


@dataclass
class _Placed:
    """Facilities placed in their 街镇, with what they reach."""

    tables: dict[str, gpd.GeoDataFrame]
    unit_of: dict[str, npt.NDArray[np.int64]]
    unions: dict[str, shapely.Geometry]
    service_areas: gpd.GeoDataFrame
    pairs: dict[str, tuple[Any, Any, Any]]
    problems: list[Problem]


def _place_facilities(net: WalkNetwork, layers: dict[str, Layer],
                      areas: dict[str, LayerAreas], units: gpd.GeoDataFrame,
                      a: AnalysisSpec, *, unions: Mapping[str, shapely.Geometry]) -> _Placed:
    """Per layer: the facility table, its 街镇, its service areas and their union.

    ``unions``: the unions a partitioned run already made (per tile, on its workers).
    """
    placed = _Placed({}, {}, {}, gpd.GeoDataFrame(), {}, [])
    frames = []
    for key, layer in layers.items():
        result = areas[key]
        placed.pairs[key] = result.pairs
        placed.problems += snap_problems(key, layer.points, result.snap_m, net.extent,
                                         a.working_crs, snap_max_m=a.snap_max_m)
        polygons = result.polygons
        placed.unions[key] = (unions[key] if key in unions
                              else service_areas.union_areas(polygons))
        placed.unit_of[key] = coverage.assign_units(layer.points, units).to_numpy()
        points = _with_unit(layer.points, units, placed.unit_of[key])
        points["snap_m"] = result.snap_m
        points["on_network"] = result.on_network
        points["reach_m"] = result.reached_m
        placed.tables[key] = points
        frames.append(gpd.GeoDataFrame(
            {"layer": key, "label": layer.spec.label,
             "facility_id": points["facility_id"].to_numpy(),
             "name": points["name"].to_numpy(), "reach_m": result.reached_m,
             "area_km2": shapely.area(polygons) / 1e6},
            geometry=polygons, crs=net.crs).loc[~shapely.is_empty(polygons)])
    sa = (pd.concat(frames, ignore_index=True) if frames
          else gpd.GeoDataFrame(geometry=[], crs=net.crs))
    placed.service_areas = gpd.GeoDataFrame(sa, geometry="geometry", crs=net.crs).to_crs(
        "EPSG:4326")
    return placed


def _partition_problems(runlog: RunLog) -> list[Problem]:
    return [Problem("warning", "partitions", f"partition {retried} failed {len(errors)} "
                    f"time(s) and was retried: {errors[-1]}", len(errors))
            for retried, errors in runlog.retried.items()]


@dataclass
class _Reached:
    """The demand points, the layers that reach each, and their 街镇."""

    table: gpd.GeoDataFrame | None = None
    cover: pd.DataFrame | None = None
    unit_of: npt.NDArray[np.int64] | None = None
    snap_m: npt.NDArray[np.float64] | None = None


def _reach_demand(demand: Layer | None, areas: dict[str, LayerAreas], units: gpd.GeoDataFrame,
                  snap_m: npt.NDArray[np.float64], snapped: npt.NDArray[np.bool_]) -> _Reached:
    """Each demand point with its 街镇, snap and per-layer nearest distances and counts."""
    if demand is None:
        return _Reached()
    cover = coverage.demand_coverage(len(demand.points),
                                     {key: result.pairs for key, result in areas.items()})
    unit_of = coverage.assign_units(demand.points, units).to_numpy()
    table = _with_unit(demand.points, units, unit_of)
    table["snap_m"] = snap_m
    table["on_network"] = snapped
    for column in cover.columns:
        table[column] = cover[column].to_numpy()
    return _Reached(table, cover, unit_of, snap_m)


def _coverage_problems(table: pd.DataFrame,
                       facility_unit: dict[str, npt.NDArray[np.int64]],
                       demand_unit: npt.NDArray[np.int64] | None) -> list[Problem]:
    """Points in no 街镇, and no 街镇 judged on walking (a misspelt rule stopped earlier)."""
    problems = []
    if len(table) and (table["network"] == "none").all():
        problems.append(Problem(
            "warning", "units", "no 街镇 lies inside the network's extent, so walking rules "
            "are judged nowhere: check the units file, its CRS and [analysis] working_crs",
            len(table)))
    placed = {**facility_unit, **({"demand": demand_unit} if demand_unit is not None else {})}
    for key, where in placed.items():
        problems += outside_problems(key, where)
    return problems


def _judged(table: pd.DataFrame, reached: _Reached) -> npt.NDArray[np.bool_]:
    """Demand points whose 街镇 is wholly inside the network (judged on walking rules)."""
    assert reached.unit_of is not None
    full = (table["network"] == "full").to_numpy()
    judged: npt.NDArray[np.bool_] = (reached.unit_of >= 0) & full[np.maximum(reached.unit_of, 0)]
    return judged


def _to_measure(units: gpd.GeoDataFrame,
                district_shapes: tuple[gpd.GeoDataFrame, Any] | None,
                crs: str) -> dict[str, npt.NDArray[np.object_]]:
    """The polygons whose overlays a partitioned run measures per tile, in the network's CRS."""
    out = {"units": units.geometry.to_crs(crs).to_numpy()}
    if district_shapes is not None:
        out["districts"] = district_shapes[0].geometry.to_crs(crs).to_numpy()
    return out


def _completeness(table: pd.DataFrame, units: gpd.GeoDataFrame, net: WalkNetwork,
                  reached: _Reached, problems: list[Problem], *,
                  measured: Mapping[str, npt.NDArray[np.float64]] | None = None,
                  ) -> dict[str, tuple[str, str]]:
    """Add the network's completeness to ``table``; a ``sparse`` 街镇 is not judged on walking.

    A 街镇 wholly inside the network's extent whose streets are sparse (residents far from
    any street and few streets per km², e.g. at the torn edge of an extract) is marked
    ``partial``: its walking shares would count residents as unserved for want of streets.
    Returns the cautions for the gap report's reasons, by 街镇 name.
    """
    complete = completeness_table(units, net, reached.unit_of, reached.snap_m,
                                  measured=measured)
    was_full = apply_completeness(table, complete)
    names = units["unit"].tolist()
    problems += completeness_problems(names, complete, was_full)
    return completeness_cautions(names, complete, was_full)


def _add_pass_columns(table: pd.DataFrame, check: targets.TargetCheck,
                      reached: _Reached) -> None:
    """``pass_{rule}`` per demand point: whether it meets each demand rule (NA: not judged)."""
    if reached.table is None:
        return
    judged = _judged(table, reached)
    for rid, passing in check.demand_pass.items():
        column = pd.array(passing, dtype="boolean")
        column[~judged] = pd.NA
        reached.table[f"pass_{rid}"] = column


def _districts_of(units: gpd.GeoDataFrame, districts: gpd.GeoDataFrame,
                  ) -> tuple[gpd.GeoDataFrame, Callable[[np.ndarray], np.ndarray]]:
    """Each district as the union of its 街镇, and a map from 街镇 position to district position.

    Districts are listed as in ``districts`` (a district without 街镇 keeps its own outline);
    a 街镇 whose district is not listed maps to ``-1``, like a point outside every 街镇.
    """
    names = districts["unit"].astype(str).to_numpy()
    position = {name: i for i, name in enumerate(names)}
    of_unit = np.array([position.get(str(d), -1) for d in units["district"]], dtype=np.int64)
    shapes = districts.geometry.to_crs(units.crs).to_numpy().copy()
    unit_shapes = shapely.make_valid(units.geometry.to_numpy())
    for i in np.unique(of_unit[of_unit >= 0]):
        shapes[i] = shapely.union_all(unit_shapes[of_unit == i])
    areas = gpd.GeoDataFrame({"unit": names, "district": names}, geometry=shapes,
                             crs=units.crs)

    def in_district(unit_position: np.ndarray) -> np.ndarray:
        where = np.asarray(unit_position, dtype=np.int64)
        return np.where(where >= 0, of_unit[np.maximum(where, 0)], -1)

    return areas, in_district


def _district_report(districts: gpd.GeoDataFrame,
                     shapes: tuple[gpd.GeoDataFrame, Callable[[np.ndarray], np.ndarray]], *,
                     placed: _Placed, reached: _Reached, gap: pd.DataFrame,
                     rules: list[targets.Rule], net: WalkNetwork, a: AnalysisSpec,
                     labels: dict[str, str], totals: dict[str, int], keys: list[str],
                     extra: RuleInputs, weight: weights.DemandWeights | None,
                     measured: Mapping[str, npt.NDArray[np.float64]] | None = None,
                     ) -> tuple[pd.DataFrame, gpd.GeoDataFrame, dict[str, str]]:
    """One row per district, the sum of its 街镇.

    Points count in their 街镇's district and the area is that of its 街镇 merged (an overlap
    of two counted once), so a district's counts add up to its 街镇 rows (the district
    outlines, from another source, only draw the map's boundaries).
    """
    district_areas, in_district = shapes  # _districts_of(units, districts)
    d_unit = in_district(reached.unit_of) if reached.unit_of is not None else None
    d_table = coverage.coverage_by_unit(
        district_areas, facility_units={key: in_district(u)
                                        for key, u in placed.unit_of.items()},
        demand_unit=d_unit, demand_cover=reached.cover, unions=placed.unions,
        extent=net.extent, working_crs=a.working_crs, measured=measured)
    d_check = targets.check_targets(
        d_table, [r for r in rules if r.kind != "full_coverage"],
        demand_cover=reached.cover, demand_unit=d_unit, layer_labels=labels,
        layer_totals=totals,
        **extra.check_args("district", districts["unit"],
                           {key: in_district(u) for key, u in placed.unit_of.items()},
                           weight))
    report = gaps.units_by_district(
        gaps.gap_report(districts[["unit", "district"]], d_table, d_check, keys,
                        unit_column="district"), gap)
    return report, district_areas, d_check.skipped



@dataclass
class RuleInputs:
    """What the profiles, weights, sum and ratio rules add to the rule checks.

    Shared with the live app's engine, so that its scenarios are judged as a run is.
    """

    pairs: dict[str, tuple[Any, Any, Any]]
    a: AnalysisSpec
    population: pd.DataFrame | None
    config: RunConfig
    layers: dict[str, Layer]
    weight_field: str | None = None

    @property
    def population_unit(self) -> str:
        """Where the population table's figures are given: ``district`` or ``jiezhen``."""
        if self.population is not None and "unit" in self.population.attrs:
            return str(self.population.attrs["unit"])
        return self.config.population.unit if self.config.population else "district"

    def demand_weights(self, units: gpd.GeoDataFrame, reached: _Reached,
                ) -> weights.DemandWeights | None:
        """Persons per demand point (the demand table gets ``persons``), or None."""
        if reached.table is None or reached.unit_of is None:
            return None
        spec = self.config.demand
        column = None
        if self.population is not None:
            column = self.population.attrs.get("column") or (
                self.config.population.column if self.config.population else None)
        unit_of = reached.unit_of
        names = units["unit"]
        if self.population_unit == "district":
            names = pd.Series(sorted(set(units["district"].astype(str))))
            position = {n: i for i, n in enumerate(names)}
            of_unit = np.array([position[str(d)] for d in units["district"]], dtype=np.int64)
            unit_of = np.where(unit_of >= 0, of_unit[np.maximum(unit_of, 0)], -1)
        weight = weights.demand_weights(
            reached.table, weight_field=self.weight_field or (spec.weight_field if spec else None),
            unit_of=unit_of,
            unit_names=names, population=self.population, column=column)
        if weight is not None:
            reached.table["persons"] = weight.persons
            reached.table["persons_source"] = weight.source
        return weight

    def check_args(self, level: str, names: pd.Series,
                   unit_of: dict[str, npt.NDArray[np.int64]],
                   weight: weights.DemandWeights | None) -> dict[str, Any]:
        """The keyword arguments of :func:`~coverage15.reach.targets.check_targets`."""
        population = None
        if self.population is not None:
            population = UnitPopulation(
                level=self.population_unit,  # type: ignore[arg-type]
                table=weights.population_by_position(self.population, names),
                totals=self.population.sum(numeric_only=True).to_dict())
        return {
            "pairs": self.pairs, "profiles": self.a.walk_profiles, "minutes": self.a.minutes,
            "weights": weight.persons if weight is not None else None, "level": level,
            "facilities": {key: FacilityValues(unit_of[key], layer.points)
                           for key, layer in self.layers.items()},
            "population": population, "share_basis": self.a.share_basis,
        }
