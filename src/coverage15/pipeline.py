"""One coverage run from a config: load → network → service areas → coverage → targets.

:func:`run` returns a :class:`RunResult` holding every intermediate table; :func:`write_outputs`
writes the GeoPackage, CSV reports, summary and map atomically.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from . import __version__, coverage, report, service_areas, targets
from ._errors import Coverage15Error, LayerError
from ._io import staged_outputs
from ._validate import (
    Problem,
    input_problems,
    outside_problems,
    problems_frame,
    scale_problems,
    snap_problems,
    sparse_street_problems,
    sparse_street_reason,
    sparse_street_units,
)
from .config import RunConfig
from .io import (
    check_postgis_names,
    output_layers,
    write_csv,
    write_excel,
    write_geopackage,
    write_geoparquet,
    write_postgis,
)
from .layers import Layer, check_file, load_layer, load_units
from .network import WalkNetwork, build_walk_network
from .partition import compute_layers

__all__ = ["RunResult", "fetch", "run", "write_outputs"]

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
_T = TypeVar("_T")


@dataclass
class RunResult:
    """Everything a run produced.

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
        One row per 街镇 (see :func:`coverage15.report.gap_report`).
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
        lines = report.summary_lines(self.gap_report, self.check, layer_counts=counts)
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


@contextmanager
def _step(timings: dict[str, float], name: str, progress: Progress | None) -> Iterator[None]:
    if progress is not None:
        progress(name, 0, 0)
    start = time.perf_counter()
    yield
    timings[name] = time.perf_counter() - start
    log.info("%s: %.2f s", name, timings[name])


