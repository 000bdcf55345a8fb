"""Result formats beyond the default GeoPackage: GeoParquet, Excel, PostGIS.

* :func:`write_geoparquet` — one ``.parquet`` file per output layer (GeoParquet 1.x, CRS kept).
* :func:`write_excel` — the gap report as a workbook civil-affairs staff open: a summary sheet
  (districts and citywide rules) and one sheet per district, with Chinese column labels.
* :func:`write_postgis` / :func:`read_postgis` — results to, and layers from, a
  PostgreSQL/PostGIS database given as ``postgresql://user:pass@host:port/db``.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import pandas as pd
import pyogrio.errors

from coverage15._errors import OutputError
from coverage15.inputs._sql import check_identifier, mask_url, scrub
from coverage15.inputs.postgis import connect, driver_message
from coverage15.outputs._safe_text import neutralise_cell, neutralise_frame
from coverage15.reach.gaps import (
    COMPLETE_ZH,
    NETWORK_ZH,
    bool_columns_to_text,
    column_label_zh,
)

if TYPE_CHECKING:
    from coverage15.result import Result

__all__ = [
    "check_postgis_names",
    "gis_ready",
    "output_layers",
    "write_csv",
    "write_excel",
    "write_geopackage",
    "write_geoparquet",
    "write_postgis",
]

log = logging.getLogger(__name__)

_SHEET_BAD = re.compile(r"[\[\]:*?/\\]")


def output_layers(result: Result) -> dict[str, gpd.GeoDataFrame]:
    """Every spatial output of a run, by layer name, in EPSG:4326.

    Booleans with missing values become 0/1 integers with NULL, which every format and GIS
    reads.
    """
    layers: dict[str, gpd.GeoDataFrame] = {
        "service_areas": result.service_areas,
        "service_area_union": _unions_by_profile(result),
        "units": result.units_gdf(),
        "facilities": _facilities_table(result),
    }
    if result.demand is not None:
        layers["demand"] = result.demand
    if result.district_areas is not None and result.district_report is not None:
        # each district as the union of its 街镇: the area its figures describe
        shapes = result.district_areas.set_index("unit").geometry
        layers["districts"] = gpd.GeoDataFrame(
            result.district_report.copy(),
            geometry=shapes.reindex(result.district_report["district"]).to_numpy(),
            crs=result.district_areas.crs)
    misplaced = result.misplaced
    if misplaced is not None and len(misplaced):
        # the location check's rows, where they landed: flagged ones count there, rows set
        # aside are also in rejected.csv
        layers["location_check"] = gpd.GeoDataFrame(
            misplaced.drop(columns=["lon", "lat"]).reset_index(drop=True).astype(
                {"source_row": "Int64", "distance_m": float}),
            geometry=gpd.points_from_xy(misplaced["lon"], misplaced["lat"]), crs="EPSG:4326")
    return {name: gis_ready(frame) for name, frame in layers.items()}


def _unions_by_profile(result: Result) -> gpd.GeoDataFrame:
    """Each layer's union of service areas at each walking profile, verdict profile first."""
    a = result.config.analysis
    rows = []
    for key, union in result.unions.items():
        others = result.profile_unions.get(key, {})
        for position, profile in enumerate(a.walk_profiles):
            shape = union if position == 0 else others.get(profile.id)
            if shape is None:
                continue
            spec = result.config.layers.get(key)
            rows.append({"layer": key, "label": spec.label if spec else key,
                         "profile": profile.id, "profile_label": profile.label,
                         "speed_mps": round(profile.speed_mps, 3), "minutes": a.minutes,
                         "limit_m": round(profile.limit_m(a.minutes), 1),
                         "verdict": position == 0,
                         "area_km2": float(shape.area) / 1e6, "geometry": shape})
    columns = ["layer", "label", "profile", "profile_label", "speed_mps", "minutes",
               "limit_m", "verdict", "area_km2", "geometry"]
    frame = gpd.GeoDataFrame(pd.DataFrame(rows, columns=columns), geometry="geometry",
                             crs=result.network.crs)
    return frame.to_crs("EPSG:4326")


