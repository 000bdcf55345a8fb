"""Online OpenStreetMap queries through osmnx, cached so later runs work offline.

``coverage15 fetch CONFIG`` calls these once with internet access; every later run finds the
answers in :data:`coverage15.settings.cache_folder` (keyed by the query) and never goes online.
osmnx's own HTTP cache is used as well.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import shapely

from coverage15 import settings
from coverage15._errors import NetworkError

__all__ = ["cache_path", "feature_points", "is_cached"]

log = logging.getLogger(__name__)


def cache_path(kind: str, query: dict[str, Any], suffix: str) -> Path:
    """Cache file for an online query (stable across runs and machines)."""
    key = hashlib.sha256(json.dumps(query, sort_keys=True, ensure_ascii=False).encode())
    return Path(settings.cache_folder) / "osm" / f"{kind}-{key.hexdigest()[:24]}{suffix}"


def is_cached(kind: str, query: dict[str, Any], suffix: str) -> bool:
    """Whether an online query's answer is already in the cache."""
    return cache_path(kind, query, suffix).is_file()


def feature_points(tags: Mapping[str, str | bool], place: str, *,
                   online: bool = True) -> gpd.GeoDataFrame:
    """OSM features with ``tags`` within ``place``, as points (EPSG:4326).

    Polygons (buildings, sites) become their representative point.

    Parameters
    ----------
    tags
        osmnx tag filter, e.g. ``{"social_facility": "outreach"}``.
    place
        A geocodable place name.
    online
        Query OpenStreetMap when the answer is not cached; when False, a missing cache is
        an error telling the user to run ``coverage15 fetch``.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``osm_id``, ``name`` and the tag columns, one row per feature.
    """
    query = {"tags": dict(tags), "place": place}
    path = cache_path("features", query, ".parquet")
    if path.is_file():
        return gpd.read_parquet(path)
    if not online:
        msg = (f"OpenStreetMap features {tags} in {place!r} are not cached; run "
               "`coverage15 fetch CONFIG` once with internet access")
        raise NetworkError(msg)
    import osmnx as ox

    try:
        found = ox.features_from_place(place, tags=dict(tags))
    except Exception as exc:  # osmnx raises several types for "nothing found" and HTTP
        msg = f"OpenStreetMap query {tags} in {place!r} failed: {exc}"
        raise NetworkError(msg) from exc
    found = found.reset_index()
    points = gpd.GeoDataFrame(
        {
            "osm_id": found.get("element", "").astype(str) + "/" + found["id"].astype(str),
            "name": found["name"].astype(str) if "name" in found else "",
            **{k: found[k].astype(str) for k in tags if k in found},
        },
        geometry=shapely.point_on_surface(found.geometry.to_numpy()),
        crs="EPSG:4326",
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    points.to_parquet(tmp)
    tmp.replace(path)
    log.info("cached %d OSM features for %s in %s", len(points), tags, place)
    return points
