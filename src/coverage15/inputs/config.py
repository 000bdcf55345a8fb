"""Run configuration: which network, units, demand and facility layers a run uses.

A run is described by a TOML file, so that a new run or a new facility layer needs a file,
not code. Paths may use ``${VARIABLE}`` (for example ``${COVERAGE15_DATA}``); relative paths are
resolved against ``data_dir``, and ``data_dir`` and ``targets`` against the config file's folder.
:func:`load_config` reads and checks the whole file, collecting every problem before raising one
:class:`~coverage15.ConfigError`.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Any

from coverage15 import settings
from coverage15._errors import ConfigError
from coverage15.inputs._sql import check_table_name, check_url
from coverage15.inputs._toml import _expand, _Reader, read_toml
from coverage15.inputs.specs import (
    DEFAULT_AREA_MARGIN_M,
    LOCATION_CHECKS,
    NETWORK_SOURCES,
    NETWORK_TYPES,
    NETWORK_WAYS,
    ROLES,
    AnalysisSpec,
    LayerSpec,
    MapSpec,
    NetworkSpec,
    PopulationSpec,
    Role,
    RunConfig,
    ScaleSpec,
    UnitSpec,
    WalkProfile,
)

__all__ = [
    "AnalysisSpec",
    "LayerSpec",
    "MapSpec",
    "NetworkSpec",
    "Role",
    "RunConfig",
    "ScaleSpec",
    "UnitSpec",
    "load_config",
    "read_toml",
]

def _read_layer(r: _Reader, key: str, table: dict[str, Any], section: str) -> LayerSpec | None:
    if not isinstance(table, dict):
        r.problems.append(f"{r.file.name} [{section}]: expected a table")
        return None
    known = {
        "label", "path", "role", "crs", "x", "y", "filter", "name_field", "id_field", "layer",
        "exclude_points", "encoding", "unit_field", "database", "table", "sql", "osm_tags",
        "place", "colour", "location_check", "location_tolerance_m", "weight_field",
    }
    r.known(table, section, known)
    database = r.str_(table, section, "database")
    db_table = r.str_(table, section, "table")
    db_sql = r.str_(table, section, "sql")
    if database is not None:
        database = _read_database(r, section, database, db_table, db_sql)
    raw_tags = table.get("osm_tags", {})
    tags: list[tuple[str, str | bool]] = []
    if isinstance(raw_tags, dict):
        tags = [(str(k), v if isinstance(v, bool) else str(v)) for k, v in raw_tags.items()]
    else:
        r.problems.append(f"{r.where(section, 'osm_tags')}: expected {{ tag = \"value\" }}")
    if tags and not table.get("place"):
        r.problems.append(f"{r.file.name} [{section}]: an osm_tags layer needs place")
    needs_path = database is None and not tags
    path = r.path(table, section, "path", required=needs_path)
    role = r.str_(table, section, "role", default="other") or "other"
    if role not in ROLES:
        r.problems.append(f"{r.where(section, 'role')}: {role!r} is not one of {ROLES}")
        role = "other"
    x = r.str_(table, section, "x")
    y = r.str_(table, section, "y")
    if (x is None) != (y is None):
        r.problems.append(f"{r.file.name} [{section}]: give both x and y coordinate columns")
    points: list[tuple[float, float]] = []
    raw_points = table.get("exclude_points", [])
    if not isinstance(raw_points, list):
        r.problems.append(f"{r.where(section, 'exclude_points')}: expected a list of [x, y] "
                          f"pairs, e.g. [[121.4737, 31.2304]], got {raw_points!r}")
        raw_points = []
    for item in raw_points:
        if (isinstance(item, list) and len(item) == 2
                and all(isinstance(v, int | float) for v in item)):
            if abs(item[1]) > 90 >= abs(item[0]):  # no latitude is above 90
                r.problems.append(f"{r.where(section, 'exclude_points')}: {item!r} looks like "
                                  f"[latitude, longitude]; write [x, y] = [longitude, "
                                  f"latitude], e.g. [{item[1]}, {item[0]}]")
            points.append((float(item[0]), float(item[1])))
        else:
            r.problems.append(f"{r.where(section, 'exclude_points')}: {item!r} is not [x, y]")
    colour = r.str_(table, section, "colour")
    if colour is not None and not re.fullmatch(r"#[0-9a-fA-F]{6}", colour):
        r.problems.append(f"{r.where(section, 'colour')}: {colour!r} is not a colour such as "
                          "\"#1f78b4\"")
        colour = None
    if key == "snap":
        r.problems.append(f"{r.file.name} [{section}]: the layer key 'snap' is reserved (its "
                          "column snap_m would clash with the residents' own); choose another")
    location_check = (r.str_(table, section, "location_check", default="flag") or "flag")
    if location_check not in LOCATION_CHECKS:
        r.problems.append(f"{r.where(section, 'location_check')}: {location_check!r} is not "
                          f"one of {LOCATION_CHECKS}")
        location_check = "flag"
    tolerance = r.num(table, section, "location_tolerance_m", settings.location_tolerance_m)
    if path is None and needs_path:
        return None
    return LayerSpec(
        key=key,
        label=r.str_(table, section, "label", default=key) or key,
        path=path,
        role=role,  # type: ignore[arg-type]
        crs=r.str_(table, section, "crs", default="") or "",
        x=x,
        y=y,
        filter=_filter(r, table, section),
        name_field=r.str_(table, section, "name_field"),
        id_field=r.str_(table, section, "id_field"),
        layer=r.str_(table, section, "layer"),
        exclude_points=tuple(points),
        encoding=r.str_(table, section, "encoding", default="utf-8") or "utf-8",
        unit_field=r.str_(table, section, "unit_field"),
        database=database,
        table=db_table,
        sql=db_sql,
        osm_tags=tuple(tags),
        place=r.str_(table, section, "place"),
        colour=colour,
        location_check=location_check,  # type: ignore[arg-type]
        location_tolerance_m=tolerance,
        weight_field=r.str_(table, section, "weight_field"),
    )


def _read_database(r: _Reader, section: str, database: str, table: str | None,
                   sql: str | None) -> str:
    """A database layer's URL, ``${VAR}`` expanded, checked with its table; problems to ``r``.

    ``table`` must be ``table`` or ``schema.table`` of plain names (letters, digits, ``_``);
    ``sql`` is the user's own query, trusted and run as written. A message shows the URL
    with its password masked.
    """
    if not (table or sql) or (table is not None and sql is not None):
        r.problems.append(f"{r.file.name} [{section}]: a database layer needs table or sql "
                          "(one of them)")
    if table is not None:
        try:
            check_table_name(table, what=r.where(section, "table"))
        except ConfigError as exc:
            r.problems.append(str(exc))
    before = len(r.problems)
    url = _expand(database, r.where(section, "database"), r.problems)
    if len(r.problems) == before:  # (an unset variable is its own problem)
        try:
            check_url(url, what=r.where(section, "database"))
        except ConfigError as exc:
            r.problems.append(str(exc))
    return url


def _filter(r: _Reader, table: dict[str, Any], section: str) -> str | None:
    text = r.str_(table, section, "filter")
    if text is not None and not text.strip():
        r.problems.append(f"{r.where(section, 'filter')}: empty; remove the key to take every "
                          "row, or give an expression such as agencyType == 6")
        return None
    return text


def _read_units(r: _Reader, table: Any, section: str) -> UnitSpec | None:
    if not isinstance(table, dict):
        r.problems.append(f"{r.file.name} [{section}]: missing or not a table")
        return None
    r.known(table, section, {"path", "name_field", "aliases", "district_field", "crs", "layer",
                             "encoding"})
    path = r.path(table, section, "path")
    name_field = r.str_(table, section, "name_field", required=True)
    raw_aliases = table.get("aliases", {})
    aliases: list[tuple[str, str]] = []
    if isinstance(raw_aliases, dict) and all(isinstance(v, str) for v in raw_aliases.values()):
        aliases = [(str(k), str(v)) for k, v in raw_aliases.items()]
    else:
        r.problems.append(f"{r.where(section, 'aliases')}: expected {{ \"source name\" = "
                          "\"official name\" }")
    if path is None or name_field is None:
        return None
    return UnitSpec(
        aliases=tuple(aliases),
        path=path,
        name_field=name_field,
        district_field=r.str_(table, section, "district_field"),
        crs=r.str_(table, section, "crs", default="") or "",
        layer=r.str_(table, section, "layer"),
        encoding=r.str_(table, section, "encoding", default="utf-8") or "utf-8",
    )


def _read_accept(r: _Reader, table: Any) -> tuple[str, ...]:
    """``[accept] warnings = ["crs-fit:centre", ...]``: problems to go ahead with."""
    if not isinstance(table, dict):
        r.problems.append(f"{r.file.name} [accept]: expected a table")
        return ()
    r.known(table, "accept", {"warnings"})
    ids = table.get("warnings", [])
    if not isinstance(ids, list) or not all(isinstance(i, str) and i.strip() for i in ids):
        r.problems.append(f"{r.where('accept', 'warnings')}: expected a list of problem ids, "
                          f"e.g. [\"crs-fit:centre\"], got {ids!r}")
        return ()
    return tuple(i.strip() for i in ids)


def _read_scale(r: _Reader, table: Any) -> ScaleSpec:
    """``[scale] workers = 16``, ``partitions = 64``: a partitioned run's split."""
    if not isinstance(table, dict):
        r.problems.append(f"{r.file.name} [scale]: expected a table")
        return ScaleSpec()
    r.known(table, "scale", {"workers", "partitions"})
    counts: dict[str, int | None] = {}
    for key in ("workers", "partitions"):
        value = table.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < 1):
            r.problems.append(f"{r.where('scale', key)}: expected a whole number of at least "
                              f"1, got {value!r}")
            value = None
        counts[key] = value
    return ScaleSpec(**counts)


