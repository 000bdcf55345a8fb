"""What a run is made of, as frozen dataclasses: layers, units, network, analysis, map.

:func:`coverage15.inputs.config.load_config` builds them from a TOML file; Python code may
build them directly (see :func:`coverage15.analyse`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from coverage15 import settings

__all__ = [
    "DEFAULT_AREA_MARGIN_M",
    "LOCATION_CHECKS",
    "NETWORK_SOURCES",
    "NETWORK_TYPES",
    "NETWORK_WAYS",
    "ROLES",
    "AnalysisSpec",
    "LayerSpec",
    "LocationCheck",
    "MapSpec",
    "NetworkSpec",
    "PopulationSpec",
    "Role",
    "RunConfig",
    "UnitSpec",
    "WalkProfile",
]

Role = Literal["centre", "station", "other"]
LocationCheck = Literal["flag", "set_aside", "off"]
LOCATION_CHECKS: tuple[str, ...] = ("flag", "set_aside", "off")
ROLES: tuple[str, ...] = ("centre", "station", "other")
NETWORK_SOURCES: tuple[str, ...] = ("osm_file", "pbf", "graphml", "place", "polygon", "bbox")
NETWORK_WAYS: tuple[str, ...] = ("streets", "walk")
DEFAULT_AREA_MARGIN_M = 1000.0
NETWORK_TYPES: tuple[str, ...] = ("walk", "all", "all_public", "bike", "drive",
                                  "drive_service")

@dataclass(frozen=True)
class LayerSpec:
    """Where a point layer comes from and how to read it.

    Attributes
    ----------
    key : str
        Short identifier used in column names (``centre``, ``meal_point``...).
    label : str
        Human (Chinese) label for reports and maps.
    path : Path
        File to read: CSV, JSON (list of records or GeoJSON), GeoJSON, GeoPackage, Shapefile
        or GeoParquet.
    role : {"centre", "station", "other"}
        The layer's part in the "1+N" rule.
    crs : str
        ``"gcj02"``, ``"bd09"`` or anything pyproj understands (``"EPSG:4326"``). For files
        that carry their own CRS, empty means "use the file's".
    x, y : str or None
        Coordinate columns of a table (numbers or strings of numbers).
    filter : str or None
        A pandas query selecting rows, e.g. ``"agencyType == 6"``.
    name_field, id_field : str or None
        Columns holding the facility name and a stable id (default: the row number).
    layer : str or None
        Layer name inside a multi-layer file (GeoPackage).
    exclude_points : tuple of (float, float)
        Coordinates (in the layer's own CRS) known to be geocoding fallbacks; rows on them
        are rejected with a reason.
    encoding : str
        Text encoding of CSV/JSON files.
    unit_field : str or None
        A column naming the 街镇 each row claims to be in; used to check that the declared
        CRS fits the data (points should land in the 街镇 they name).
    database, table, sql : str or None
        Read from PostgreSQL/PostGIS instead of a file: ``database`` is a
        ``postgresql://user:password@host:port/dbname`` URL, with a ``table``
        (``schema.table``) or an ``sql`` query.
    osm_tags : tuple of (str, str or bool)
        Read from OpenStreetMap instead (online, cached by ``coverage15 fetch``): features
        with these tags, e.g. ``{ social_facility = "outreach" }``, within ``place``.
    place : str or None
        Geocodable place name for ``osm_tags`` queries.
    colour : str or None
        The layer's colour on the maps (``"#rrggbb"``); default: the palette colour of the
        layer's place in the config (:data:`coverage15.outputs.maps.LAYER_COLOURS`).
    location_check : {"flag", "set_aside", "off"}
        What happens to a row whose point lands more than ``location_tolerance_m`` outside
        the 街镇 or district it names (in ``unit_field`` or in its name): reported
        (``"flag"``, the default), set aside with its reason, or not checked.
    location_tolerance_m : float
        How far outside the place it names a point may land (geocoding and boundary slack).
    """

    key: str
    label: str
    path: Path | None
    role: Role = "other"
    crs: str = ""
    x: str | None = None
    y: str | None = None
    filter: str | None = None
    name_field: str | None = None
    id_field: str | None = None
    layer: str | None = None
    exclude_points: tuple[tuple[float, float], ...] = ()
    encoding: str = "utf-8"
    unit_field: str | None = None
    database: str | None = field(default=None, repr=False)  # may hold a password
    table: str | None = None
    sql: str | None = None
    osm_tags: tuple[tuple[str, str | bool], ...] = ()
    place: str | None = None
    colour: str | None = None
    location_check: LocationCheck = "flag"
    location_tolerance_m: float = settings.location_tolerance_m
    weight_field: str | None = None

    @property
    def source_name(self) -> str:
        """Where the layer comes from, for messages."""
        if self.database:
            return f"table {self.table}" if self.table else "SQL query"
        if self.osm_tags:
            return f"OpenStreetMap {dict(self.osm_tags)} in {self.place}"
        return self.path.name if self.path else "a GeoDataFrame"


@dataclass(frozen=True)
class UnitSpec:
    """A polygon layer of analysis units (街镇 or districts).

    ``aliases`` renames units whose source name differs from the official one
    (e.g. OSM's 菊园街道 is officially 菊园新区).
    """

    path: Path
    name_field: str
    district_field: str | None = None
    crs: str = ""
    layer: str | None = None
    encoding: str = "utf-8"
    aliases: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class NetworkSpec:
    """Where the walking network comes from.

    ``source`` is ``"osm_file"`` (OSM XML), ``"graphml"`` (an osmnx GraphML file), or, online,
    ``"place"`` (a geocodable name), ``"polygon"`` (a polygon file) or ``"bbox"``; ``"pbf"``
    is an ``.osm.pbf`` extract read with pyosmium.

    ``ways`` is ``"streets"`` (streets from residential up; an OSM XML file: every way in it,
    as before) or ``"walk"`` (every way a pedestrian uses, the same filter for files and
    online queries). ``area`` clips a file to a study area: ``"units"`` (the union of the
    unit layer) or a polygon file; ``area_bbox`` a ``(west, south, east, north)`` box; both
    grown by ``area_margin_m`` so facilities just outside still count.
    """

    source: str
    path: Path | None = None
    place: str | None = None
    bbox: tuple[float, float, float, float] | None = None
    network_type: str = "walk"
    ways: str = "streets"
    area: str | Path | None = None
    area_bbox: tuple[float, float, float, float] | None = None
    area_margin_m: float = DEFAULT_AREA_MARGIN_M


@dataclass(frozen=True)
class WalkProfile:
    """A walking speed that shares and verdicts can be computed for.

    Attributes
    ----------
    id : str
        Lower-case ascii word: the suffix of the profile's report columns (``elderly`` →
        ``one_plus_n_share_elderly``).
    speed_kmh : float
        Walking speed (1.11 m/s = 4 km/h).
    label : str
        Human (Chinese) label, e.g. 老年.
    """

    id: str
    speed_kmh: float
    label: str = ""

    @property
    def speed_mps(self) -> float:
        """The speed in metres per second."""
        return self.speed_kmh / 3.6

    def limit_m(self, minutes: float) -> float:
        """Metres walked in ``minutes`` at this speed."""
        return self.speed_kmh * minutes * 1000.0 / 60.0


@dataclass(frozen=True)
class AnalysisSpec:
    """Walking budget and geometry options of a run.

    ``profiles`` (optional) are the walking speeds every walking rule and share is evaluated
    for; ``verdict_profile`` names the one whose results fill the unsuffixed columns and the
    verdicts (its speed is ``walk_speed_kmh``). ``pairs_limit_m`` is set by the analysis: the
    distances are computed once to the largest limit any profile and rule needs.
    ``share_basis`` says what the walking rules' verdicts judge: the share of residential
    ``"points"`` (default) or of ``"people"`` (the demand's weights; a rule is not evaluated
    without them).
    """

    walk_speed_kmh: float = settings.walk_speed_kmh
    minutes: float = settings.minutes
    buffer_m: float = settings.buffer_m
    snap_max_m: float = settings.snap_max_m
    access_leg: bool = settings.access_leg
    working_crs: str = settings.working_crs
    profiles: tuple[WalkProfile, ...] = ()
    verdict_profile: str = ""
    pairs_limit_m: float | None = None
    share_basis: Literal["points", "people"] = "points"

    @property
    def limit_m(self) -> float:
        """Walking distance reached in ``minutes`` at ``walk_speed_kmh``."""
        return self.walk_speed_kmh * self.minutes * 1000.0 / 60.0

    @property
    def reach_limit_m(self) -> float:
        """The distance the network search goes to (service areas are drawn at ``limit_m``)."""
        return max(self.limit_m, self.pairs_limit_m or 0.0)

    @property
    def walk_profiles(self) -> tuple[WalkProfile, ...]:
        """The profiles, verdict profile first (one built from ``walk_speed_kmh`` if none)."""
        if not self.profiles:
            return (WalkProfile(self.verdict_profile or "standard", self.walk_speed_kmh,
                                "标准"),)
        verdict = [p for p in self.profiles if p.id == self.verdict_profile] or [
            self.profiles[0]]
        return (verdict[0], *[p for p in self.profiles if p is not verdict[0]])


@dataclass(frozen=True)
class PopulationSpec:
    """A population table per unit (district or 街镇), to weigh residential points.

    ``unit`` says which units its rows are (``"district"`` or ``"jiezhen"``), ``name_field``
    the column naming them, ``column`` the count spread equally over the unit's residential
    points when they carry no weight of their own (an estimate, labelled so).
    """

    path: Path
    name_field: str
    unit: Literal["district", "jiezhen"] = "district"
    column: str | None = None
    encoding: str = "utf-8"


@dataclass(frozen=True)
class MapSpec:
    """Basemap of the run's maps.

    ``tiles`` is ``"OpenStreetMap"`` (default), another folium/xyzservices name or an XYZ URL
    template (then with ``tiles_attribution``), or ``"none"`` for no tiles (offline).
    """

    tiles: str = "OpenStreetMap"
    tiles_attribution: str | None = None


@dataclass(frozen=True)
class ScaleSpec:
    """``[scale]``: how a partitioned run (``coverage15 run --scheduler``) is split.

    ``workers``: worker processes of ``--scheduler local`` (default: the CPUs this process
    may use); ``partitions``: tiles (default: 4 per worker). ``--workers`` and
    ``--partitions`` override them; without ``--scheduler`` they are not used.
    """

    workers: int | None = None
    partitions: int | None = None


@dataclass(frozen=True)
class RunConfig:
    """Everything a run needs, read from a TOML file by :func:`load_config`."""

    name: str
    source: Path | None
    network: NetworkSpec
    units: UnitSpec
    layers: dict[str, LayerSpec]
    analysis: AnalysisSpec = field(default_factory=AnalysisSpec)
    districts: UnitSpec | None = None
    demand: LayerSpec | None = None
    targets: Path | None = None
    official_names: Path | None = None
    map: MapSpec = field(default_factory=MapSpec)
    accept: tuple[str, ...] = ()
    """Ids of problems accepted to go ahead (``[accept] warnings``; see ``docs/failure-modes``)."""
    population: PopulationSpec | None = None
    scale: ScaleSpec = field(default_factory=ScaleSpec)
