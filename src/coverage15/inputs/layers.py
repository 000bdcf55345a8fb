"""Read facility, demand and unit layers into WGS84 GeoDataFrames.

Every reader returns geometry in EPSG:4326 (the output CRS) with a small set of standard
columns, and sets aside unusable rows with a reason instead of dropping them silently.
Coordinates in GCJ-02 or BD-09 are converted with :mod:`.coords`; anything else goes
through pyproj. A layer without a coordinate system is an error, never a guess. Files are
read by :func:`read_table` (from :mod:`coverage15.inputs._files`, re-exported here).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyproj
import shapely

from coverage15 import settings
from coverage15._errors import Coverage15Error, CRSError, LayerError
from coverage15.inputs import coords
from coverage15.inputs._files import check_file, read_table
from coverage15.inputs._filter import evaluate_filter
from coverage15.inputs.config import LayerSpec, UnitSpec

__all__ = [
    "Layer",
    "check_file",
    "load_layer",
    "load_units",
    "polygonal_part",
    "read_table",
    "resolve_crs",
    "utm_crs_for",
]

log = logging.getLogger(__name__)

REJECTED_COLUMNS = ["layer", "source_row", "name", "reason", "src_x", "src_y"]
_NUMBER = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?"  # no leading zeros, signs or separators


@dataclass(frozen=True)
class Layer:
    """A loaded point layer.

    Attributes
    ----------
    spec : LayerSpec
        Where it came from.
    points : geopandas.GeoDataFrame
        Usable rows in EPSG:4326 with columns ``facility_id`` (stable id), ``name``, ``layer``,
        ``source_row`` (0-based row in the filtered source) and the source's other attributes.
    rejected : pandas.DataFrame
        Rows set aside, with columns ``layer``, ``source_row``, ``name``, ``reason``,
        ``src_x``, ``src_y``.
    n_source : int
        Rows selected by the filter, before rejection (``len(points) + len(rejected)``).
    """

    spec: LayerSpec
    points: gpd.GeoDataFrame
    rejected: pd.DataFrame
    n_source: int

    def set_aside_counts(self) -> pd.Series:
        """Rows set aside per kind of reason, most first.

        A reason that names another row (``duplicate of source row 12``) or an id counts
        under its kind (``duplicate of an earlier row``, ``duplicate id``); each row's own
        reason stays in :attr:`rejected`.
        """
        kinds = (self.rejected["reason"].astype(str)
                 .str.replace(r"^duplicate id .*", "duplicate id (seen on an earlier row)",
                              regex=True)
                 .str.replace(r"source row \d+", "an earlier row", regex=True))
        counts: pd.Series = kinds.value_counts()
        return counts


def resolve_crs(text: str, *, where: str) -> str:
    """Normalise a CRS name: ``gcj02``/``bd09`` or a pyproj-readable CRS as ``EPSG:xxxx``.

    Parameters
    ----------
    text
        The declared CRS.
    where
        What declared it, for the error message.

    Returns
    -------
    str
        ``"gcj02"``, ``"bd09"`` or an authority string such as ``"EPSG:4326"``.

    Raises
    ------
    CRSError
        When the text names no known CRS.
    """
    key = text.strip().lower().replace("-", "").replace("_", "")
    if key in ("gcj02", "gcj", "mars"):
        return "gcj02"
    if key in ("bd09", "bd09ll", "baidu"):
        return "bd09"
    if key in ("wgs84", "wgs"):
        return "EPSG:4326"
    try:
        crs = pyproj.CRS.from_user_input(text)
    except pyproj.exceptions.CRSError as exc:
        msg = (
            f"{where}: unknown coordinate system {text!r}; use 'gcj02', 'bd09' or an EPSG "
            "code such as 'EPSG:4326'"
        )
        raise CRSError(msg) from exc
    auth = crs.to_authority()
    return f"{auth[0]}:{auth[1]}" if auth else crs.to_wkt()


def utm_crs_for(gdf: gpd.GeoDataFrame) -> str:
    """Return the UTM zone CRS (``EPSG:326xx``/``327xx``) for the extent of a layer."""
    estimate = gdf.estimate_utm_crs()
    auth = estimate.to_authority()
    return f"{auth[0]}:{auth[1]}" if auth else estimate.to_wkt()


def _apply_filter(frame: pd.DataFrame, spec: LayerSpec) -> pd.DataFrame:
    if not spec.filter:
        return frame
    # Compare numbers written as text (CSV) with numbers in the expression.
    typed = frame.copy()
    for column in typed.columns:
        if column != "geometry":
            numbers = _plain_numbers(typed[column])
            if numbers is None and not _all_text(typed[column]):  # e.g. JSON [6, "6", 4]
                converted = pd.to_numeric(typed[column], errors="coerce")
                if converted.notna().sum() == typed[column].notna().sum():
                    numbers = converted
            if numbers is not None:
                typed[column] = numbers
    try:  # parsed and evaluated by coverage15 itself: pandas.eval would run Python (@name)
        mask = evaluate_filter(spec.filter, typed, text=frame,
                               where=f"layer {spec.key!r} ({spec.source_name})")
    except Coverage15Error:
        raise
    except Exception as exc:
        msg = (
            f"layer {spec.key!r} ({spec.source_name}): filter {spec.filter!r} failed ({exc}); "
            f"columns are {[c for c in frame.columns if c != 'geometry']}"
        )
        raise LayerError(msg) from exc
    if isinstance(mask, pd.Series) and isinstance(mask.dtype, pd.BooleanDtype):
        mask = mask.fillna(False).astype(bool)  # a blank number matches no comparison
    if not isinstance(mask, pd.Series) or mask.dtype != bool:
        msg = f"layer {spec.key!r}: filter {spec.filter!r} must give true/false for each row"
        raise LayerError(msg)
    if len(frame) and not mask.any():
        msg = (f"layer {spec.key!r} ({spec.source_name}): filter {spec.filter!r} matches none "
               f"of the {len(frame):,} rows; check the column's values (numbers are compared "
               "as numbers: agencyType == 6, not '6')")
        raise LayerError(msg)
    return frame.loc[mask.to_numpy()]


def _require_columns(frame: pd.DataFrame, columns: list[str | None], what: str) -> None:
    missing = [c for c in columns if c is not None and c not in frame.columns]
    if missing:
        have = [c for c in frame.columns if c != "geometry"]
        msg = f"{what}: column(s) {missing} not found; the file has {have}"
        raise LayerError(msg)


def _numbers(raw: pd.Series) -> npt.NDArray[np.float64]:
    """Cells as numbers, NaN where empty or not a number, as ``pd.to_numeric(errors="coerce")``.

    Arrow's strict parse first (a tenth of the time on 200,000 rows, the same values); a
    column with any cell it refuses (``" 2"``, ``"1_0"``, text) goes to pandas', which decides.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        parsed = pc.cast(pa.array(raw, from_pandas=True), pa.float64())
        return np.asarray(parsed.to_numpy(zero_copy_only=False), dtype=float)
    except (pa.ArrowException, TypeError, ValueError):
        return np.asarray(pd.to_numeric(raw, errors="coerce"), dtype=float)