def _read_network(r: _Reader, table: Any) -> NetworkSpec | None:
    if not isinstance(table, dict):
        r.problems.append(f"{r.file.name} [network]: missing or not a table")
        return None
    r.known(table, "network", {"source", "path", "place", "bbox", "network_type", "ways", "area",
                              "area_bbox", "area_margin_m"})
    source = r.str_(table, "network", "source", default="osm_file") or "osm_file"
    if source not in NETWORK_SOURCES:
        r.problems.append(f"{r.where('network', 'source')}: {source!r} not in {NETWORK_SOURCES}")
        return None
    path = None
    if source in ("osm_file", "pbf", "graphml", "polygon"):
        path = r.path(table, "network", "path")
    place = r.str_(table, "network", "place", required=source == "place")
    bbox = None
    if source == "bbox":
        raw = table.get("bbox")
        if isinstance(raw, list) and len(raw) == 4 and all(
            isinstance(v, int | float) for v in raw
        ):
            bbox = (float(raw[0]), float(raw[1]), float(raw[2]), float(raw[3]))
        else:
            r.problems.append(f"{r.where('network', 'bbox')}: expected [west, south, east, north]")
    network_type = r.str_(table, "network", "network_type", default="walk") or "walk"
    if network_type not in NETWORK_TYPES:
        r.problems.append(f"{r.where('network', 'network_type')}: {network_type!r} not in "
                          f"{NETWORK_TYPES} (osmnx's network types)")
    ways = r.str_(table, "network", "ways", default="streets") or "streets"
    if ways not in NETWORK_WAYS:
        r.problems.append(f"{r.where('network', 'ways')}: {ways!r} not in {NETWORK_WAYS}")
    area: str | Path | None = None
    if "area" in table:
        raw_area = table.get("area")
        if raw_area == "units":
            area = "units"
        elif isinstance(raw_area, str) and raw_area:
            area = r.path(table, "network", "area")
        else:
            r.problems.append(f"{r.where('network', 'area')}: \"units\" or a polygon file")
    area_bbox = None
    if "area_bbox" in table:
        raw = table.get("area_bbox")
        if isinstance(raw, list) and len(raw) == 4 and all(
            isinstance(v, int | float) for v in raw
        ) and raw[0] < raw[2] and raw[1] < raw[3]:
            area_bbox = (float(raw[0]), float(raw[1]), float(raw[2]), float(raw[3]))
        else:
            r.problems.append(f"{r.where('network', 'area_bbox')}: expected "
                              "[west, south, east, north]")
    margin = table.get("area_margin_m", DEFAULT_AREA_MARGIN_M)
    if isinstance(margin, bool) or not isinstance(margin, int | float) or margin < 0:
        r.problems.append(f"{r.where('network', 'area_margin_m')}: a number of metres >= 0")
        margin = DEFAULT_AREA_MARGIN_M
    if (area is not None or area_bbox is not None) and source not in ("osm_file", "pbf"):
        r.problems.append(f"{r.where('network', 'area')}: area and area_bbox clip a file "
                          "(source osm_file or pbf); an online query has its own area")
    return NetworkSpec(
        source=source,
        path=path,
        place=place,
        bbox=bbox,
        network_type=network_type,
        ways=ways,
        area=area,
        area_bbox=area_bbox,
        area_margin_m=float(margin),
    )


