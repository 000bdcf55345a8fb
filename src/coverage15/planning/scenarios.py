"""What-if scenarios: re-run with sites added to or removed from a layer, compare per 街镇.

The changed layer is written to a temporary GeoPackage (EPSG:4326, exact coordinates) and the
run's config is run again with it, so coverage, rules and flags come from the same pipeline as
the baseline. Added sites also appear as their own layer (``{layer}_added``), which puts them
and their service areas on the map. :mod:`~.recommend` uses this to check proposals.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from coverage15 import pipeline
from coverage15._errors import ConfigError, CRSError, LayerError, OutputError
from coverage15.inputs.config import LayerSpec
from coverage15.inputs.layers import load_layer
from coverage15.outputs._staging import staged_outputs
from coverage15.outputs.writers import gis_ready, write_csv, write_geopackage
from coverage15.planning._words import move, tell_sites
from coverage15.result import Result

__all__ = ["RUN_OUTPUTS", "WhatIf", "check_not_a_run_folder", "load_sites", "whatif",
           "write_bundle", "write_whatif"]

Progress = Callable[[str, int, int], None]
KEYS = ["district", "jiezhen"]


@dataclass(frozen=True)
class WhatIf:
    """A layer changed and the run repeated.

    Attributes
    ----------
    layer : str
    added : geopandas.GeoDataFrame
        Sites added (EPSG:4326), shown on the after-run's map as layer ``{layer}_added``.
    removed : list of str
        Facility ids removed.
    before, after : Result
    diff : pandas.DataFrame
        Per 街镇: ``{column}_before``/``_after`` for the layer's count and demand share, every
        rule share and flag and ``uncovered``; ``{layer}_demand_share_change`` and ``change``
        (``newly passes``, ``newly fails``, ``share up``, ``share down`` or empty).
    sites : pandas.DataFrame or None
        The added sites in a planner's words: street and nearest crossing, 街镇, points
        newly covered and the 街镇 shares each moves
        (:func:`coverage15.planning._words.tell_sites`); None when nothing was added.
    """

    layer: str
    added: gpd.GeoDataFrame
    removed: list[str]
    before: Result
    after: Result
    diff: pd.DataFrame
    sites: pd.DataFrame | None = None

    def summary(self) -> list[str]:
        """Terminal summary lines."""
        d, key = self.diff, self.layer
        n_before = len(self.before.layers[key].points)
        lines = [f"what-if on {self.before.config.layers[key].label}: +{len(self.added)} "
                 f"added, -{len(self.removed)} removed ({n_before} → "
                 f"{len(self.after.layers[key].points)})"]
        if self.sites is not None:
            for s in self.sites.itertuples(index=False):
                where = f"{s.district} {s.jiezhen}" if pd.notna(s.jiezhen) else "outside 街镇"
                who = "" if s.place in s.name else f"{s.name}: "
                lines.append(f"  + {who}{s.place_en} ({where}): +{s.newly_covered} points"
                             + (f"; {s.effect_en}" if s.effect_en else ""))
        counts = d["change"].value_counts()
        lines.append(f"街镇: {counts.get('newly passes', 0)} newly pass, "
                     f"{counts.get('newly fails', 0)} newly fail, {counts.get('share up', 0)} "
                     f"share up, {counts.get('share down', 0)} share down")
        shares = [c.removesuffix("_before") for c in d.columns
                  if c.endswith("_share_before")]
        for row in d.loc[d["change"] != ""].itertuples(index=False):
            r = row._asdict()
            parts = [f"{c.removesuffix('_demand_share').removesuffix('_share')} "
                     f"{move(r[c + '_before'], r[c + '_after'])}"
                     for c in shares if pd.notna(r[c + "_before"])
                     and r[c + "_before"] != r[c + "_after"]]
            lines.append(f"  {row.district} {row.jiezhen}: {'; '.join(parts)}"
                         + (f" ({row.change})" if row.change.startswith("newly") else ""))
        for b, a in zip(self.before.check.citywide, self.after.check.citywide, strict=False):
            if b.value != a.value:
                lines.append(f"citywide {a.rule.id}: {b.value} → {a.value} (target ≥ "
                             f"{a.rule.min_count}; {'PASS' if a.passed else 'FAIL'})")
        return lines


def load_sites(path: str | Path, *, key: str = "sites", x: str | None = None,
               y: str | None = None, crs: str = "", name_field: str | None = None,
               id_field: str | None = None) -> gpd.GeoDataFrame:
    """Read a site file (CSV, JSON, GeoJSON, GeoPackage...) like a facility layer.

    Parameters
    ----------
    path
        The file.
    key
        Name for messages and default ids (``{key}-{row}``).
    x, y, crs, name_field, id_field
        As in a layer's config table (a file with its own geometry and CRS needs none).

    Returns
    -------
    geopandas.GeoDataFrame
        Points in EPSG:4326 with ``facility_id`` and ``name``.
    """
    spec = LayerSpec(key=key, label=key, path=Path(path), x=x, y=y, crs=crs,
                     name_field=name_field, id_field=id_field)
    try:
        layer = load_layer(spec)
    except (LayerError, CRSError) as exc:
        msg = f"{exc} (for a site file on the command line: --x, --y, --crs, --name-field)"
        raise type(exc)(msg) from exc
    if len(layer.rejected):  # each site was listed on purpose: none is dropped quietly
        rows = "; ".join(f"row {r.source_row} ({r.name}): {r.reason}"
                         for r in layer.rejected.head(5).itertuples())
        more = f" and {len(layer.rejected) - 5} more" if len(layer.rejected) > 5 else ""
        msg = (f"sites {Path(path).name}: {len(layer.rejected)} of {layer.n_source} row(s) "
               f"cannot be used: {rows}{more}; fix or remove them")
        raise LayerError(msg)
    return layer.points


RUN_OUTPUTS = ("gap_report.csv", "coverage.gpkg")
"""Files that mark a folder as a run's outputs, which a what-if or recommendation never replaces."""


