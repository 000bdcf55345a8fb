"""The map's walking profiles: each 街镇's colour, flag and share, each layer's areas.

:mod:`coverage15.outputs.maps` puts these in the page's data; its script switches between
them (``_static/coverage15-map.js``) without another run.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import pandas as pd
import shapely

from coverage15.inputs.layers import polygonal_part
from coverage15.reach.gaps import profile_failures

if TYPE_CHECKING:
    from coverage15.result import Result

__all__ = ["by_profile", "display_unions", "profile_labels", "profile_views", "unions_json"]


def profile_labels(result: Result) -> dict[str, str]:
    """Profile id → label and speed, as the map shows them."""
    return {p.id: f"{p.label} {p.speed_mps:.2f} m/s" for p in result.check.profiles}


def profile_views(result: Result, units: pd.DataFrame, share_column: str, *,
                  colour: Callable[[Any], str], no_data: str, cell: Callable[[str, Any], str],
                  ) -> tuple[list[dict[str, str]], list[dict[str, list[Any]]]]:
    """Per walking profile: each 街镇's fill colour and flag, for the map's profile switch.

    A 街镇 is flagged at a profile when it fails a count rule or one of the profile's walking
    rules. Empty without profiles beyond the verdict's.
    """
    profiles = result.check.profiles
    if len(profiles) < 2:
        return [], [{} for _ in range(len(units))]
    views: list[dict[str, list[Any]]] = [{} for _ in range(len(units))]
    assessed = (units["network"] == "full").to_numpy()
    failures = profile_failures(units, [p.id for p in profiles])
    for position, profile in enumerate(profiles):
        suffix = "" if position == 0 else f"_{profile.id}"
        failed = failures[profile.id]
        column = f"{share_column}{suffix}" if f"{share_column}{suffix}" in units else (
            share_column)
        for i, (share, ok) in enumerate(zip(units[column], assessed, strict=True)):
            views[i][profile.id] = [colour(share) if ok else no_data,
                                    bool(failed[i]), cell(column, share)]
    return ([{"id": p.id, "label": profile_labels(result)[p.id]} for p in profiles], views)


def display_unions(unions: Mapping[str, shapely.Geometry], area: shapely.Geometry | None,
                   simplify_m: float, working_crs: str) -> dict[str, shapely.Geometry]:
    """Unions (working CRS) as the map shows them: clipped, simplified, in EPSG:4326.

    Clipped to ``area`` (if any), simplified by ``simplify_m`` metres, on a 1e-5° grid;
    empty ones are left out.
    """
    out: dict[str, shapely.Geometry] = {}
    for key, full in unions.items():
        union = full if area is None else polygonal_part(shapely.intersection(full, area))
        if union is None or union.is_empty:
            continue
        metric = gpd.GeoSeries([union], crs=working_crs)
        shown = metric.simplify(simplify_m, preserve_topology=True).to_crs("EPSG:4326")
        out[key] = shown.set_precision(1e-5).iloc[0]
    return out


def by_profile(result: Result, area: shapely.Geometry | None, simplify_m: float,
               working_crs: str) -> dict[str, dict[str, shapely.Geometry]]:
    """Layer key → profile id → its union at each other profile, as the map shows it."""
    return {key: display_unions(unions, area, simplify_m, working_crs)
            for key, unions in result.profile_unions.items()}


def unions_json(result: Result, shown: Mapping[str, Mapping[str, shapely.Geometry]],
                        key: str) -> dict[str, Any]:
    """Profile id → GeoJSON of layer ``key``'s service areas at that profile (null: none).

    Every profile other than the verdict's (whose areas are the layer's ``union``); ``shown``
    from :func:`by_profile`.
    """
    mine = shown.get(key, {})
    return {pid: json.loads(shapely.to_geojson(mine[pid])) if pid in mine else None
            for pid in result.profile_unions.get(key, {})}