def load_config(path: str | os.PathLike[str]) -> RunConfig:
    """Read and check a run configuration file.

    Parameters
    ----------
    path
        A TOML file (see ``data/shanghai-central.toml``).

    Returns
    -------
    RunConfig
        The checked configuration with absolute paths.

    Raises
    ------
    ConfigError
        Listing every problem found, each with the file, section and key at fault.
    """
    file = Path(path)
    if not file.is_file():
        what = "a directory" if file.is_dir() else "not found"
        msg = f"run config {file}: {what}; give the path of a .toml file"
        raise ConfigError(msg)
    doc = read_toml(file, "run config")

    # the folder as reached (abspath, not resolve): a config in a symlinked folder finds the
    # files beside the link, as a user who opened it there expects
    base = Path(os.path.abspath(file)).parent  # noqa: PTH100
    r = _Reader(file, base, base)
    data_dir_text = r.str_(doc, "top", "data_dir", default=".") or "."
    data_dir = Path(_expand(data_dir_text, r.where("top", "data_dir"), r.problems,
                            as_path=True, here=base)).expanduser()
    r.data_dir = data_dir if data_dir.is_absolute() else base / data_dir

    r.known(doc, "top", {"name", "data_dir", "targets", "official_names", "analysis",
                         "network", "units", "districts", "demand", "layers", "map",
                         "accept", "population", "scale"})
    accept = _read_accept(r, doc.get("accept", {}))
    table = doc.get("analysis", {})
    if not isinstance(table, dict):
        r.problems.append(f"{file.name} [analysis]: expected a table")
        table = {}
    r.known(table, "analysis", {"walk_speed_kmh", "minutes", "buffer_m", "snap_max_m",
                                "access_leg", "working_crs", "profiles", "verdict_profile",
                                "share_basis"})
    analysis = AnalysisSpec(
        walk_speed_kmh=r.num(table, "analysis", "walk_speed_kmh", settings.walk_speed_kmh),
        minutes=r.num(table, "analysis", "minutes", settings.minutes),
        buffer_m=r.num(table, "analysis", "buffer_m", settings.buffer_m),
        snap_max_m=r.num(table, "analysis", "snap_max_m", settings.snap_max_m),
        access_leg=r.flag(table, "analysis", "access_leg", settings.access_leg),
        working_crs=r.crs(table, "analysis", "working_crs", settings.working_crs),
    )
    analysis = _read_profiles(r, table, analysis)
    basis = r.str_(table, "analysis", "share_basis", default="points")
    if basis in ("points", "people"):
        analysis = dataclasses.replace(analysis, share_basis=basis)  # type: ignore[arg-type]
    else:
        r.problems.append(f"{r.where('analysis', 'share_basis')}: {basis!r} is not one of "
                          "'points' (shares of residential points) or 'people' (of persons)")
    network = _read_network(r, doc.get("network"))
    units = _read_units(r, doc.get("units"), "units")
    districts = _read_units(r, doc["districts"], "districts") if "districts" in doc else None
    demand = _read_layer(r, "demand", doc["demand"], "demand") if "demand" in doc else None
    layers: dict[str, LayerSpec] = {}
    raw_layers = doc.get("layers", {})
    if not isinstance(raw_layers, dict) or not raw_layers:
        r.problems.append(f"{file.name} [layers]: define at least one facility layer")
        raw_layers = {}
    for key, spec in raw_layers.items():
        if key == "demand":
            r.problems.append(f"{file.name} [layers.demand]: 'demand' names the residential "
                              "points ([demand]); give the facility layer another key")
            continue
        if not re.fullmatch(r"[a-z][a-z0-9_]*", key):
            r.problems.append(
                f"{file.name} [layers.{key}]: layer keys are lower-case ascii words "
                "(they become column names), e.g. [layers.rehab_rental]"
            )
            continue
        layer = _read_layer(r, key, spec, f"layers.{key}")
        if layer is not None:
            layers[key] = layer
    labels: dict[str, list[str]] = {}
    for key, layer in layers.items():
        labels.setdefault(layer.label, []).append(key)
    for label, keys in labels.items():
        if len(keys) > 1:
            r.problems.append(f"{file.name}: layers {', '.join(keys)} share the label "
                              f"{label!r}; the reports and map legends could not tell them "
                              "apart: give each its own label")
    map_table = doc.get("map", {})
    if not isinstance(map_table, dict):
        r.problems.append(f"{file.name} [map]: expected a table")
        map_table = {}
    r.known(map_table, "map", {"tiles", "tiles_attribution"})
    map_spec = MapSpec(
        tiles=r.str_(map_table, "map", "tiles", default="OpenStreetMap") or "OpenStreetMap",
        tiles_attribution=r.str_(map_table, "map", "tiles_attribution"),
    )
    if (map_spec.tiles.startswith(("http://", "https://"))
            and not map_spec.tiles_attribution):
        r.problems.append(f"{r.where('map', 'tiles_attribution')}: a tile URL needs its "
                          "attribution (the provider's licence requires it)")
    population = _read_population(r, doc.get("population"))
    scale = _read_scale(r, doc.get("scale", {}))
    targets = r.path(doc, "top", "targets", required=False, base=base)
    official = r.path(doc, "top", "official_names", required=False)
    if r.problems or network is None or units is None:
        listing = "\n  ".join(r.problems)
        msg = f"run config {file} has {len(r.problems)} problem(s):\n  {listing}"
        raise ConfigError(msg)
    return RunConfig(
        name=str(doc.get("name", file.stem)),
        source=Path(os.path.abspath(file)),  # noqa: PTH100
        network=network,
        units=units,
        layers=layers,
        analysis=analysis,
        districts=districts,
        demand=demand,
        targets=targets,
        official_names=official,
        map=map_spec,
        accept=accept,
        population=population,
        scale=scale,
    )


