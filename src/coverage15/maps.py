"""Interactive folium (Leaflet) maps of a run.

Everything on the map is in EPSG:4326. Geometry is simplified for display only (the
analysis never uses these copies), so the central-Shanghai map stays a few megabytes.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from folium import plugins

from . import settings

if TYPE_CHECKING:
    from .pipeline import RunResult

__all__ = ["MapOptions", "render_map"]

OSM_ATTRIBUTION = "© OpenStreetMap contributors"
LAYER_COLOURS = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d"]
SHARE_BINS = [0.0, 0.5, 0.7, 0.9, 1.0001]
SHARE_COLOURS = ["#d7301f", "#fc8d59", "#fdcc8a", "#74c476"]
NO_DATA_COLOUR = "#bdbdbd"
LABELS_ZH = {
    "district": "区",
    "jiezhen": "街镇",
    "network": "路网覆盖",
    "network_share": "路网覆盖比例",
    "area_km2": "面积 (km²)",
    "demand_points": "居住点数",
    "uncovered": "未达标",
    "reason": "原因",
}


@dataclass(frozen=True)
class MapOptions:
    """Display options.

    Attributes
    ----------
    tiles : str or None
        ``"OpenStreetMap"`` (default), another folium/xyz tile name, a URL template, or
        None for no tiles (works offline).
    tiles_attribution : str or None
        Attribution for a URL template.
    simplify_m : float
        Display simplification tolerance in metres.
    district : str or None
        Restrict the map to one district.
    """

    tiles: str | None = "OpenStreetMap"
    tiles_attribution: str | None = None
    simplify_m: float = 10.0
    district: str | None = None


def _share_colour(value: float) -> str:
    if value is None or pd.isna(value):
        return NO_DATA_COLOUR
    index = int(np.searchsorted(SHARE_BINS, value, side="right")) - 1
    return SHARE_COLOURS[min(max(index, 0), len(SHARE_COLOURS) - 1)]


def _display(geoms: gpd.GeoSeries, tolerance_m: float, working_crs: str) -> gpd.GeoSeries:
    metric = geoms.to_crs(working_crs)
    simplified = metric.simplify(tolerance_m, preserve_topology=True)
    out = simplified.to_crs(settings.output_crs)
    return out.set_precision(1e-6)


def _label(column: str, layer_labels: dict[str, str], rule_labels: dict[str, str]) -> str:
    if column in LABELS_ZH:
        return LABELS_ZH[column]
    for key, label in layer_labels.items():
        for suffix, zh in (("_count", "数量"), ("_demand_share", "居住点覆盖率"),
                           ("_area_share", "面积覆盖率")):
            if column == f"{key}{suffix}":
                return f"{label}{zh}"
    for rid, label in rule_labels.items():
        if column == f"pass_{rid}":
            return f"达标：{label}"
        if column == f"{rid}_share":
            return f"{label} 达标居民比例"
    return column


def _popup_table(row: pd.Series, labels: dict[str, str]) -> str:
    cells = []
    for column, value in row.items():
        if column == "geometry":
            continue
        if isinstance(value, float) and column.endswith("share") and not pd.isna(value):
            text = f"{value:.0%}"
        elif value is None or (not isinstance(value, str) and pd.isna(value)):
            text = "—"
        elif isinstance(value, bool | np.bool_):
            text = "是" if value else "否"
        else:
            text = str(value)
        cells.append(f"<tr><th>{html.escape(labels.get(column, column))}</th>"
                     f"<td>{html.escape(text)}</td></tr>")
    return "<table class='c15-popup'>" + "".join(cells) + "</table>"


def render_map(result: RunResult, *, options: MapOptions | None = None) -> folium.Map:
    """Build the interactive coverage map of a run.

    Parameters
    ----------
    result
        A finished run.
    options
        Display options.

    Returns
    -------
    folium.Map
        Layers: 街镇 coloured by coverage (uncovered outlined in red), districts, and per
        facility layer its service-area union and clustered facility markers; with a layer
        control, legend, title and 街镇 search.
    """
    opts = options or MapOptions()
    cfg = result.config
    working = cfg.analysis.working_crs
    layer_labels = {k: s.label for k, s in cfg.layers.items()}
    rule_labels = {r.id: r.label for r in result.rules}
    units = result.units_gdf()
    if opts.district:
        units = units.loc[units["district"] == opts.district]
    share_column = next((c for c in units.columns if c.endswith("_share")
                         and c not in ("network_share",) and not c.endswith("area_share")
                         and not any(c == f"{k}_demand_share" for k in layer_labels)), None)
    if share_column is None:
        first = next(iter(layer_labels))
        share_column = f"{first}_demand_share"
    focus = units.loc[units["network"] != "none"] if (units["network"] != "none").any() else units
    west, south, east, north = focus.total_bounds
    fmap = folium.Map(tiles=None, control_scale=True, prefer_canvas=True)
    if opts.tiles:
        folium.TileLayer(opts.tiles, attr=opts.tiles_attribution, name="底图 basemap",
                         control=True).add_to(fmap)
    fmap.fit_bounds([[south, west], [north, east]])

    # 街镇
    labels = {c: _label(c, layer_labels, rule_labels) for c in units.columns}
    shown = units.copy()
    shown["geometry"] = _display(units.geometry, opts.simplify_m, working)
    unit_group = folium.FeatureGroup(name="街镇覆盖 coverage by 街镇", show=True)
    features = []
    for _, row in shown.iterrows():
        flagged = bool(row["uncovered"]) if not pd.isna(row["uncovered"]) else False
        assessed = row["network"] == "full"
        features.append({
            "type": "Feature",
            "geometry": shapely.geometry.mapping(row.geometry),
            "properties": {
                "jiezhen": row["jiezhen"],
                "fill": _share_colour(row[share_column]) if assessed else NO_DATA_COLOUR,
                "flag": flagged,
                "popup": _popup_table(row.drop(labels="geometry"), labels),
            },
        })
    unit_layer = folium.GeoJson(
        {"type": "FeatureCollection", "features": features},
        name="街镇",
        style_function=lambda f: {
            "fillColor": f["properties"]["fill"],
            "fillOpacity": 0.45,
            "color": "#b30000" if f["properties"]["flag"] else "#555555",
            "weight": 3.5 if f["properties"]["flag"] else 0.8,
            "dashArray": None if f["properties"]["flag"] else "3",
        },
        highlight_function=lambda _f: {"weight": 4, "color": "#000000"},
        popup=folium.GeoJsonPopup(fields=["popup"], labels=False, max_width=420),
        tooltip=folium.GeoJsonTooltip(fields=["jiezhen"], labels=False),
    )
    unit_layer.add_to(unit_group)
    unit_group.add_to(fmap)
    plugins.Search(layer=unit_layer, search_label="jiezhen", placeholder="搜索街镇 search",
                   collapsed=False, position="topright").add_to(fmap)

    if result.districts_gdf is not None:
        districts = result.districts_gdf
        if opts.district:
            districts = districts.loc[districts["unit"] == opts.district]
        folium.GeoJson(
            _display(districts.geometry, opts.simplify_m * 2, working).to_json(),
            name="区界 districts",
            style_function=lambda _f: {"fill": False, "color": "#222222", "weight": 2},
        ).add_to(fmap)

    for i, (key, spec) in enumerate(cfg.layers.items()):
        colour = LAYER_COLOURS[i % len(LAYER_COLOURS)]
        union = result.unions.get(key)
        area_group = folium.FeatureGroup(name=f"{spec.label} 15分钟服务圈", show=i == 0)
        if union is not None and not union.is_empty:
            shape = gpd.GeoSeries([union], crs=working)
            folium.GeoJson(
                _display(shape, opts.simplify_m, working).to_json(),
                style_function=lambda _f, c=colour: {"fillColor": c, "color": c,
                                                     "weight": 0.5, "fillOpacity": 0.25},
            ).add_to(area_group)
        area_group.add_to(fmap)
        points = result.facilities[key]
        if opts.district:
            points = points.loc[points["district"] == opts.district]
        marker_group = folium.FeatureGroup(name=f"{spec.label} 设施", show=True)
        cluster = plugins.MarkerCluster(options={"disableClusteringAtZoom": 16})
        for _, row in points.iterrows():
            folium.CircleMarker(
                location=[row.geometry.y, row.geometry.x],
                radius=5, color=colour, fill=True, fill_opacity=0.9, weight=1,
                popup=folium.Popup(
                    f"<b>{html.escape(str(row['name']))}</b><br>{html.escape(spec.label)}"
                    + (f"<br>离路 {row['snap_m']:.0f} m" if not pd.isna(row["snap_m"]) else
                       "<br>不在路网上"), max_width=300),
            ).add_to(cluster)
        cluster.add_to(marker_group)
        marker_group.add_to(fmap)

    folium.LayerControl(collapsed=False).add_to(fmap)
    _add_title_and_legend(fmap, result, share_column, labels.get(share_column, share_column))
    return fmap


def _add_title_and_legend(fmap: folium.Map, result: RunResult, share_column: str,
                          share_label: str) -> None:
    a = result.config.analysis
    title = (f"{html.escape(result.config.name)} — {a.minutes:g} 分钟步行 "
             f"({a.walk_speed_kmh:g} km/h, {a.limit_m:.0f} m)")
    rules = "".join(f"<li>{html.escape(r.label)}</li>" for r in result.rules)
    swatches = "".join(
        f"<div><span style='background:{c}'></span>{lo:.0%}–{min(hi, 1):.0%}</div>"
        for c, lo, hi in zip(SHARE_COLOURS, SHARE_BINS[:-1], SHARE_BINS[1:], strict=True)
    )
    legend = f"""