def _points_from_columns(
    frame: pd.DataFrame, spec: LayerSpec, crs: str
) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    assert spec.x is not None
    assert spec.y is not None
    raw_x = frame[spec.x]
    raw_y = frame[spec.y]
    x, y = _numbers(raw_x), _numbers(raw_y)
    blank = raw_x.isna().to_numpy() | raw_y.isna().to_numpy()
    blank |= (raw_x.astype(str).str.strip() == "").to_numpy()
    blank |= (raw_y.astype(str).str.strip() == "").to_numpy()
    reason = np.full(len(frame), "", dtype=object)
    reason[~np.isfinite(x) | ~np.isfinite(y)] = "non-numeric coordinates"
    reason[blank] = "missing coordinates"
    geographic = crs in coords.CHINA_SYSTEMS or pyproj.CRS(crs).is_geographic
    if geographic:
        swapped = (reason == "") & (np.abs(y) > 90) & (np.abs(y) <= 180) & (np.abs(x) <= 90)
        reason[swapped] = "longitude/latitude swapped (x holds a latitude, y a longitude)"
        bad = (reason == "") & ((np.abs(x) > 180) | (np.abs(y) > 90))
        reason[bad] = "coordinates out of range for longitude/latitude"
    for px, py in spec.exclude_points:
        on = (reason == "") & np.isclose(x, px, atol=1e-7) & np.isclose(y, py, atol=1e-7)
        reason[on] = f"on excluded point ({px}, {py}): a known geocoding fallback"
    if geographic:  # (0, 0) in the sea off Africa: a geocoder's "not found"
        reason[(reason == "") & (x == 0) & (y == 0)] = "at (0, 0): a failed geocode"
    ok = reason == ""
    if crs in coords.CHINA_SYSTEMS:
        lng, lat = coords.to_wgs84(x[ok], y[ok], crs)  # type: ignore[arg-type]
        geometry = gpd.points_from_xy(lng, lat, crs=settings.output_crs)
    else:
        geometry = gpd.GeoSeries(
            gpd.points_from_xy(x[ok], y[ok]), crs=crs
        ).to_crs(settings.output_crs).array
    kept = frame.loc[ok].drop(columns=[spec.x, spec.y])
    kept.insert(0, "src_x", x[ok])
    kept.insert(1, "src_y", y[ok])
    gdf = gpd.GeoDataFrame(kept, geometry=geometry, crs=settings.output_crs)
    rejected = pd.DataFrame(
        {"src_x": raw_x.loc[~ok].astype(str).to_numpy(), "src_y": raw_y.loc[~ok].astype(str)
         .to_numpy(), "reason": reason[~ok], "_pos": np.flatnonzero(~ok)}
    )
    return gdf, rejected


