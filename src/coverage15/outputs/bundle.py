"""A run's outputs, written together: the GeoPackage, reports, summary and maps.

:func:`write_outputs` stages every file and moves them in at once
(:mod:`coverage15.outputs._staging`), so a folder holds one run's complete outputs or the
previous ones.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from coverage15._version import __version__
from coverage15.inputs.checks import problems_frame
from coverage15.outputs._staging import staged_outputs
from coverage15.outputs.maps import MapOptions, render_map
from coverage15.outputs.static_maps import write_pngs
from coverage15.outputs.writers import (
    check_postgis_names,
    output_layers,
    write_csv,
    write_excel,
    write_geopackage,
    write_geoparquet,
    write_postgis,
)
from coverage15.reach.gaps import profile_table
from coverage15.result import Result

__all__ = ["summary_json", "write_outputs"]


def write_outputs(
    result: Result,
    out_dir: str | Path,
    *,
    map_html: bool = True,
    map_png: bool | None = None,
    map_options: MapOptions | None = None,
    parquet: bool = False,
    to_database: str | None = None,
    schema: str = "public",
) -> dict[str, Path]:
    """Write a run's outputs, atomically, into ``out_dir``.

    Files: ``coverage.gpkg`` (layers ``service_areas``, ``service_area_union``, ``units``,
    ``demand``, ``facilities``, ``districts``), ``gap_report.csv``, ``gap_report.xlsx``,
    ``district_report.csv``, ``rejected.csv``, ``problems.csv``, ``summary.json``,
    ``map.html`` (self-contained, works offline) and
    static maps ``png/overview.png`` plus ``png/<district>.png`` for each district with any
    街镇 inside the network (only the chosen one with ``MapOptions(district=...)``).

    Parameters
    ----------
    result
        A finished run.
    out_dir
        Output folder, created if needed.
    map_html
        Write ``map.html``.
    map_png
        Write the PNG maps; by default the same as ``map_html``.
    map_options
        :class:`~coverage15.outputs.maps.MapOptions` for the map (tiles, district...).
    parquet
        Also write every layer as GeoParquet into ``parquet/``.
    to_database
        Also write every layer to PostGIS at this ``postgresql://`` URL (tables
        ``coverage15_<layer>`` in ``schema``), after the files are in place.
    schema
        Database schema for ``to_database``.

    Returns
    -------
    dict
        Output name → final path.
    """
    out = Path(out_dir)
    written: dict[str, Path] = {}
    if to_database:  # a bad schema name must not wait until the files are replaced
        check_postgis_names([], schema=schema)
    with staged_outputs(out, written, kind="run") as stage:
        layers = output_layers(result)
        write_geopackage(layers, stage / "coverage.gpkg")
        write_csv(result.gap_report, stage / "gap_report.csv")
        write_excel(result, stage / "gap_report.xlsx")
        if parquet:
            write_geoparquet(layers, stage / "parquet")
        if result.district_report is not None:
            write_csv(result.district_report, stage / "district_report.csv")
        write_csv(result.rejected, stage / "rejected.csv")
        write_csv(problems_frame(result.problems), stage / "problems.csv")
        summary = summary_json(result)
        (stage / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2),
                                            encoding="utf-8")
        opts = map_options or MapOptions.from_config(result.config.map)
        if map_html:
            render_map(result, options=opts).save(str(stage / "map.html"))
        if map_html if map_png is None else map_png:
            districts = [opts.district] if opts.district else None
            write_pngs(result, stage / "png", districts=districts)
    if to_database:
        for table in write_postgis(layers, to_database, schema=schema):
            written[f"postgis:{table}"] = Path(table)
    return written


def summary_json(result: Result) -> dict[str, Any]:
    """What ``summary.json`` holds: the settings, the network, citywide checks, problems."""
    return {
        "config": result.config.name,
        "config_file": str(result.config.source),
        "walk_speed_kmh": result.config.analysis.walk_speed_kmh,
        "minutes": result.config.analysis.minutes,
        "limit_m": result.config.analysis.limit_m,
        "buffer_m": result.config.analysis.buffer_m,
        "snap_max_m": result.config.analysis.snap_max_m,
        "access_leg": result.config.analysis.access_leg,
        "working_crs": result.config.analysis.working_crs,
        "network": {"source": result.config.network.source,
                    "path": str(result.config.network.path or ""),
                    "place": result.config.network.place,
                    "nodes": result.network.n_nodes, "edges": result.network.n_edges},
        "coverage15_version": __version__,
        "citywide": [
            {"rule": c.rule.id, "value": c.value, "passed": c.passed, "reason": c.reason}
            for c in result.check.citywide
        ],
        "not_evaluated": result.check.skipped,
        "profiles": [{"id": p.id, "label": p.label, "speed_mps": round(p.speed_mps, 3),
                      "limit_m": round(p.limit_m(result.config.analysis.minutes), 1),
                      "verdict": i == 0} for i, p in enumerate(result.check.profiles)],
        "profile_results": profile_table(result.gap_report, result.check).to_dict(
            orient="records"),
        "uncovered": int(result.gap_report["uncovered"].fillna(False).astype(bool).sum()),
        "problems": problems_frame(result.problems).to_dict(orient="records"),
        "location_check": _location_counts(result),
        "accepted": [p.id for p in result.problems if p.id and p.severity != "error"],
        "lines": result.summary(),
    }


def _location_counts(result: Result) -> dict[str, dict[str, Any]]:
    """Per layer, the rows that land outside the place they name and what was done with them."""
    misplaced = result.misplaced
    if misplaced is None or not len(misplaced):
        return {}
    return {str(layer): {"rows": len(rows), "action": str(rows["action"].iloc[0])}
            for layer, rows in misplaced.groupby("layer", sort=False)}