FACILITY_COLUMNS = ["facility_id", "name", "layer", "jiezhen", "district", "snap_m",
                    "on_network", "reach_m"]


def _facilities_table(result: Result) -> gpd.GeoDataFrame:
    """All layers' facilities in one table: coverage15's columns, then each source's own.

    A source column that only some layers have is empty (NULL) for the others'. (One that
    holds numbers in one layer and text in another becomes text in :func:`gis_ready`.)
    """
    frames = []
    for f in result.facilities.values():
        frame = pd.DataFrame(f.drop(columns=f.geometry.name))
        for column in frame.columns:  # whole numbers stay whole where a layer lacks them
            if column not in FACILITY_COLUMNS and frame[column].dtype.kind in "iu":
                frame[column] = frame[column].astype("Int64")
        frames.append(frame.assign(geometry=f.geometry.to_numpy()))
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=[*FACILITY_COLUMNS, "geometry"])
    source = [c for c in table.columns if c not in FACILITY_COLUMNS and c != "geometry"]
    return gpd.GeoDataFrame(table[[*FACILITY_COLUMNS, *source, "geometry"]],
                            geometry="geometry", crs="EPSG:4326")


def gis_ready(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """A copy that every GIS format takes and every GIS reads.

    - (Nullable) booleans become 0/1 integers with NULL.
    - A column mixing numbers and text (a JSON source) becomes text.
    - Column names are made unique regardless of case (``District`` after ``district``
      becomes ``District_2``: a GeoPackage cannot hold both), and a source column ``fid``
      (the GeoPackage's own row key, found in QGIS exports) becomes ``src_fid``, and ``geom``
      (its geometry column) ``src_geom``; a new name never takes one the frame already has.
    """
    out = frame.copy()
    geometry = out.geometry.name
    for column in out.columns:
        if isinstance(out[column].dtype, pd.BooleanDtype) or out[column].dtype == bool:
            out[column] = out[column].astype("Int8")
        elif (out[column].dtype == object and column != geometry
              and len({type(v) for v in out[column].dropna()}) > 1):
            out[column] = out[column].map(_as_text)
    # names as they are where possible; a clash gets the first free "_2", "_3"... suffix
    given = {str(c).lower() for c in out.columns}
    taken = {str(geometry).lower()}  # the geometry keeps its name
    names = {}
    for column in out.columns:
        if column == geometry:
            continue
        name = str(column)
        if name.lower() in _GPKG_OWN:  # the GeoPackage's own row key and geometry column
            name = f"src_{name}"
        base, i = name, 2
        while name.lower() in taken or (name != str(column) and name.lower() in given):
            name, i = f"{base}_{i}", i + 1
        taken.add(name.lower())
        names[column] = name
    return out.rename(columns=names)


_GPKG_OWN = {"fid", "geom"}


def _as_text(value: object) -> str | None:
    """A value of a column mixing types as text (missing stays missing)."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)


def write_csv(table: pd.DataFrame, path: Path) -> Path:
    """Write a table as UTF-8 CSV, Unix line ends, booleans as ``true``/``false``/empty.

    The file starts with a byte-order mark, so Excel (which otherwise assumes the local code
    page) shows the Chinese names when the file is double-clicked; pandas, QGIS and
    coverage15 itself skip the mark. The same table always gives the same bytes, whatever the
    platform.

    Text a spreadsheet would take as a formula (a cell or column name starting with ``=``,
    ``+``, ``-``, ``@``, a tab or a carriage return) is written with a ``'`` in front; numbers
    are written as they are (see :mod:`~coverage15.outputs._safe_text`).
    """
    neutralise_frame(bool_columns_to_text(table)).to_csv(
        path, index=False, encoding="utf-8-sig", lineterminator="\n")
    return path


def write_geopackage(layers: Mapping[str, gpd.GeoDataFrame], path: Path) -> Path:
    """Write each layer into one GeoPackage (layers as :func:`gis_ready` makes them)."""
    for name, frame in layers.items():
        try:
            frame.to_file(path, layer=name, driver="GPKG", engine="pyogrio")
        except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
            # GDAL's write errors (e.g. the disk is full) as the OSError they are
            msg = f"{path.name}, layer {name}: {exc}"
            raise OSError(msg) from exc
    return path


def write_geoparquet(layers: Mapping[str, gpd.GeoDataFrame], folder: Path) -> list[Path]:
    """Write each layer to ``folder/{name}.parquet`` (GeoParquet)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, frame in layers.items():
        path = folder / f"{name}.parquet"
        frame.to_parquet(path, index=False)
        paths.append(path)
    return paths


def _sheet_name(text: str, used: set[str]) -> str:
    name = _SHEET_BAD.sub("_", text)[:31] or "sheet"
    base, i = name, 2
    while name in used:
        name = f"{base[:28]}~{i}"
        i += 1
    used.add(name)
    return name


SHARE_FORMAT = "[<0.01]0.0#%;[>0.99]0.0#%;0%"


def write_excel(result: Result, path: Path) -> Path:
    """Write the gap report as an Excel workbook with Chinese column labels.

    Sheets: ``汇总`` (one row per district, then the citywide rules), then one sheet per
    district with its 街镇 rows, then ``说明`` (column names and their labels).

    Every cell is a value, never a formula: text starting with ``=``, ``+``, ``-``, ``@``, a
    tab or a carriage return gets a ``'`` in front and is stored as text; numbers stay
    numbers (see :mod:`~coverage15.outputs._safe_text`).

    Parameters
    ----------
    result
        A finished run.
    path
        The ``.xlsx`` file to write.
    """
    layer_labels = {k: s.label for k, s in result.config.layers.items()}
    rule_labels = {r.id: r.label for r in result.rules}
    profiles = {p.id: f"{p.label} {p.speed_mps:.2f} m/s" for p in result.check.profiles}

    def zh(frame: pd.DataFrame) -> pd.DataFrame:
        shown = bool_columns_to_text(frame).replace({"true": "是", "false": "否"})
        if "network" in shown:
            shown["network"] = shown["network"].map(NETWORK_ZH).fillna(shown["network"])
        if "network_complete" in shown:
            shown["network_complete"] = (shown["network_complete"].map(COMPLETE_ZH)
                                         .fillna(shown["network_complete"]))
        shown = shown.drop(columns=["reason"], errors="ignore")  # 原因 (reason_zh) is shown
        return neutralise_frame(shown.rename(
            columns={c: column_label_zh(c, layer_labels, rule_labels, profiles)
                     for c in frame.columns}))

    used: set[str] = set()
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        summary = (result.district_report if result.district_report is not None
                   else result.gap_report.groupby("district", as_index=False).size())
        zh(summary).to_excel(writer, sheet_name=_sheet_name("汇总", used), index=False)
        citywide = pd.DataFrame(
            [{"规则": c.rule.label, "数值": c.value, "达标": "是" if c.passed else "否",
              "说明": c.reason_zh or c.reason} for c in result.check.citywide]
            + [{"规则": rid, "数值": None, "达标": "未评估",
                "说明": result.check.skipped_zh.get(rid, why)}
               for rid, why in result.check.skipped.items()])
        if not citywide.empty:
            neutralise_frame(citywide).to_excel(writer, sheet_name="汇总", index=False,
                                                startrow=len(summary) + 2)
        for district, rows in result.gap_report.groupby("district", sort=True):
            zh(rows.drop(columns=["district"])).to_excel(
                writer, sheet_name=_sheet_name(str(district), used), index=False)
        legend = pd.DataFrame(
            [(c, column_label_zh(c, layer_labels, rule_labels, profiles))
             for c in result.gap_report.columns if c != "reason"], columns=["column", "说明"])
        neutralise_frame(legend).to_excel(writer, sheet_name=_sheet_name("说明", used),
                                          index=False)
        shares = {neutralise_cell(column_label_zh(c, layer_labels, rule_labels, profiles))
                  for c in (*result.gap_report.columns, *summary.columns)
                  if str(c).endswith("_share")}
        for sheet in writer.book.worksheets:
            sheet.freeze_panes = "B2"
            for row in sheet.iter_rows():  # text only, whatever slipped past: never a formula
                for cell in row:
                    if cell.data_type == "f":
                        cell.data_type = "s"
            for column in sheet.columns:
                width = max(len(str(c.value or "")) for c in column[:50])
                sheet.column_dimensions[column[0].column_letter].width = min(
                    max(8, width * 1.6), 60)
                if column[0].value in shares:  # 0–1 shares shown as percentages
                    for cell in column[1:]:  # decimals near 0 and 100 %: never a false 0 %
                        cell.number_format = SHARE_FORMAT
            if sheet.title not in ("汇总", "说明"):  # one table per sheet: filterable
                sheet.auto_filter.ref = sheet.dimensions
    return path


def write_postgis(layers: Mapping[str, gpd.GeoDataFrame], url: str, *,
                  schema: str = "public", prefix: str = "coverage15_") -> list[str]:
    """Write each layer to a PostGIS table ``{schema}.{prefix}{name}``, replacing it.

    All tables are written in one transaction: readers never see a table half-written or a
    mix of two runs' tables, and an interrupted or failed write leaves the previous tables.
    ``schema``, ``prefix`` and each name are checked first (letters, digits, ``_``; see
    :func:`coverage15.inputs._sql.check_identifier`): a bad one is a :class:`ConfigError` before
    the database is touched.

    Returns
    -------
    list of str
        The table names written.
    """
    import sqlalchemy
    from sqlalchemy.schema import CreateSchema

    tables = check_postgis_names(layers, schema=schema, prefix=prefix)
    engine = connect(url)
    written = []
    doing = f"create schema {schema}"
    try:
        with engine.begin() as connection:  # PostgreSQL's DDL is transactional too
            # an existing schema needs no CREATE privilege on the database
            if not sqlalchemy.inspect(connection).has_schema(schema):
                connection.execute(CreateSchema(schema, if_not_exists=True))
            for frame, table in zip(layers.values(), tables, strict=True):
                doing = f"write {schema}.{table}"
                frame.to_postgis(table, connection, schema=schema, if_exists="replace",
                                 index=False)
                written.append(f"{schema}.{table}")
                log.info("wrote %d rows to %s.%s", len(frame), schema, table)
    except sqlalchemy.exc.SQLAlchemyError as exc:  # e.g. no privilege: one line, no traceback
        first = scrub(driver_message(exc), url)
        msg = (f"database {mask_url(url)}: cannot {doing} ({first}); no table was changed "
               "(docs/postgis.md lists the privileges needed)")
        raise OutputError(msg) from exc
    finally:
        engine.dispose()
    return written


def check_postgis_names(layers: Mapping[str, object] | list[str], *, schema: str,
                        prefix: str = "coverage15_") -> list[str]:
    """The table names :func:`write_postgis` would write, after checking every name.

    Raises a one-line :class:`ConfigError` for a schema, prefix or table name that is not a
    plain identifier (see :func:`coverage15.inputs._sql.check_identifier`).
    """
    check_identifier(schema, what="schema")
    if prefix:
        check_identifier(prefix, what="table prefix")
    return [check_identifier(f"{prefix}{name}", what=f"table for layer {name!r}")
            for name in layers]