_OWN_SOURCE_COLUMNS = ("source_row", "src_x", "src_y")


def _rename_own_columns(frame: pd.DataFrame, spec: LayerSpec) -> tuple[pd.DataFrame, LayerSpec]:
    """Source columns named like columns coverage15 adds, renamed ``src_{name}``.

    E.g. a ``source_row`` column (coverage15's own ``coverage.gpkg`` read back in) becomes
    ``src_source_row``; a config field naming it follows the rename.
    """
    clash = [c for c in _OWN_SOURCE_COLUMNS if c in frame.columns]
    if not clash:
        return frame, spec
    renames: dict[str, str] = {}
    for column in clash:
        new = f"src_{column}"
        while new in frame.columns or new in renames.values():
            new = f"src_{new}"
        renames[column] = new
    def follow(column: str | None) -> str | None:
        return renames.get(column, column) if column is not None else None

    return frame.rename(columns=renames), dataclasses.replace(
        spec, x=follow(spec.x), y=follow(spec.y), name_field=follow(spec.name_field),
        id_field=follow(spec.id_field), unit_field=follow(spec.unit_field))


def _find_duplicates(
    gdf: gpd.GeoDataFrame, names: pd.Series, ids: pd.Series | None
) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Set aside repeated ids, and rows repeating an earlier row's name and point."""
    rows = gdf["source_row"].to_numpy()
    reason = np.full(len(gdf), "", dtype=object)
    if ids is not None:
        row_ids = ids.to_numpy()[rows]
        first = pd.Series(rows).groupby(row_ids).transform("first").to_numpy()
        repeated = first != rows
        reason[repeated] = [f"duplicate id {i!r} (first at source row {f})"
                            for i, f in zip(row_ids[repeated], first[repeated], strict=True)]
    xy = np.round(shapely.get_coordinates(gdf.geometry.to_numpy()), 7)
    key = pd.DataFrame({"name": names.to_numpy()[rows], "x": xy[:, 0], "y": xy[:, 1]})
    first = pd.Series(rows).groupby([key["name"], key["x"], key["y"]],
                                    dropna=False).transform("first")
    same = (first.to_numpy() != rows) & (reason == "")
    reason[same] = [f"duplicate of source row {f} (same name and point)"
                    for f in first.to_numpy()[same]]
    dup = reason != ""
    rejected = pd.DataFrame({"src_x": gdf["src_x"].to_numpy()[dup].astype(str)
                             if "src_x" in gdf else "",
                             "src_y": gdf["src_y"].to_numpy()[dup].astype(str)
                             if "src_y" in gdf else "",
                             "reason": reason[dup], "_pos": rows[dup]})
    return gdf.loc[~dup], rejected


def _read_source(spec: LayerSpec, what: str) -> pd.DataFrame:
    """The layer's rows from a file, a PostGIS table or query, or an OSM tag query."""
    if spec.database:
        from coverage15.inputs.postgis import read_postgis

        return read_postgis(spec.database, table=spec.table, sql=spec.sql)
    if spec.osm_tags:
        from coverage15.inputs.osm import feature_points

        assert spec.place is not None
        return feature_points(dict(spec.osm_tags), spec.place, online=settings.online)
    assert spec.path is not None
    return read_table(spec.path, encoding=spec.encoding, layer=spec.layer, what=what)


