"""JSON views of evaluations for the page: table rows, before → after changes, GeoJSON."""

from __future__ import annotations

import math
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from coverage15.app.engine import Base, Evaluation, Site
from coverage15.reach.gaps import profile_failures

# --- JSON views ------------------------------------------------------------------------------


def _records(frame: pd.DataFrame | None) -> list[dict[str, Any]]:
    """The rows as dicts of plain values (:func:`_plain`), converted column by column."""
    if frame is None:
        return []
    if not len(frame.columns):
        return [{} for _ in range(len(frame))]
    names = [str(c) for c in frame.columns]
    columns = [_column(values) for _, values in frame.items()]
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]


def _column(values: pd.Series) -> list[Any]:
    """:func:`_plain` of every value, by numpy's or the array's own conversion where it can."""
    dtype = values.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "iub":
        plain: list[Any] = values.to_numpy().tolist()
        return plain
    if isinstance(dtype, np.dtype) and dtype.kind == "f":
        array = values.to_numpy()
        plain = array.tolist()
        for i in np.flatnonzero(np.isnan(array)):
            plain[i] = None
        return plain
    if isinstance(dtype, pd.BooleanDtype | pd.StringDtype):  # bool or str, missing: None
        return list(values.array.to_numpy(dtype=object, na_value=None))
    return [_plain(v) for v in values]


def _plain(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float | np.floating):
        return None if math.isnan(float(value)) else float(value)
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    return str(value)


def _flag(frame: pd.DataFrame) -> npt.NDArray[np.bool_]:
    flags: npt.NDArray[np.bool_] = frame["uncovered"].astype("boolean").fillna(False).to_numpy(
        bool)
    return flags


def rows(evaluation: Evaluation, table: str = "gap_report") -> list[dict[str, Any]]:
    """The records of an evaluation's ``gap_report`` or ``district_report``, made once."""
    found: list[dict[str, Any]] | None = evaluation.views.get(table)
    if found is None:
        found = _records(getattr(evaluation, table))
        evaluation.views[table] = found
    return found


def _changes(before: Evaluation, after: Evaluation) -> list[dict[str, Any]]:
    """Rows of the 街镇 table that changed: before → after, and newly pass/fail."""
    after_rows = {(r["district"], r["jiezhen"]): r for r in rows(after)}
    columns = [c for c in before.gap_report.columns if c.startswith("pass_")
               or (c.endswith(("_share", "_count")) and c != "network_share")]
    out = []
    for b in rows(before):
        a = after_rows.get((b["district"], b["jiezhen"]), {})
        values = {c: {"before": b[c], "after": a.get(c)} for c in columns
                  if b[c] != a.get(c)}
        was, now = bool(b["uncovered"]), bool(a.get("uncovered"))
        if not values and was == now:
            continue
        change = ("newly passes" if was and not now else
                  "newly fails" if now and not was else "")
        out.append({"district": b["district"], "jiezhen": b["jiezhen"], "change": change,
                    "values": values})
    return out


def _citywide(evaluation: Evaluation) -> list[dict[str, Any]]:
    return [{"rule": c.rule.id, "label": c.rule.label, "value": _plain(c.value),
             "target": c.rule.min_count, "passed": _plain(c.passed), "reason": c.reason}
            for c in evaluation.check.citywide]


def _points(frame: gpd.GeoDataFrame) -> list[dict[str, Any]]:
    xy = shapely.get_coordinates(frame.geometry.to_crs("EPSG:4326").to_numpy())
    return [{"id": str(i), "name": str(n), "lon": float(x), "lat": float(y)}
            for i, n, (x, y) in zip(frame["facility_id"], frame["name"], xy, strict=True)]


def _geojson(polygons: Any, crs: str, properties: list[dict[str, Any]]) -> dict[str, Any]:
    shapes = gpd.GeoSeries(np.asarray(polygons, dtype=object), crs=crs)
    shapes = shapes.simplify(5.0).to_crs("EPSG:4326")
    features = [{"type": "Feature", "properties": p, "geometry": shapely.geometry.mapping(g)}
                for g, p in zip(shapes, properties, strict=True)
                if g is not None and not g.is_empty]
    return {"type": "FeatureCollection", "features": features}



def _district_changes(before: Evaluation, after: Evaluation) -> list[dict[str, Any]]:
    if before.district_report is None or after.district_report is None:
        return []
    out = []
    for b, a in zip(rows(before, "district_report"), rows(after, "district_report"),
                    strict=True):
        diff = {k: {"before": b[k], "after": a.get(k)} for k in b if b[k] != a.get(k)}
        if diff:
            out.append({"district": b["district"], "values": diff})
    return out


def _tiles(tiles: str | None, attribution: str | None) -> dict[str, str] | None:
    """The basemap as a URL template and attribution (OpenStreetMap unless a URL is given)."""
    if tiles is None or tiles.lower() == "none":
        return None
    if "{z}" in tiles and tiles.startswith("https://"):
        return {"url": tiles, "attribution": attribution or ""}
    return {"url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
            "attribution": "© OpenStreetMap contributors"}


def _site_view(base: Base, layer: str, site: Site) -> dict[str, Any]:
    reach = base.site_areas(site)
    snap = base.snap_of(site.lon, site.lat)
    return {"layer": layer, "id": site.id, "name": site.name, "lon": site.lon, "lat": site.lat,
            "snap": None if snap is None else {"lon": snap[0], "lat": snap[1], "m": snap[2]},
            "on_network": bool(reach.on_network[0]),
            "area": _geojson(reach.polygons, base.net.crs, [{"id": site.id}])}



def profiles_info(base: Base) -> list[dict[str, Any]]:
    """The walking profiles (verdict first) and the suffix of their report columns."""
    return [{"id": p.id, "label": p.label or p.id, "speed_mps": round(p.speed_mps, 3),
             "verdict": i == 0, "suffix": "" if i == 0 else f"_{p.id}"}
            for i, p in enumerate(base.analysis.walk_profiles)]


def walking_rules(evaluation: Evaluation) -> list[str]:
    """Ids of the walking rules judged per profile (those with a ``{rule}_share`` column)."""
    columns = set(evaluation.gap_report.columns)
    return [c[len("pass_"):] for c in evaluation.gap_report.columns
            if c.startswith("pass_") and f"{c[len('pass_'):]}_share" in columns]


def profile_verdicts(evaluation: Evaluation, base: Base) -> dict[str, list[bool | None]]:
    """Per profile, each 街镇 row's verdict as ``uncovered`` would be at that profile's speed.

    As :func:`coverage15.reach.targets.check_targets` decides ``uncovered``: True where a rule
    judged there fails (the walking rules at the profile's speed, the others as they are),
    False where the 街镇 is wholly inside the network and passes all, else None (unknown).
    """
    found: dict[str, list[bool | None]] | None = evaluation.views.get("profiles")
    if found is not None:
        return found
    gap = evaluation.gap_report
    full = (gap["network"] == "full").to_numpy()
    profiles = profiles_info(base)
    failures = profile_failures(gap, [info["id"] for info in profiles])
    found = {}
    for info in profiles:
        if info["verdict"]:
            found[info["id"]] = [_plain(v) for v in gap["uncovered"]]
            continue
        found[info["id"]] = [True if f else (False if ok else None)
                             for f, ok in zip(failures[info["id"]], full, strict=True)]
    evaluation.views["profiles"] = found
    return found