def check_not_a_run_folder(out_dir: str | Path) -> None:
    """Refuse to write a what-if or recommendation into a run's output folder.

    Both write ``summary.json`` and ``map.html``, which would replace the run's own.
    """
    out = Path(out_dir)
    found = [name for name in RUN_OUTPUTS if (out / name).exists()]
    if found:
        msg = (f"--out {out}: holds a coverage15 run's outputs ({', '.join(found)}); writing "
               "here would replace that run's summary.json and map.html: give another folder")
        raise OutputError(msg)


def _file_layer(points: gpd.GeoDataFrame, path: Path, key: str, label: str,
                role: Any) -> LayerSpec:
    frame = points[["facility_id", "name", "geometry"]].copy()
    frame["facility_id"] = frame["facility_id"].astype(str)
    frame["name"] = frame["name"].fillna("").astype(str)
    frame.to_file(path, layer=key, driver="GPKG", engine="pyogrio")  # exact doubles
    return LayerSpec(key=key, label=label, path=path, role=role, name_field="name",
                     id_field="facility_id", layer=key)


def _diff(before: Result, after: Result, layer: str) -> pd.DataFrame:
    b = before.gap_report
    a = after.gap_report.drop_duplicates(KEYS).set_index(KEYS).reindex(
        pd.MultiIndex.from_frame(b[KEYS]))
    rules = [f"{r.id}_share" for r in before.rules if f"{r.id}_share" in b.columns]
    columns = ([f"{layer}_count", f"{layer}_demand_share", *rules]
               + [c for c in b.columns if c.startswith("pass_")] + ["uncovered"])
    out = b[[*KEYS, "network"]].copy()
    for c in (c for c in columns if c in b.columns):
        out[f"{c}_before"] = b[c].to_numpy()
        out[f"{c}_after"] = a[c].to_numpy() if c in a.columns else np.nan
    shares = [c for c in (f"{layer}_demand_share", *rules) if f"{c}_before" in out]
    moved = pd.DataFrame({c: (out[f"{c}_after"] - out[f"{c}_before"]).fillna(0.0)
                          for c in shares}, index=out.index)
    if f"{layer}_demand_share" in shares:  # no demand layer: counts and flags only
        out[f"{layer}_demand_share_change"] = moved[f"{layer}_demand_share"].round(4)
    # flagged before and not after (passes, or beyond the network and no longer failing a
    # count rule) newly passes; the other way round newly fails
    was = out["uncovered_before"].astype("boolean").fillna(False).to_numpy(bool)
    now = out["uncovered_after"].astype("boolean").fillna(False).to_numpy(bool)
    out["change"] = np.select(
        [was & ~now, ~was & now,
         (moved > 1e-9).any(axis=1).to_numpy(), (moved < -1e-9).any(axis=1).to_numpy()],
        ["newly passes", "newly fails", "share up", "share down"], "")
    return out