def load_layer(spec: LayerSpec, *, frame: pd.DataFrame | None = None) -> Layer:
    """Load a facility or demand point layer as described by its spec.

    Parameters
    ----------
    spec
        The layer's configuration.
    frame
        The rows themselves (a DataFrame with ``spec.x``/``spec.y`` columns, or a
        GeoDataFrame) instead of the file, database or OSM query ``spec`` names.

    Returns
    -------
    Layer
        Usable points in EPSG:4326 and the rows set aside, each with a reason.

    Raises
    ------
    InputFileError, LayerError, CRSError
        When the file cannot be read, a named column is missing, or no CRS is known.
    """
    what = f"layer {spec.key!r}"
    frame = _read_source(spec, what) if frame is None else frame.copy()
    frame, spec = _rename_own_columns(frame, spec)
    _require_columns(frame, [spec.x, spec.y, spec.name_field, spec.id_field, spec.unit_field],
                     f"{what} ({spec.source_name})")
    frame = _apply_filter(frame, spec).reset_index(drop=True)
    frame.insert(0, "source_row", np.arange(len(frame)))
    has_geometry = isinstance(frame, gpd.GeoDataFrame) and spec.x is None
    not_point = 0
    if has_geometry:
        shapes = frame.geometry.to_numpy().copy()
        empty = shapely.is_missing(shapes) | shapely.is_empty(shapes)
        # NaN or infinite coordinates (GeoJSON may hold them): no place at all
        broken = ~empty & ~np.isfinite(shapely.bounds(shapes)).all(axis=1)
        empty |= broken
        # a polygon, line or multipoint row stands for one site: a point inside it
        other = ~empty & (shapely.get_type_id(shapes) != shapely.GeometryType.POINT)
        shapes[other] = shapely.point_on_surface(shapes[other])
        not_point = int(other.sum())
        gdf = frame.loc[~empty].copy()
        shapes = shapes[~empty]
        source_crs = frame.crs
        if spec.crs:
            declared = resolve_crs(spec.crs, where=what)
            if declared in coords.CHINA_SYSTEMS:
                xy = shapely.get_coordinates(shapes)  # one point per row by now
                lng, lat = coords.to_wgs84(xy[:, 0], xy[:, 1], declared)  # type: ignore[arg-type]
                shapes, source_crs = gpd.points_from_xy(lng, lat), settings.output_crs
            else:
                source_crs = declared
        if source_crs is None:
            msg = (f"{what} ({spec.source_name}): the source has no CRS; set "
                   "crs = \"EPSG:...\" in the config")
            raise CRSError(msg)
        source_geographic = (source_crs == settings.output_crs
                             or pyproj.CRS.from_user_input(source_crs).is_geographic)
        source_xy = shapely.get_coordinates(np.asarray(shapes, dtype=object))
        gdf = gpd.GeoDataFrame(gdf.drop(columns=gdf.geometry.name), geometry=list(shapes),
                               crs=source_crs).to_crs(settings.output_crs)
        # the same coordinate checks as a table's: finite, longitude and latitude in range
        lng, lat = shapely.get_x(gdf.geometry.to_numpy()), shapely.get_y(gdf.geometry.to_numpy())
        bad = ~np.isfinite(lng) | ~np.isfinite(lat) | (np.abs(lng) > 180) | (np.abs(lat) > 90)
        if source_geographic and len(source_xy) == len(gdf):
            bad |= (np.abs(source_xy[:, 0]) > 180) | (np.abs(source_xy[:, 1]) > 90)
        kept_rows = np.flatnonzero(~empty)
        reasons = np.where(empty, "empty geometry", "").astype(object)
        reasons[broken] = "non-finite coordinates (NaN or infinity)"
        reasons[kept_rows[bad]] = "coordinates out of range for longitude/latitude"
        gdf = gdf.loc[~bad]
        out = reasons != ""
        rejected = pd.DataFrame(
            {"src_x": "", "src_y": "", "reason": reasons[out], "_pos": np.flatnonzero(out)}
        )
    else:
        if spec.x is None or spec.y is None:
            msg = f"{what} ({spec.source_name}): a table needs x and y coordinate columns in config"
            raise LayerError(msg)
        if not spec.crs:
            msg = (
                f"{what} ({spec.source_name}): no crs given; say crs = \"gcj02\", \"bd09\" or "
                "\"EPSG:4326\" (coordinates from Chinese map providers are usually gcj02)"
            )
            raise CRSError(msg)
        crs = resolve_crs(spec.crs, where=what)
        gdf, rejected = _points_from_columns(pd.DataFrame(frame), spec, crs)

    names = (frame[spec.name_field].astype(str) if spec.name_field
             else pd.Series([f"{spec.key} {i}" for i in range(len(frame))]))
    names = names.where(names.str.strip() != "", None)  # a blank name is a missing name
    ids = (frame[spec.id_field].astype(str) if spec.id_field
           else pd.Series([f"{spec.key}-{i}" for i in range(len(frame))]))
    gdf, duplicates = _find_duplicates(gdf, names, ids if spec.id_field else None)
    rejected = pd.concat([rejected, duplicates], ignore_index=True)
    positions = gdf["source_row"].to_numpy()
    # a source column named like one of coverage15's own is kept as src_{name}, unless it is
    # the name or id field itself (whose values the name and facility_id columns hold)
    own = [c for c in ("facility_id", "name", "layer") if c in gdf.columns]
    used = {spec.name_field, spec.id_field}
    gdf = gdf.rename(columns={c: f"src_{c}" for c in own
                              if c not in used and f"src_{c}" not in gdf.columns})
    gdf = gdf.drop(columns=[c for c in own if c in gdf.columns])
    gdf.insert(0, "facility_id", ids.to_numpy()[positions])
    gdf.insert(1, "name", names.to_numpy()[positions])
    gdf.insert(2, "layer", spec.key)
    gdf = _numbers_as_numbers(gdf.reset_index(drop=True),
                              keep={spec.name_field, spec.id_field, spec.unit_field})
    rejected_rows = rejected["_pos"].to_numpy(dtype=int)
    rejected = pd.DataFrame(
        {
            "layer": spec.key,
            "source_row": rejected_rows,
            "name": names.to_numpy()[rejected_rows],
            "reason": rejected["reason"].to_numpy(),
            "src_x": rejected["src_x"].to_numpy(),
            "src_y": rejected["src_y"].to_numpy(),
        },
        columns=REJECTED_COLUMNS,
    )
    if len(rejected):
        log.info("%s: %d of %d rows set aside", what, len(rejected), len(frame))
    if not_point:
        gdf.attrs["not_point"] = not_point  # counted in the run's input checks
    return Layer(spec=spec, points=gdf, rejected=rejected, n_source=len(frame))