def _name_districts(units: gpd.GeoDataFrame, districts: gpd.GeoDataFrame,
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


ADDED_COLUMNS = ("jiezhen", "district", "snap_m", "on_network", "reach_m")


def _with_unit(points: gpd.GeoDataFrame, units: gpd.GeoDataFrame,
               where: npt.NDArray[np.int64]) -> gpd.GeoDataFrame:
    """A copy of ``points`` with the 街镇 and district at positions ``where`` (-1: none).

    A source column of the same name as one coverage15 adds (``jiezhen``, ``district``,
    ``snap_m``, ``on_network``, ``reach_m``) is kept as ``src_{name}``: the source's claim
    next to what coverage15 found.
    """
    names = np.append(units["unit"].to_numpy(dtype=object), [None])
    districts = np.append(units["district"].to_numpy(dtype=object), [None])
    out = points.rename(columns={c: f"src_{c}" for c in ADDED_COLUMNS
                                 if c in points.columns and f"src_{c}" not in points.columns})
    out = out.drop(columns=[c for c in ADDED_COLUMNS if c in out.columns])
    out["jiezhen"] = names[where]
    out["district"] = districts[where]
    return out


def _load_inputs(
    config: RunConfig,
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame | None, dict[str, Layer], Layer | None]:
    """Read every input, collecting all failures into one error."""
    errors: list[str] = []

    def attempt(what: str, load: Callable[[], _T]) -> _T | None:
        try:
            return load()
        except Coverage15Error as exc:
            text = str(exc)
            errors.append(text if what.rsplit(maxsplit=1)[-1] in text else f"{what}: {text}")
            return None

    network_path = config.network.path
    if network_path is not None:  # read later, but a missing file is named with the rest
        attempt("network", lambda: check_file(network_path, "network"))
    units = attempt("units", lambda: load_units(config.units, what="units"))
    district_spec = config.districts
    districts = (attempt("districts", lambda: load_units(district_spec, what="districts"))
                 if district_spec is not None else None)
    layers: dict[str, Layer] = {}
    for key, spec in config.layers.items():
        layer = attempt(f"layer {key}", lambda spec=spec: load_layer(spec))  # type: ignore[misc]
        if layer is None:
            continue
        if len(layer.points) == 0:
            reasons = layer.set_aside_counts().head(3).to_dict()
            errors.append(f"layer {key!r} ({spec.source_name}): no usable rows of "
                          f"{layer.n_source} (set aside: {reasons}); check filter and "
                          "coordinate columns")
            continue
        layers[key] = layer
    demand_spec = config.demand
    demand = (attempt("demand", lambda: load_layer(demand_spec))
              if demand_spec is not None else None)
    if errors or units is None:
        listing = "\n  ".join(errors)
        msg = errors[0] if len(errors) == 1 else (
            f"{len(errors)} input(s) cannot be used:\n  {listing}")
        raise LayerError(msg)
    return units, districts, layers, demand


def fetch(config: RunConfig) -> list[str]:
    """Download and cache everything a config needs from OpenStreetMap.

    Networks given by place, polygon or bbox and layers given by ``osm_tags`` are queried
    once (internet needed) and cached; later runs then work offline. Local files are only
    checked.

    Returns
    -------
    list of str
        One line per input saying what was done.
    """
    from .osm import feature_points

    done = []
    net = build_walk_network(config.network, working_crs=config.analysis.working_crs)
    done.append(f"network ({config.network.source}): {net.n_nodes} nodes, {net.n_edges} edges")
    for key, spec in config.layers.items():
        if spec.osm_tags:
            assert spec.place is not None
            points = feature_points(dict(spec.osm_tags), spec.place, online=True)
            done.append(f"layer {key}: {len(points)} OpenStreetMap features cached")
        else:
            done.append(f"layer {key}: local ({spec.source_name}), nothing to fetch")
    return done


def run(
    config: RunConfig,
    *,
    progress: Progress | None = None,
    partitions: int = 1,
    scheduler: str | Any | None = None,
) -> RunResult:
    """Run a coverage analysis.

    Parameters
    ----------
    config
        From :func:`coverage15.config.load_config`.
    partitions
        Split the distance work into this many tiles (see :mod:`coverage15.partition`).
    scheduler
        With ``partitions > 1``: ``"local"`` for a new Dask ``LocalCluster``, a
        ``tcp://host:port`` scheduler address, or a ``dask.distributed.Client``.
    progress
        Called as ``progress(step, done, total)`` during long steps (``total == 0`` when a
        step starts).

    Returns
    -------
    RunResult
    """
    timings: dict[str, float] = {}
    a = config.analysis
    rules = targets.load_targets(config.targets) if config.targets else []

    with _step(timings, "load layers", progress):
        units, districts, layers, demand_layer = _load_inputs(config)
        named: list[Problem] = []
        if districts is not None:
            units, named = _name_districts(units, districts)
        problems = named + input_problems(config, units, layers, demand_layer)

    with _step(timings, "network", progress):
        net = build_walk_network(config.network, working_crs=config.analysis.working_crs)
        problems += scale_problems(net)

    facilities: dict[str, gpd.GeoDataFrame] = {}
    facility_unit: dict[str, npt.NDArray[np.int64]] = {}
    area_frames = []
    unions: dict[str, shapely.Geometry] = {}
    with _step(timings, "service areas", progress):
        areas, demand_snap_m, demand_snapped, runlog = compute_layers(
            net, {key: layer.points for key, layer in layers.items()},
            demand_layer.points if demand_layer is not None else None, a,
            partitions=partitions, scheduler=scheduler, progress=progress)
    pairs = {key: result.pairs for key, result in areas.items()}
    for key, layer in layers.items():
        result = areas[key]
        problems += snap_problems(key, layer.points, result.snap_m, net.extent,
                                  a.working_crs, snap_max_m=a.snap_max_m)
        polygons = result.polygons
        present = ~shapely.is_empty(polygons)
        unions[key] = service_areas.union_areas(polygons)
        facility_unit[key] = coverage.assign_units(layer.points, units).to_numpy()
        points = _with_unit(layer.points, units, facility_unit[key])
        points["snap_m"] = result.snap_m
        points["on_network"] = result.on_network
        points["reach_m"] = result.reached_m
        facilities[key] = points
        area_frames.append(gpd.GeoDataFrame(
            {"layer": key, "label": layer.spec.label,
             "facility_id": points["facility_id"].to_numpy(),
             "name": points["name"].to_numpy(), "reach_m": result.reached_m,
             "area_km2": shapely.area(polygons) / 1e6},
            geometry=polygons, crs=net.crs).loc[present])
    for retried, errors in runlog.retried.items():
        problems.append(Problem("warning", "partitions", f"partition {retried} failed "
                                f"{len(errors)} time(s) and was retried: {errors[-1]}",
                                len(errors)))

    with _step(timings, "coverage", progress):
        demand = None
        demand_cover = None
        demand_unit = None
        if demand_layer is not None:
            demand_cover = coverage.demand_coverage(len(demand_layer.points), pairs)
            demand_unit = coverage.assign_units(demand_layer.points, units).to_numpy()
            demand = _with_unit(demand_layer.points, units, demand_unit)
            demand["snap_m"] = demand_snap_m
            demand["on_network"] = demand_snapped
            for column in demand_cover.columns:
                demand[column] = demand_cover[column].to_numpy()
        table = coverage.coverage_by_unit(
            units, facility_units=facility_unit, demand_unit=demand_unit,
            demand_cover=demand_cover, unions=unions, extent=net.extent,
            working_crs=a.working_crs)
        labels = {k: s.label for k, s in config.layers.items()}
        totals = {k: len(layer.points) for k, layer in layers.items()}
        check = targets.check_targets(table, rules, demand_cover=demand_cover,
                                      demand_unit=demand_unit, layer_labels=labels,
                                      layer_totals=totals)
        if len(table) and (table["network"] == "none").all():
            problems.append(Problem(
                "warning", "units", "no 街镇 lies inside the network's extent, so walking rules "
                "are judged nowhere: check the units file, its CRS and [analysis] working_crs",
                len(table)))
        placed = {**facility_unit, **({"demand": demand_unit} if demand_unit is not None else {})}
        for key, where in placed.items():
            problems += outside_problems(key, where)
        for rid, why in check.skipped.items():
            if "did you mean" in why:  # a likely typo in the targets file, not a choice
                problems.append(Problem("warning", "targets",
                                        f"rule {rid} not evaluated: {why}", 1))
        sparse = pd.Series(dtype="float64")  # 街镇 whose streets look missing (none known)
        if demand is not None and demand_unit is not None:
            # judged only where the point's 街镇 is wholly inside the network, as in the report
            full = (table["network"] == "full").to_numpy()
            judged = (demand_unit >= 0) & full[np.maximum(demand_unit, 0)]
            sparse, overall = sparse_street_units(full, demand_unit, demand_snap_m)
            problems += sparse_street_problems(units["unit"].tolist(), sparse, overall)
            for rid, passing in check.demand_pass.items():
                column = pd.array(passing, dtype="boolean")
                column[~judged] = pd.NA
                demand[f"pass_{rid}"] = column
        gap = report.gap_report(units[["unit", "district"]], table, check, list(layers))
        report.add_caution(gap, {units["unit"].iloc[int(u)]: sparse_street_reason(m)
                                 for u, m in sparse.items()})
        district_report = None
        district_areas = None
        if districts is not None:
            # a district is the sum of its 街镇: points count in their 街镇's district and the
            # area is that of its 街镇 merged (an overlap of two counted once), so its counts
            # add up to the 街镇 rows
            # (the district outlines, from another source, only draw the map's boundaries)
            district_areas, in_district = _districts_of(units, districts)
            d_unit = in_district(demand_unit) if demand_unit is not None else None
            d_table = coverage.coverage_by_unit(
                district_areas, facility_units={
                    key: in_district(u) for key, u in facility_unit.items()},
                demand_unit=d_unit, demand_cover=demand_cover, unions=unions,
                extent=net.extent, working_crs=a.working_crs)
            d_check = targets.check_targets(
                d_table, [r for r in rules if r.kind != "full_coverage"],
                demand_cover=demand_cover, demand_unit=d_unit, layer_labels=labels,
                layer_totals=totals)
            district_report = report.units_by_district(
                report.gap_report(districts[["unit", "district"]], d_table, d_check,
                                  list(layers), unit_column="district"), gap)

    rejected = pd.concat(
        [layer.rejected for layer in layers.values()]
        + ([demand_layer.rejected] if demand_layer is not None else []),
        ignore_index=True,
    )
    sa = (pd.concat(area_frames, ignore_index=True) if area_frames
          else gpd.GeoDataFrame(geometry=[], crs=net.crs))
    return RunResult(
        config=config,
        network=net,
        layers=layers,
        facilities=facilities,
        service_areas=gpd.GeoDataFrame(sa, geometry="geometry", crs=net.crs).to_crs(
            "EPSG:4326"),
        unions=unions,
        demand=demand,
        units=units,
        gap_report=gap,
        district_report=district_report,
        districts_gdf=districts,
        district_areas=district_areas,
        check=check,
        rules=rules,
        rejected=rejected,
        problems=problems,
        timings=timings,
        reused=runlog.cached,
    )


def write_outputs(
    result: RunResult,
    out_dir: str | Path,
    *,
    map_html: bool = True,
    map_png: bool | None = None,
    map_options: object | None = None,
    parquet: bool = False,
    to_database: str | None = None,
    schema: str = "public",
) -> dict[str, Path]:
    """Write a run's outputs, atomically, into ``out_dir``.

    Files: ``coverage.gpkg`` (layers ``service_areas``, ``units``, ``demand``,
    ``facilities``, ``districts``), ``gap_report.csv``, ``gap_report.xlsx``,
    ``district_report.csv``, ``rejected.csv``, ``problems.csv``, ``summary.json``,
    ``map.html`` (self-contained, works offline) and
    static maps ``png/overview.png`` plus ``png/<district>.png`` for each district with any
    街镇 inside the network (only the chosen one with ``MapOptions(district=...)``).

    Parameters
    ----------
    result
        A finished run.
    out_dir
        Output folder, created if needed.
    map_html
        Write ``map.html``.
    map_png
        Write the PNG maps; by default the same as ``map_html``.
    map_options
        :class:`coverage15.maps.MapOptions` for the map (tiles, district...).
    parquet
        Also write every layer as GeoParquet into ``parquet/``.
    to_database
        Also write every layer to PostGIS at this ``postgresql://`` URL (tables
        ``coverage15_<layer>`` in ``schema``), after the files are in place.
    schema
        Database schema for ``to_database``.

    Returns
    -------
    dict
        Output name → final path.
    """
    out = Path(out_dir)
    written: dict[str, Path] = {}
    if to_database:  # a bad schema name must not wait until the files are replaced
        check_postgis_names([], schema=schema)
    with staged_outputs(out, written, kind="run") as stage:
        layers = output_layers(result)
        write_geopackage(layers, stage / "coverage.gpkg")
        write_csv(result.gap_report, stage / "gap_report.csv")
        write_excel(result, stage / "gap_report.xlsx")
        if parquet:
            write_geoparquet(layers, stage / "parquet")
        if result.district_report is not None:
            write_csv(result.district_report, stage / "district_report.csv")
        write_csv(result.rejected, stage / "rejected.csv")
        write_csv(problems_frame(result.problems), stage / "problems.csv")
        summary = {
            "config": result.config.name,
            "config_file": str(result.config.source),
            "walk_speed_kmh": result.config.analysis.walk_speed_kmh,
            "minutes": result.config.analysis.minutes,
            "limit_m": result.config.analysis.limit_m,
            "buffer_m": result.config.analysis.buffer_m,
            "snap_max_m": result.config.analysis.snap_max_m,
            "access_leg": result.config.analysis.access_leg,
            "working_crs": result.config.analysis.working_crs,
            "network": {"source": result.config.network.source,
                        "path": str(result.config.network.path or ""),
                        "place": result.config.network.place,
                        "nodes": result.network.n_nodes, "edges": result.network.n_edges},
            "coverage15_version": __version__,
            "citywide": [
                {"rule": c.rule.id, "value": c.value, "passed": c.passed, "reason": c.reason}
                for c in result.check.citywide
            ],
            "not_evaluated": result.check.skipped,
            "uncovered": int(result.gap_report["uncovered"].fillna(False).astype(bool).sum()),
            "problems": problems_frame(result.problems).to_dict(orient="records"),
            "lines": result.summary(),
        }
        (stage / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2),
                                            encoding="utf-8")
        from .maps import MapOptions

        opts = map_options if isinstance(map_options, MapOptions) else MapOptions(
            tiles=None if result.config.map.tiles.lower() == "none" else result.config.map.tiles,
            tiles_attribution=result.config.map.tiles_attribution)
        if map_html:
            from .maps import render_map

            render_map(result, options=opts).save(str(stage / "map.html"))
        if map_html if map_png is None else map_png:
            from .static_maps import write_pngs

            districts = [opts.district] if opts.district else None
            write_pngs(result, stage / "png", districts=districts)
    if to_database:
        for table in write_postgis(layers, to_database, schema=schema):
            written[f"postgis:{table}"] = Path(table)
    return written
