"""Exports (a scenario written as a run writes its outputs) and checked uploads of sites."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import shapely

from coverage15.app._http import MAX_UPLOAD_BYTES, TOO_LARGE, _Bad
from coverage15.app.engine import Base, Scenario, Site

if TYPE_CHECKING:
    from coverage15.planning.scenarios import WhatIf
    from coverage15.result import Result

MAX_UPLOAD_SITES = 500
EXPORT_FILES = ("gap_report.csv", "gap_report.xlsx", "district_report.csv", "coverage.gpkg",
                "map.html", "whatif.csv", "scenario.zip")


# --- exports ---------------------------------------------------------------------------------


def _sites_frame(sites: tuple[Site, ...]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"facility_id": [s.id for s in sites],
                             "name": [s.name for s in sites]},
                            geometry=[shapely.Point(s.lon, s.lat) for s in sites],
                            crs="EPSG:4326")


def scenario_result(base: Base, scenario: Scenario) -> tuple[Result, WhatIf | None]:
    """The run as it would be with the scenario's facilities, and the last layer's what-if.

    Each edited layer is a :func:`coverage15.planning.scenarios.whatif` on the result
    before (the base run's result itself when nothing is edited).
    """
    from coverage15.planning.scenarios import whatif

    result = base.result
    last = None
    for layer, edit in scenario.edits.items():
        last = whatif(result, layer=layer, add=_sites_frame(edit.added) if edit.added else None,
                      remove=sorted(edit.removed))
        result = last.after
    return result, last


def export_scenario(base: Base, scenario: Scenario, out: Path) -> list[str]:
    """Write a scenario as a run writes its outputs, through :func:`whatif` (files' names).

    Each edited layer is a :func:`coverage15.planning.scenarios.whatif` on the previous
    result, so the files equal those of ``coverage15 recommend --layer L --add FILE
    --remove IDS``; ``whatif.csv`` (its per-街镇 comparison) is written when one layer is
    edited.
    """
    from coverage15.outputs.bundle import write_outputs
    from coverage15.planning.scenarios import write_whatif

    result, last = scenario_result(base, scenario)
    write_outputs(result, out, map_png=False)
    if last is not None and len(scenario.edits) == 1:
        written = write_whatif(last, out / "whatif", map_html=False)
        (out / "whatif.csv").write_bytes(written["whatif.csv"].read_bytes())
    return sorted(p.name for p in out.iterdir() if p.is_file())


# --- uploads ---------------------------------------------------------------------------------


def read_upload(base: Base, body: bytes, kind: str) -> gpd.GeoDataFrame:
    """Points of an uploaded GeoJSON or GeoPackage, checked; EPSG:4326."""
    if body == TOO_LARGE:
        raise _Bad(f"the file is larger than {MAX_UPLOAD_BYTES // 1024 // 1024} MB", 413)
    if not body:
        raise _Bad("the file is empty")
    if kind not in ("geojson", "gpkg"):
        raise _Bad("format must be geojson or gpkg")
    if kind == "geojson":
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise _Bad("the file is not GeoJSON (not valid JSON)") from exc
        if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
            raise _Bad("the GeoJSON must be a FeatureCollection")
    elif not body.startswith(b"SQLite format 3\0"):
        raise _Bad("the file is not a GeoPackage")
    with tempfile.TemporaryDirectory(prefix="coverage15-upload-") as tmp:
        path = Path(tmp) / f"upload.{kind}"  # the server's name, never the client's
        path.write_bytes(body)
        try:
            frame = gpd.read_file(path, engine="pyogrio")
        except Exception as exc:
            raise _Bad(f"the file cannot be read as {kind}: {type(exc).__name__}") from exc
    if len(frame) == 0:
        raise _Bad("the file holds no features")
    if len(frame) > MAX_UPLOAD_SITES:
        raise _Bad(f"at most {MAX_UPLOAD_SITES} sites per upload, the file holds {len(frame)}")
    if frame.crs is None:
        raise _Bad("the file has no coordinate system (CRS); save it with one, e.g. EPSG:4326")
    types = set(frame.geometry.geom_type.dropna())
    if frame.geometry.isna().any() or frame.geometry.is_empty.any() or types != {"Point"}:
        raise _Bad(f"every feature must be a point; found {', '.join(sorted(types)) or 'none'}")
    frame = frame.to_crs("EPSG:4326")
    inside = frame.geometry.apply(base.study_area.covers).to_numpy(bool)
    if not inside.all():
        raise _Bad(f"{int((~inside).sum())} of {len(frame)} sites lie outside the study area "
                   "(check the file's CRS: GCJ-02 or BD-09 coordinates must be converted)")
    return frame