def _read_profiles(r: _Reader, table: dict[str, Any], analysis: AnalysisSpec) -> AnalysisSpec:
    """``[[analysis.profiles]]`` and ``verdict_profile``: the walking speeds of a run.

    The verdict profile's speed becomes ``walk_speed_kmh`` (giving both, different, is an
    error). Without profiles the analysis is as before: one speed.
    """
    raw = table.get("profiles")
    verdict = r.str_(table, "analysis", "verdict_profile")
    if raw is None:
        if verdict is not None:
            r.problems.append(f"{r.where('analysis', 'verdict_profile')}: names a profile, but "
                              "no [[analysis.profiles]] are defined")
        return analysis
    if not isinstance(raw, list) or not raw:
        r.problems.append(f"{r.where('analysis', 'profiles')}: expected [[analysis.profiles]] "
                          "tables, each with id and speed_mps or speed_kmh")
        return analysis
    section = "analysis.profiles"
    profiles: list[WalkProfile] = []
    for item in raw:
        if not isinstance(item, dict):
            r.problems.append(f"{r.file.name} [[{section}]]: expected a table")
            continue
        r.known(item, section, {"id", "speed_mps", "speed_kmh", "label"})
        pid = r.str_(item, section, "id", required=True)
        if pid is not None and not re.fullmatch(r"[a-z][a-z0-9_]*", pid):
            r.problems.append(f"{r.where(section, 'id')}: {pid!r} is not a lower-case ascii "
                              "word (it suffixes column names), e.g. \"elderly\"")
            pid = None
        if ("speed_mps" in item) == ("speed_kmh" in item):
            r.problems.append(f"{r.file.name} [[{section}]] {pid!r}: give speed_mps or "
                              "speed_kmh (one of them)")
            continue
        speed = (r.num(item, section, "speed_mps", 1.0) * 3.6 if "speed_mps" in item
                 else r.num(item, section, "speed_kmh", 4.0))
        if pid is not None:
            profiles.append(WalkProfile(pid, speed, r.str_(item, section, "label",
                                                            default=pid) or pid))
    ids = [p.id for p in profiles]
    for dup in sorted({i for i in ids if ids.count(i) > 1}):
        r.problems.append(f"{r.file.name} [[{section}]]: profile id {dup!r} is used twice")
    if not profiles:
        return analysis
    chosen = verdict or profiles[0].id
    match = [p for p in profiles if p.id == chosen]
    if not match:
        r.problems.append(f"{r.where('analysis', 'verdict_profile')}: {chosen!r} is not one of "
                          f"the profiles {ids}")
        return analysis
    speed = match[0].speed_kmh
    if "walk_speed_kmh" in table and abs(analysis.walk_speed_kmh - speed) > 1e-9:
        r.problems.append(f"{r.where('analysis', 'walk_speed_kmh')}: {analysis.walk_speed_kmh} "
                          f"differs from the verdict profile {chosen!r} ({speed:g} km/h); "
                          "remove walk_speed_kmh (the verdict profile sets it)")
    return dataclasses.replace(analysis, walk_speed_kmh=speed, profiles=tuple(profiles),
                               verdict_profile=chosen)


def _read_population(r: _Reader, table: Any) -> PopulationSpec | None:
    """``[population]``: a population table per district or 街镇 (CSV)."""
    if table is None:
        return None
    if not isinstance(table, dict):
        r.problems.append(f"{r.file.name} [population]: expected a table")
        return None
    r.known(table, "population", {"path", "name_field", "unit", "column", "encoding"})
    path = r.path(table, "population", "path")
    name_field = r.str_(table, "population", "name_field", required=True)
    unit = r.str_(table, "population", "unit", default="district") or "district"
    if unit not in ("district", "jiezhen"):
        r.problems.append(f"{r.where('population', 'unit')}: {unit!r} is not \"district\" "
                          "or \"jiezhen\"")
        unit = "district"
    if path is None or name_field is None:
        return None
    return PopulationSpec(path=path, name_field=name_field,
                          unit=unit,  # type: ignore[arg-type]
                          column=r.str_(table, "population", "column"),
                          encoding=r.str_(table, "population", "encoding",
                                          default="utf-8") or "utf-8")