<div id="c15-title" style="position:fixed;top:10px;left:60px;z-index:9999;background:white;
 padding:6px 10px;border-radius:4px;box-shadow:0 0 4px #888;font:14px sans-serif">{title}</div>
<div id="c15-legend" style="position:fixed;bottom:30px;left:10px;z-index:9999;background:white;
 padding:8px 10px;border-radius:4px;box-shadow:0 0 4px #888;font:12px sans-serif;max-width:300px">
<b>{html.escape(share_label)}</b>{swatches}
<div><span style='background:{NO_DATA_COLOUR}'></span>路网外，未评估 no network</div>
<div><span style='background:white;border:3px solid #b30000'></span>未达标街镇 uncovered</div>
<b>目标 targets</b><ul style="margin:2px 0 0 16px;padding:0">{rules}</ul>
<div style="color:#666;margin-top:4px">路网 © OpenStreetMap contributors (ODbL)</div>
</div>
<style>#c15-legend span{{display:inline-block;width:14px;height:10px;margin-right:6px}}
.c15-popup th{{text-align:left;padding-right:8px;font-weight:normal;color:#555}}</style>"""
    fmap.get_root().html.add_child(folium.Element(legend))
    fmap.get_root().header.add_child(folium.Element(
        "<meta name='coverage15' content='" + html.escape(json.dumps(
            {"config": result.config.name, "minutes": a.minutes,
             "walk_speed_kmh": a.walk_speed_kmh}), quote=True) + "'>"))