def whatif(
    result: Result, *, layer: str, add: gpd.GeoDataFrame | None = None,
    remove: Sequence[str] = (), added_label: str = "新增", progress: Progress | None = None,
) -> WhatIf:
    """Re-run with sites added to and/or removed from a layer; compare per 街镇.

    The changed layer (and the added sites, as an extra display layer ``{layer}_added``) is
    written to a temporary GeoPackage in EPSG:4326 and the config is run again, so coverage,
    rules and flags come from the same pipeline as the baseline.

    Parameters
    ----------
    result
        The baseline run.
    layer
        The layer to change.
    add
        Points to add (any CRS), with ``facility_id`` and ``name`` if available.
    remove
        ``facility_id`` values of the layer to remove.
    added_label
        Prefix of the added sites' layer label on the map.
    progress
        Passed to :func:`coverage15.pipeline.run`.

    Returns
    -------
    WhatIf
    """
    if layer not in result.layers:
        msg = f"layer {layer!r} is not in this run; layers: {', '.join(result.layers)}"
        raise ConfigError(msg)
    base = result.layers[layer].points
    ids = base["facility_id"].astype(str)
    removed = list(dict.fromkeys(str(i).strip() for i in remove if str(i).strip()))
    unknown = [i for i in removed if i not in set(ids)]
    if unknown:
        msg = (f"remove: {len(unknown)} id(s) not in layer {layer!r}: {unknown[:5]}; ids are "
               f"the facility_id column (e.g. {ids.iloc[0]!r}) of the run's facilities")
        raise ConfigError(msg)
    added = gpd.GeoDataFrame(columns=["facility_id", "name", "geometry"], geometry="geometry",
                             crs="EPSG:4326")
    if add is not None and len(add):
        added = add.to_crs("EPSG:4326").reset_index(drop=True)
        if "facility_id" not in added:
            added["facility_id"] = [f"added-{i}" for i in range(len(added))]
        if "name" not in added:
            added["name"] = added["facility_id"]
        added = added[["facility_id", "name", "geometry"]].astype({"facility_id": str})
        repeated = added["facility_id"][added["facility_id"].duplicated()].unique()
        if len(repeated):
            msg = (f"add: {len(repeated)} facility_id(s) given to more than one new site: "
                   f"{list(repeated[:5])}; give each site its own id")
            raise ConfigError(msg)
        clash = added["facility_id"].isin(set(ids))
        added.loc[clash, "facility_id"] = "added:" + added.loc[clash, "facility_id"]
    kept = base.loc[~ids.isin(removed)]
    if len(kept) + len(added) == 0:
        msg = f"what-if would leave layer {layer!r} empty; keep or add at least one site"
        raise ConfigError(msg)
    spec = result.config.layers[layer]
    layers = dict(result.config.layers)
    with tempfile.TemporaryDirectory(prefix="coverage15-whatif-") as tmp:
        merged = pd.concat([kept[["facility_id", "name", "geometry"]], added],
                           ignore_index=True)
        layers[layer] = _file_layer(gpd.GeoDataFrame(merged, crs="EPSG:4326"),
                                    Path(tmp) / "layer.gpkg", layer, spec.label, spec.role)
        if len(added):  # ids must differ from the changed layer's (the map keys on them)
            key = f"{layer}_added"
            shown = added.assign(facility_id="new:" + added["facility_id"])
            layers[key] = _file_layer(shown, Path(tmp) / "added.gpkg", key,
                                      f"{added_label}{spec.label}", "other")
        # looked up when called, not bound at import (a test may stand in for the run)
        after = pipeline.run(dataclasses.replace(result.config, layers=layers),
                             progress=progress)
    sites = tell_sites(result, layer, added) if len(added) else None
    return WhatIf(layer, added, removed, result, after, _diff(result, after, layer), sites)



