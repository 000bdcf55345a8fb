"""Run configuration: which network, units, demand and facility layers a run uses.

A run is described by a TOML file, so that a new run or a new facility layer needs a file,
not code. Paths may use ``${VARIABLE}`` (for example ``${COVERAGE15_DATA}``); relative paths are
resolved against ``data_dir``, and ``data_dir`` and ``targets`` against the config file's folder.
:func:`load_config` reads and checks the whole file, collecting every problem before raising one
:class:`~coverage15.ConfigError`.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import tomllib
from pathlib import Path
from typing import Any

import pyproj

from coverage15 import settings
from coverage15._errors import ConfigError
from coverage15.inputs._sql import check_table_name, check_url
from coverage15.inputs.specs import (
    NETWORK_SOURCES,
    NETWORK_TYPES,
    ROLES,
    AnalysisSpec,
    LayerSpec,
    MapSpec,
    NetworkSpec,
    PopulationSpec,
    Role,
    RunConfig,
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
    "UnitSpec",
    "load_config",
    "read_toml",
]

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _expand(text: str, where: str, problems: list[str], *, as_path: bool = False) -> str:
    """Substitute ``${VAR}`` from the environment.

    In a path, a variable that starts it and holds a relative path is taken relative to the
    working directory (as the shell that set it would), not to the config file.
    """

    def repl(match: re.Match[str]) -> str:
        name = match.group(1)
        value = os.environ.get(name)
        if value is None:
            problems.append(
                f"{where}: environment variable {name} is not set "
                f"(set it to the data folder, e.g. export {name}=../shared/data/shanghai)"
            )
            return match.group(0)
        if as_path and match.start() == 0:
            return os.path.abspath(os.path.expanduser(value))  # noqa: PTH100, PTH111
        return value

    return _VAR.sub(repl, text)


class _Reader:
    """Read typed values out of a TOML table, collecting problems instead of raising."""

    def __init__(self, file: Path, base: Path, data_dir: Path) -> None:
        self.file = file
        self.base = base
        self.data_dir = data_dir
        self.problems: list[str] = []

    def where(self, section: str, key: str) -> str:
        return f"{self.file.name} [{section}] {key}"

    def str_(self, table: dict[str, Any], section: str, key: str, *, required: bool = False,
             default: str | None = None) -> str | None:
        value = table.get(key, default)
        if value is None:
            if required:
                self.problems.append(f"{self.where(section, key)}: missing (required)")
            return None
        if not isinstance(value, str):
            self.problems.append(f"{self.where(section, key)}: expected text, got {value!r}")
            return None
        return value

    def num(self, table: dict[str, Any], section: str, key: str, default: float,
            *, positive: bool = True) -> float:
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problems.append(f"{self.where(section, key)}: expected a number, got {value!r}")
            return default
        if positive and value <= 0:
            self.problems.append(f"{self.where(section, key)}: must be > 0, got {value!r}")
            return default
        return float(value)

    def flag(self, table: dict[str, Any], section: str, key: str, default: bool) -> bool:
        value = table.get(key, default)
        if not isinstance(value, bool):
            self.problems.append(f"{self.where(section, key)}: expected true or false (no "
                                 f"quotes), got {value!r}")
            return default
        return value

    def known(self, table: Any, section: str, keys: set[str]) -> None:
        """Report keys of ``table`` that are not in ``keys`` (typos must not pass silently)."""
        if not isinstance(table, dict):
            return
        for unknown in sorted(set(table) - keys):
            hint = difflib.get_close_matches(unknown, sorted(keys), n=1)
            also = f"; did you mean {hint[0]!r}?" if hint else ""
            where = (f"{self.file.name} {unknown!r}" if section == "top"
                     else self.where(section, unknown))
            self.problems.append(f"{where}: unknown key (known: {', '.join(sorted(keys))}){also}")

    def crs(self, table: dict[str, Any], section: str, key: str, default: str) -> str:
        """A projected CRS in metres (lengths, buffers and areas are computed in it)."""
        text = self.str_(table, section, key, default=default) or default
        try:
            crs = pyproj.CRS.from_user_input(text)
        except pyproj.exceptions.CRSError:
            self.problems.append(f"{self.where(section, key)}: unknown CRS {text!r}")
            return default
        unit = crs.axis_info[0].unit_name if crs.axis_info else ""
        if not crs.is_projected or unit not in ("metre", "meter"):
            self.problems.append(f"{self.where(section, key)}: {text!r} is not a projected CRS "
                                 f"in metres (e.g. the UTM zone: EPSG:32651 for Shanghai)")
            return default
        return text

    def path(self, table: dict[str, Any], section: str, key: str, *, required: bool = True,
             base: Path | None = None) -> Path | None:
        text = self.str_(table, section, key, required=required)
        if text is None:
            return None
        expanded = _expand(text, self.where(section, key), self.problems, as_path=True)
        candidate = Path(expanded).expanduser()
        if not candidate.is_absolute():
            candidate = (base or self.data_dir) / candidate
        return candidate


def _read_layer(r: _Reader, key: str, table: dict[str, Any], section: str) -> LayerSpec | None:
    if not isinstance(table, dict):
        r.problems.append(f"{r.file.name} [{section}]: expected a table")
        return None
    known = {
        "label", "path", "role", "crs", "x", "y", "filter", "name_field", "id_field", "layer",
        "exclude_points", "encoding", "unit_field", "database", "table", "sql", "osm_tags",
        "place", "colour", "weight_field",
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


def _read_network(r: _Reader, table: Any) -> NetworkSpec | None:
    if not isinstance(table, dict):
        r.problems.append(f"{r.file.name} [network]: missing or not a table")
        return None
    r.known(table, "network", {"source", "path", "place", "bbox", "network_type"})
    source = r.str_(table, "network", "source", default="osm_file") or "osm_file"
    if source not in NETWORK_SOURCES:
        r.problems.append(f"{r.where('network', 'source')}: {source!r} not in {NETWORK_SOURCES}")
        return None
    path = None
    if source in ("osm_file", "graphml", "polygon"):
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
    return NetworkSpec(
        source=source,
        path=path,
        place=place,
        bbox=bbox,
        network_type=network_type,
    )


def read_toml(file: Path, what: str) -> dict[str, Any]:
    """The TOML document in ``file``; a :class:`ConfigError` naming ``what`` if it is not one.

    Not UTF-8 (e.g. saved as GB18030) and invalid TOML get their own messages.
    """
    try:
        return tomllib.loads(file.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        msg = (f"{what} {file}: not UTF-8 ({exc}); save it as UTF-8 (e.g. from GB18030: "
               "iconv -f GB18030 -t UTF-8)")
        raise ConfigError(msg) from exc
    except tomllib.TOMLDecodeError as exc:
        msg = f"{what} {file}: not valid TOML ({exc})"
        raise ConfigError(msg) from exc


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

    base = file.resolve().parent
    r = _Reader(file, base, base)
    data_dir_text = r.str_(doc, "top", "data_dir", default=".") or "."
    data_dir = Path(_expand(data_dir_text, r.where("top", "data_dir"), r.problems,
                            as_path=True)).expanduser()
    r.data_dir = data_dir if data_dir.is_absolute() else base / data_dir

    r.known(doc, "top", {"name", "data_dir", "targets", "official_names", "analysis",
                         "network", "units", "districts", "demand", "layers", "map", "population"})
    table = doc.get("analysis", {})
    if not isinstance(table, dict):
        r.problems.append(f"{file.name} [analysis]: expected a table")
        table = {}
    r.known(table, "analysis", {"walk_speed_kmh", "minutes", "buffer_m", "snap_max_m",
                                "access_leg", "working_crs", "profiles", "verdict_profile"})
    analysis = AnalysisSpec(
        walk_speed_kmh=r.num(table, "analysis", "walk_speed_kmh", settings.walk_speed_kmh),
        minutes=r.num(table, "analysis", "minutes", settings.minutes),
        buffer_m=r.num(table, "analysis", "buffer_m", settings.buffer_m),
        snap_max_m=r.num(table, "analysis", "snap_max_m", settings.snap_max_m),
        access_leg=r.flag(table, "analysis", "access_leg", settings.access_leg),
        working_crs=r.crs(table, "analysis", "working_crs", settings.working_crs),
    )
    analysis = _read_profiles(r, table, analysis)
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
    targets = r.path(doc, "top", "targets", required=False, base=base)
    official = r.path(doc, "top", "official_names", required=False)
    if r.problems or network is None or units is None:
        listing = "\n  ".join(r.problems)
        msg = f"run config {file} has {len(r.problems)} problem(s):\n  {listing}"
        raise ConfigError(msg)
    return RunConfig(
        name=str(doc.get("name", file.stem)),
        source=file.resolve(),
        network=network,
        units=units,
        layers=layers,
        analysis=analysis,
        districts=districts,
        demand=demand,
        targets=targets,
        official_names=official,
        map=map_spec,
        population=population,
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
