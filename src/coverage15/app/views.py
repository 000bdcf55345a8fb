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

# --- JSON views ------------------------------------------------------------------------------


def _records(frame: pd.DataFrame | None) -> list[dict[str, Any]]:
    if frame is None:
        return []
    out = []
    for row in frame.to_dict("records"):
        out.append({str(k): _plain(v) for k, v in row.items()})
    return out


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


def _changes(before: pd.DataFrame, after: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of the 街镇 table that changed: before → after, and newly pass/fail."""
    keys = ["district", "jiezhen"]
    b = before.set_index(keys)
    a = after.set_index(keys).reindex(b.index)
    shares = [c for c in b.columns if c.endswith("_share") and c != "network_share"]
    passes = [c for c in b.columns if c.startswith("pass_")]
    was, now = _flag(before), _flag(a.reset_index())
    out = []
    for i, key in enumerate(b.index):
        moved = {c: (_plain(b[c].iloc[i]), _plain(a[c].iloc[i])) for c in [*shares, *passes]
                 if _plain(b[c].iloc[i]) != _plain(a[c].iloc[i])}
        counts = {c: (_plain(b[c].iloc[i]), _plain(a[c].iloc[i])) for c in b.columns
                  if c.endswith("_count") and _plain(b[c].iloc[i]) != _plain(a[c].iloc[i])}
        if not moved and not counts and was[i] == now[i]:
            continue
        change = ("newly passes" if was[i] and not now[i] else
                  "newly fails" if now[i] and not was[i] else "")
        out.append({"district": key[0], "jiezhen": key[1], "change": change,
                    "values": {c: {"before": v[0], "after": v[1]}
                               for c, v in {**counts, **moved}.items()}})
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



def _district_changes(before: pd.DataFrame | None, after: pd.DataFrame | None,
                      ) -> list[dict[str, Any]]:
    if before is None or after is None:
        return []
    out = []
    for b, a in zip(_records(before), _records(after), strict=True):
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