# --- outputs ---------------------------------------------------------------------------------


def write_bundle(out_dir: str | Path, *, tables: dict[str, pd.DataFrame],
                 layers: dict[str, gpd.GeoDataFrame], gpkg: str, summary: dict[str, Any],
                 map_result: Result | None, map_options: object | None) -> dict[str, Path]:
    """Write CSV tables, GeoPackage layers, ``summary.json`` and a map, atomically.

    Parameters
    ----------
    out_dir
        Output folder (files are staged, then moved in: see :mod:`coverage15.outputs._staging`).
    tables
        File name → table (booleans written as ``true``/``false``).
    layers
        GeoPackage layer name → frame, written to ``gpkg``.
    gpkg
        GeoPackage file name.
    summary
        Written as ``summary.json``.
    map_result, map_options
        When a run is given, its map as ``map.html`` (:func:`coverage15.outputs.maps.render_map`).

    Returns
    -------
    dict
        Output name → final path.
    """
    out = Path(out_dir)
    check_not_a_run_folder(out)
    written: dict[str, Path] = {}
    with staged_outputs(out, written, kind=Path(gpkg).stem) as stage:
        write_geopackage({name: gis_ready(f) for name, f in layers.items()}, stage / gpkg)
        for name, table in tables.items():
            write_csv(table, stage / name)
        (stage / "summary.json").write_text(
            json.dumps(summary, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
        if map_result is not None:
            from coverage15.outputs.maps import MapOptions, render_map

            opts = map_options if isinstance(map_options, MapOptions) else None
            render_map(map_result, options=opts).save(str(stage / "map.html"))
    return written



def write_whatif(w: WhatIf, out_dir: str | Path, *, map_html: bool = True,
                 map_options: object | None = None) -> dict[str, Path]:
    """Write a what-if atomically.

    Files: ``whatif.csv`` (the per-街镇 diff), ``whatif.gpkg`` (``units`` with the diff,
    ``added``, ``removed``), ``summary.json`` and ``map.html`` (the run after the change).

    Returns
    -------
    dict
        Output name → path.
    """
    geometry = w.before.units_gdf().geometry.to_numpy()
    units = gpd.GeoDataFrame(w.diff.copy(), geometry=geometry, crs="EPSG:4326")
    base = w.before.facilities[w.layer]
    removed = base.loc[base["facility_id"].astype(str).isin(w.removed),
                       ["facility_id", "name", "jiezhen", "district", "geometry"]]
    layers = {"units": units, "removed": removed}
    if len(w.added):
        layers["added"] = w.added if w.sites is None else w.added.assign(
            **{c: w.sites[c].to_numpy() for c in ("place", "place_en", "district", "jiezhen",
                                                  "newly_covered", "effect", "effect_en")})
    return write_bundle(out_dir, tables={"whatif.csv": w.diff}, gpkg="whatif.gpkg", layers=layers,
                  summary={"config": w.before.config.name, "layer": w.layer,
                           "added": len(w.added), "removed": w.removed,
                           "lines": w.summary()},
                  map_result=w.after if map_html else None, map_options=map_options)