def _plain_numbers(column: pd.Series) -> pd.Series | None:
    """A text column as numbers, if every non-blank value is a plain decimal number.

    Plain: no leading zeros, sign or separators, and whole numbers of at most 15 digits, so
    that ``"0012"``, ``"+5"``, ``"1,200"`` and 19-digit ids keep the whole column as text
    (codes stay codes); decimals of any length are numbers.
    Whole numbers become nullable integers, others floats; blanks become missing. None when
    the column is not all text (a JSON column mixing numbers and text stays as read) or not
    all plain numbers.
    """
    if not pd.api.types.is_string_dtype(column.dtype):
        return None
    if not _all_text(column):
        return None  # numbers and text mixed (e.g. JSON): left exactly as read
    stripped = column.str.strip()
    present = stripped.notna() & (stripped != "")
    text = stripped[present]
    if not present.any() or not text.str.fullmatch(_NUMBER).all():
        return None
    numbers = pd.to_numeric(stripped.where(present), errors="coerce")
    if not text.str.contains(".", regex=False).any():
        if (text.str.len() > 15).any():  # more digits than a float keeps: an id
            return None
        return numbers.astype("Int64")
    return numbers.astype(float)


def _all_text(column: pd.Series) -> bool:
    """Whether every value of a column is text (or missing)."""
    return column.dtype != object or all(isinstance(v, str) for v in column.dropna())


def _numbers_as_numbers(gdf: gpd.GeoDataFrame, *, keep: set[str | None]) -> gpd.GeoDataFrame:
    """Text columns that hold only plain numbers (or blanks) as numbers (:func:`_plain_numbers`).

    CSV sources are read as text, so that codes such as ``"0012"`` keep their zeros. In a
    GeoPackage a GIS should still see ``beds`` or ``lng`` as numbers, to sort, filter and
    style by them. The columns in ``keep`` (name, id, unit fields) and coverage15's own stay
    as they are.
    """
    own = {"facility_id", "name", "layer", "source_row", gdf.geometry.name}
    for column in gdf.columns:
        if column not in own and column not in keep:
            numbers = _plain_numbers(gdf[column])
            if numbers is not None:
                gdf[column] = numbers
    return gdf


def load_units(spec: UnitSpec, *, what: str = "units",
               frame: gpd.GeoDataFrame | None = None) -> gpd.GeoDataFrame:
    """Load analysis unit polygons (街镇 or districts).

    Parameters
    ----------
    spec
        The unit layer's configuration.
    what
        Name of the input, for messages.
    frame
        The polygons themselves instead of the file ``spec.path`` names.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``unit`` (name), ``district`` (when configured) and polygon ``geometry`` in
        EPSG:4326; invalid polygons are repaired with ``make_valid``.
    """
    if frame is None:
        frame = read_table(spec.path, encoding=spec.encoding, layer=spec.layer, what=what)
    if not isinstance(frame, gpd.GeoDataFrame):
        msg = f"{what} {spec.path}: no geometry; use a polygon file (GeoJSON, GeoPackage...)"
        raise LayerError(msg)
    _require_columns(frame, [spec.name_field, spec.district_field], f"{what} {spec.path.name}")
    if spec.crs:
        frame = frame.set_crs(resolve_crs(spec.crs, where=what), allow_override=True)
    if frame.crs is None:
        msg = f"{what} {spec.path}: the file has no CRS; set crs = \"EPSG:...\" in the config"
        raise CRSError(msg)
    geometry = frame.geometry
    invalid = (~geometry.is_valid).to_numpy()
    if invalid.any():
        log.warning("%s: repaired %d invalid polygon(s)", what, int(invalid.sum()))
        geometry = geometry.make_valid()
        # make_valid may return collections with stray lines: keep the polygonal part
        geometry = gpd.GeoSeries(
            [polygonal_part(g) for g in geometry], index=geometry.index, crs=geometry.crs)
    raw = frame[spec.name_field]
    nameless = np.flatnonzero((raw.isna() | (raw.astype(str).str.strip() == "")).to_numpy())
    if len(nameless):
        msg = (f"{what} {spec.path.name}: {len(nameless)} polygon(s) have no "
               f"{spec.name_field!r} (rows {', '.join(map(str, nameless[:10]))}); every unit "
               "needs a name")
        raise LayerError(msg)
    names = raw.astype(str).str.strip()
    if spec.aliases:
        names = names.replace(dict(spec.aliases))
    districts = (frame[spec.district_field].astype(str).str.strip() if spec.district_field
                 else pd.Series("", index=frame.index))
    twice = pd.DataFrame({"d": districts, "n": names}).duplicated(keep=False).to_numpy()
    if twice.any():
        pairs = sorted({f"{d} {n}".strip() for d, n in zip(districts[twice], names[twice],
                                                             strict=True)})
        msg = (f"{what} {spec.path.name}: {', '.join(pairs[:10])} appear(s) more than once; "
               "each unit needs its own name within its district (merge the polygons, or "
               "rename one with [units] aliases)")
        raise LayerError(msg)
    units = gpd.GeoDataFrame(
        {
            "unit": names.to_numpy(),
            "district": districts.to_numpy(),
            "repaired": invalid,
        },
        geometry=geometry.to_numpy(),
        crs=frame.crs,
    ).to_crs(settings.output_crs)
    empty = units.geometry.is_empty | units.geometry.isna()
    if empty.all():
        msg = f"{what} {spec.path}: every geometry is empty"
        raise LayerError(msg)
    if empty.any():
        log.warning("%s: dropped %d empty geometries (%s)", what, int(empty.sum()),
                    ", ".join(units.loc[empty, "unit"].head(5)))
    units.attrs["dropped_empty"] = list(units.loc[empty, "unit"])
    kept = units.loc[~empty].reset_index(drop=True)
    kept.attrs["dropped_empty"] = list(units.loc[empty, "unit"])
    return kept


def polygonal_part(geometry: shapely.Geometry) -> shapely.Geometry:
    """The polygons of a geometry, dropping lines and points.

    ``make_valid`` and clipping can turn a polygon into a collection with stray lines or
    points; those carry no area and break polygon-only consumers (GeoPackage polygon
    layers, map fills).
    """
    if geometry is None or geometry.geom_type in ("Polygon", "MultiPolygon"):
        return geometry
    parts = shapely.get_parts(geometry)
    keep = parts[np.isin(shapely.get_type_id(parts), (3, 6))]  # Polygon, MultiPolygon
    return shapely.union_all(keep) if len(keep) else shapely.Polygon()
