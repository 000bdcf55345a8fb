"""Interactive folium (Leaflet) maps of a run.

Everything on the map is in EPSG:4326. Geometry is simplified for display only, in the
working CRS (the analysis never uses these copies), and coordinates are rounded to 1e-5°
(about 1 m), so the central-Shanghai map stays a few megabytes. Leaflet and its plugins are
inlined (see :mod:`coverage15.outputs._map_assets`): a saved ``map.html`` works from disk offline.

Text from the data and the config (names of 街镇, districts, facilities and layers, reasons,
the config's name) is shown as text, never run: the page's script puts it into the page as
text, what Python writes as HTML (the legend, the layer list, the page title) is escaped with
:func:`~._safe_text.html_text`, and the JSON in the page's ``<script>`` is written by
:func:`~._safe_text.script_json`.

:func:`map_data` selects and simplifies what a map shows; :func:`render_map` draws it with
folium and :mod:`coverage15.outputs.static_maps` with matplotlib, so both show the same content.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import Figure, MacroElement
from jinja2 import Template

from coverage15._errors import ConfigError, unknown_district
from coverage15.inputs._palette import LAYER_COLOURS, layer_colours
from coverage15.inputs.config import MapSpec
from coverage15.outputs import _map_profiles
from coverage15.outputs._legend import facility_count_text, unit_rows
from coverage15.outputs._location_map import add_location_overlays
from coverage15.outputs._map_assets import AssetMode, RawHTML, check_tiles, use_assets
from coverage15.outputs._map_profiles import profile_labels, profile_views
from coverage15.outputs._proposal_map import mark_proposals, proposal_overlays
from coverage15.outputs._safe_text import html_text, script_json
from coverage15.reach._reasons import pct
from coverage15.reach.gaps import COMPLETE_ZH, column_label_zh
from coverage15.reach.gaps import NETWORK_ZH as _NETWORK_WORKBOOK

if TYPE_CHECKING:
    from coverage15.result import Result

__all__ = [
    "FLAG_COLOUR",
    "LAYER_COLOURS",
    "NO_DATA_COLOUR",
    "OSM_ATTRIBUTION",
    "SHARE_BINS",
    "SHARE_COLOURS",
    "MapData",
    "MapOptions",
    "check_district",
    "check_tiles",
    "config_file",
    "facility_count_text",
    "layer_colours",
    "map_data",
    "overlay_names",
    "render_map",
    "share_colour",
]

log = logging.getLogger(__name__)

OSM_ATTRIBUTION = "© OpenStreetMap contributors"
DATA_ATTRIBUTION = ("街镇边界、路网 <a href='https://www.openstreetmap.org/copyright'>"
                    "© OpenStreetMap contributors</a> (ODbL)")
SHARE_BINS = [0.0, 0.5, 0.7, 0.9, 1.0001]
SHARE_COLOURS = ["#f46d43", "#fdae61", "#fee08b", "#66bd63"]
NO_DATA_COLOUR = "#c8c8c8"
FLAG_COLOUR = "#a50f15"
SELECTED_COLOUR = "#111111"
# the workbook's words for ``network``, with what they mean for the 街镇's verdict
NETWORK_ZH = {key: word + {"full": "", "partial": "（未评估）", "none": "（路网外，未评估）"}[key]
              for key, word in _NETWORK_WORKBOOK.items()}
_TEXT = {
    "search": "搜索街镇或区，如 湖南路",
    "legend": "图例",
    "notFound": "未找到",
    "unit": "街镇",
    "snap": "到最近道路",
    "reach": "15分钟可达街道长度",
    "area": "服务圈面积",
    "areaShown": "地图上以虚线显示该设施的15分钟服务圈",
    "offNetwork": "不在路网范围内（或离道路过远），未计算服务圈",
}


@dataclass(frozen=True)
class MapOptions:
    """Display options.

    Attributes
    ----------
    tiles : str or None
        ``"OpenStreetMap"`` (default), another folium/xyzservices tile name (e.g.
        ``"CartoDB positron"``), a URL template (then give ``tiles_attribution``), or None for
        no basemap (the data still shows, offline).
    tiles_attribution : str or None
        Attribution of a URL template.
    simplify_m : float
        Display simplification tolerance in metres for 街镇, districts and service-area
        unions.
    area_simplify_m : float
        Display simplification tolerance in metres for the single facilities' service areas.
    district : str or None
        Restrict the map to one district (e.g. ``"黄浦区"``) and zoom to it.
    assets : {"inline", "cdn"}
        Inline Leaflet and its plugins into the HTML (works offline; default) or link them
        from a CDN.
    """

    tiles: str | None = "OpenStreetMap"
    tiles_attribution: str | None = None
    simplify_m: float = 10.0
    area_simplify_m: float = 15.0
    district: str | None = None
    assets: AssetMode = "inline"
    proposals: pd.DataFrame | None = None  # a recommendation's sites: see _proposal_map

    @classmethod
    def from_config(cls, spec: MapSpec, **overrides: Any) -> MapOptions:
        """The options a config's ``[map]`` table gives (``tiles = "none"``: no basemap).

        The one place where a run's default map options are decided; ``overrides`` (e.g.
        the command line's ``district``) replace fields.
        """
        tiles = None if spec.tiles.lower() == "none" else spec.tiles
        return cls(**{"tiles": tiles, "tiles_attribution": spec.tiles_attribution,
                      **overrides})


@dataclass(frozen=True)
class MapData:
    """What a map shows, simplified for display, in EPSG:4326.

    Attributes
    ----------
    units : GeoDataFrame
        Gap-report rows with geometry and ``fill`` (colour), ``flag`` (uncovered) and
        ``assessed`` (inside the network) columns.
    districts : GeoDataFrame or None
        ``unit`` and geometry.
    unions : dict
        Layer key → union of its service areas (clipped to the district, if any).
    profile_unions : dict
        Layer key → walking profile id → its union at each other profile.
    facilities : dict of GeoDataFrame
        Layer key → facilities shown (in the district, or serving it).
    areas : GeoDataFrame
        One service area per shown facility on the network.
    share_column, share_label : str
        The gap-report share that colours the 街镇, and its Chinese label.
    target : float or None
        The minimum share of that rule.
    bounds : tuple of float
        West, south, east, north to zoom to.
    district : str or None
        The district the map is restricted to.
    """

    units: gpd.GeoDataFrame
    districts: gpd.GeoDataFrame | None
    unions: dict[str, shapely.Geometry]
    facilities: dict[str, gpd.GeoDataFrame]
    areas: gpd.GeoDataFrame
    share_column: str
    share_label: str
    target: float | None
    bounds: tuple[float, float, float, float]
    district: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    profile_unions: dict[str, dict[str, shapely.Geometry]] = field(default_factory=dict)


def share_colour(value: float | None) -> str:
    """Colour of a coverage share (0–1); grey when missing."""
    if value is None or pd.isna(value):
        return NO_DATA_COLOUR
    index = int(np.searchsorted(SHARE_BINS, value, side="right")) - 1
    return SHARE_COLOURS[min(max(index, 0), len(SHARE_COLOURS) - 1)]


def _display(geoms: gpd.GeoSeries, tolerance_m: float, working_crs: str) -> gpd.GeoSeries:
    """Simplified in metres, back in EPSG:4326, on a 1e-5° grid."""
    metric = geoms.to_crs(working_crs)
    simplified = metric.simplify(tolerance_m, preserve_topology=True)
    return simplified.to_crs("EPSG:4326").set_precision(1e-5)


def _short(label: str) -> str:
    """A rule's short name: the part of its label before a full-width colon."""
    return label.split("：", 1)[0].strip() or label


def _label(column: str, layer_labels: dict[str, str], rule_labels: dict[str, str],
           profile_labels: dict[str, str] | None = None) -> str:
    return column_label_zh(column, layer_labels,
                           {rid: _short(label) for rid, label in rule_labels.items()},
                           profile_labels)


def _share_rule(result: Result) -> tuple[str, float | None]:
    """The first share rule in the gap report (e.g. ``one_plus_n_share``) and its target."""
    for rule in result.rules:
        if f"{rule.id}_share" in result.gap_report.columns:
            return f"{rule.id}_share", rule.min_share
    first = next(iter(result.config.layers))
    return f"{first}_demand_share", None


def check_district(result: Result, district: str) -> None:
    """Raise :class:`ConfigError` naming the known districts if ``district`` is not one."""
    known = set(result.units["district"].dropna())
    if result.districts_gdf is not None:
        known |= set(result.districts_gdf["unit"].dropna())
    if district not in known:
        raise unknown_district(district, known, f"the run ({result.config.units.path.name})")


def map_data(
    result: Result,
    *,
    district: str | None = None,
    simplify_m: float = 10.0,
    area_simplify_m: float = 15.0,
    with_areas: bool = True,
) -> MapData:
    """Select and simplify what a map of a run shows.

    Parameters
    ----------
    result
        A finished run.
    district
        Restrict to one district: its 街镇, the facilities in it or whose service area
        reaches into it, and the unions clipped to it.
    simplify_m, area_simplify_m
        Display simplification in metres (unions and boundaries; single service areas).
    with_areas
        Also the single facilities' service areas and the unions at other profiles.

    Returns
    -------
    MapData

    Raises
    ------
    ConfigError
        If ``district`` is not a district of the run's 街镇 layer.
    """
    cfg = result.config
    working = cfg.analysis.working_crs
    layer_labels = {k: s.label for k, s in cfg.layers.items()}
    rule_labels = {r.id: r.label for r in result.rules}
    share_column, target = _share_rule(result)
    units = result.units_gdf()
    districts = result.districts_gdf
    area = None
    if district:
        check_district(result, district)
        units = units.loc[units["district"] == district]
        if districts is not None:
            districts = districts.loc[districts["unit"] == district]
        # the area the district's figures describe: the union of its 街镇 (the outline file
        # only draws the boundary)
        own = (result.district_areas.loc[result.district_areas["unit"] == district]
               if result.district_areas is not None else None)
        shape = own.geometry if own is not None and len(own) else units.geometry
        area = shapely.union_all(shape.to_crs(working).to_numpy())
    units = units.copy()
    assessed = (units["network"] == "full").to_numpy()
    units["assessed"] = assessed
    units["flag"] = units["uncovered"].fillna(False).astype(bool).to_numpy()
    units["fill"] = [share_colour(v) if ok else NO_DATA_COLOUR
                     for v, ok in zip(units[share_column], assessed, strict=True)]
    units["geometry"] = _display(units.geometry, simplify_m, working)

    sa = result.service_areas
    facilities: dict[str, gpd.GeoDataFrame] = {}
    inside = units.loc[units["network"] != "none"]
    studied = set(zip(inside["district"], inside["jiezhen"], strict=True))
    for key, points in result.facilities.items():
        if area is None:
            # the overview shows the facilities of the studied area, not the whole city
            places = zip(points["district"], points["jiezhen"], strict=True)
            keep = points["on_network"].to_numpy() | np.array([p in studied for p in places],
                                                               dtype=bool)
        else:
            serving = set(sa.loc[(sa["layer"] == key) & sa.to_crs(working).intersects(area),
                                 "facility_id"])
            keep = ((points["district"] == district) | points["facility_id"].isin(serving)
                    ).to_numpy()
        facilities[key] = points.loc[keep]
    shown = {(key, fid) for key, f in facilities.items() for fid in f["facility_id"]}
    areas = sa.loc[[(k, f) in shown for k, f in zip(sa["layer"], sa["facility_id"],
                                                     strict=True)]].copy()
    if with_areas and len(areas):
        areas["geometry"] = _display(areas.geometry, area_simplify_m, working)
    unions = _map_profiles.display_unions(result.unions, area, simplify_m, working)
    if districts is not None:
        districts = districts[["unit", "geometry"]].copy()
        districts["geometry"] = _display(districts.geometry, simplify_m * 2, working)
    # frame the studied streets: the overview on the assessed 街镇, a district on its 街镇
    # with streets in the data (浦东新区's 2 central 街镇, not its 1,200 km²); the whole
    # district only when none has
    focus = units
    for status in ((("full", "partial"),) if district else (("full",), ("full", "partial"))):
        if units["network"].isin(status).any():
            focus = units.loc[units["network"].isin(status)]
            break
    west, south, east, north = (float(v) for v in focus.total_bounds)
    labels = {c: _label(c, layer_labels, rule_labels, profile_labels(result))
              for c in units.columns}
    return MapData(units=units, districts=districts, unions=unions, facilities=facilities,
                   areas=areas, share_column=share_column, profile_unions=(
                       _map_profiles.by_profile(result, area, simplify_m, working)
                       if with_areas else {}),
                   share_label=labels.get(share_column, share_column), target=target,
                   bounds=(west, south, east, north), district=district, labels=labels)


def overlay_names(result: Result) -> list[str]:
    """Names of the overlays in the map's layer control, in order.

    The location check's overlays follow them where it found rows
    (:func:`~coverage15.outputs._location_map.location_overlay_names`).
    """
    share_label = _label(_share_rule(result)[0], {k: s.label for k, s in
                                                   result.config.layers.items()},
                         {r.id: r.label for r in result.rules})
    names = [f"街镇：{share_label}", "未达标街镇标注", "区界"]
    for spec in result.config.layers.values():
        names += [f"{spec.label} 15分钟服务圈", f"{spec.label} 设施"]
    return names


def _cell(column: str, value: Any) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "—"
    if isinstance(value, bool | np.bool_):
        return "是" if value else "否"
    words = {"network": NETWORK_ZH, "network_complete": COMPLETE_ZH}.get(column)
    if words is not None:
        return words.get(str(value), str(value))
    if "_share" in column:  # also the shares of other walking profiles (``_share_frail``)
        return pct(float(value))  # never "0%" for a share that is not
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def _geojson(geom: shapely.Geometry) -> Any:
    return json.loads(shapely.to_geojson(geom))


def _payload(result: Result, data: MapData) -> dict[str, Any]:
    """The data the page's script draws (see ``_static/coverage15-map.js``)."""
    columns = [c for c in data.units.columns  # the popup gives the reason in Chinese
               if c not in ("geometry", "fill", "flag", "assessed", "reason")]
    bad = {"uncovered": "是", **{c: "否" for c in columns if c.startswith("pass_")}}
    features = []
    profiles, views = profile_views(result, data.units, data.share_column,
                                     colour=share_colour, no_data=NO_DATA_COLOUR, cell=_cell)
    for (_, row), view in zip(data.units.iterrows(), views, strict=True):
        if row.geometry is None or row.geometry.is_empty:
            continue
        share = row[data.share_column]
        if row["assessed"]:
            summary = f"{data.share_label} {_cell(data.share_column, share)}"
            summary += " · 未达标" if row["flag"] else " · 达标"
        elif row["flag"]:  # beyond the network, failing a count rule
            summary = "未达标（数量目标）· 步行目标未评估"
        else:
            summary = ("未评估：路网此处缺少道路" if row.get("network_complete") == "sparse"
                       else "未评估：路网仅覆盖部分" if row["network"] == "partial"
                       else "未评估：不在路网范围内")
        at = shapely.point_on_surface(row.geometry)
        features.append({
            "type": "Feature",
            "geometry": _geojson(row.geometry),
            "properties": {
                "name": row["jiezhen"], "district": row["district"],
                "search": f"{row['jiezhen']}（{row['district']}）",
                "fill": row["fill"], "flag": bool(row["flag"]),
                "assessed": bool(row["assessed"]), "summary": summary,
                "label_at": [round(at.y, 5), round(at.x, 5)],
                "row": [_cell(c, row[c]) for c in columns],
                "profiles": view,  # profile id -> [fill, flag, share]
            },
        })
    layers = []
    # ids are unique within a layer, not across layers
    areas = data.areas.set_index(["layer", "facility_id"]) if len(data.areas) else None
    colours = layer_colours(result.config.layers)
    for key, spec in result.config.layers.items():
        points = data.facilities[key]
        geoms: list[Any] = []
        rows = []
        for _, p in points.iterrows():
            index = -1
            area_km2 = None
            if areas is not None and (key, p["facility_id"]) in areas.index:
                found = areas.loc[(key, p["facility_id"])]
                index = len(geoms)
                geoms.append(_geojson(found.geometry))
                area_km2 = round(float(found["area_km2"]), 3)
            rows.append([round(p.geometry.y, 5), round(p.geometry.x, 5), str(p["name"]),
                         p["jiezhen"], p["district"],
                         None if pd.isna(p["snap_m"]) else round(float(p["snap_m"]), 1),
                         round(float(p["reach_m"]), 0), index, area_km2])
        union = data.unions.get(key)
        layers.append({"key": key, "label": spec.label,
                       "colour": colours[key],
                       "union": _geojson(union) if union is not None else None,
                       "unions": _map_profiles.unions_json(result, data.profile_unions, key),
                       "facilities": rows, "areas": geoms,
                       "top": spec.role == "centre"})  # the "1" of 1+N: never hidden
    west, south, east, north = data.bounds
    districts = None
    if data.districts is not None:
        districts = {"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {"name": name}, "geometry": _geojson(g)}
            for name, g in zip(data.districts["unit"], data.districts.geometry, strict=True)]}
    return {
        "units": {"type": "FeatureCollection", "features": features},
        "columns": [{"key": c, "label": data.labels.get(c, c), "bad": bad.get(c)}
                    for c in columns],
        "profiles": profiles,
        "districts": districts,
        "layers": layers,
        "colours": {"flag": FLAG_COLOUR, "noData": NO_DATA_COLOUR,
                    "selected": SELECTED_COLOUR},
        "bounds": [[south, west], [north, east]],
        "attribution": DATA_ATTRIBUTION,
        "text": _TEXT,
        "title": _title(result, data),
        "legend": _legend_html(result, data, [str(lyr["colour"]) for lyr in layers]),
    }


def config_file(result: Result) -> str:
    """The name of the config file that produced a run (for titles)."""
    source = result.config.source
    return source.name if source is not None else "（未保存的配置）"


def _title(result: Result, data: MapData) -> dict[str, str]:
    """The map's title and the line under it, as text (the page's script shows them so)."""
    a = result.config.analysis
    where = f" · {data.district}" if data.district else ""
    return {"heading": f"{result.config.name}{where}：{a.minutes:g} 分钟步行服务圈",
            "detail": (f"步速 {a.walk_speed_kmh:g} km/h · {a.minutes:g} 分钟 = 路网 "
                       f"{a.limit_m:,.0f} m · 配置 {config_file(result)}")}


def _legend_html(result: Result, data: MapData, colours: list[str]) -> str:
    esc = html_text
    rows = []
    for colour, lo, hi in zip(SHARE_COLOURS, SHARE_BINS[:-1], SHARE_BINS[1:], strict=True):
        note = "（达到目标）" if data.target is not None and lo >= data.target - 1e-9 else ""
        span = f"≥ {lo:.0%}" if hi > 1 else f"{lo:.0%} – {hi:.0%}"
        rows.append(f"<div class='row'><span class='sw' style='background:{colour}'></span>"
                    f"{span}{note}</div>")
    rows += unit_rows(data.units, no_data=NO_DATA_COLOUR, flag=FLAG_COLOUR,
                      sample=SHARE_COLOURS[-1])
    rows.append("<h2>设施与15分钟服务圈</h2>")
    for colour, (key, spec) in zip(colours, result.config.layers.items(), strict=True):
        rows.append(f"<div class='row'><span class='dot' style='background:{colour}'></span>"
                    f"<span class='sw' style='background:{colour}40;border-color:{colour}'>"
                    f"</span>{esc(spec.label)}：{facility_count_text(data, key)}</div>")
    rows.append(f"<div class='row'><span class='sw' style='border:2px dashed {SELECTED_COLOUR}'>"
                "</span>所选设施的服务圈（悬停或点击设施点）</div>")
    rows.append("<div class='row'><span class='dot' style='background:transparent;"
                "box-shadow:0 0 0 2px #777'></span>空心点：不在路网内，未计算服务圈</div>")
    rows.append("<div class='row'><span class='sw' style='border:0;border-top:2.5px solid "
                "#1a1a1a;height:0'></span>区界</div>")
    items = []
    for rule in result.rules:
        status = ""
        css = ""
        if rule.id in result.check.skipped:
            status, css = "（未评估：无该图层数据）", "skip"
        for citywide in result.check.citywide:
            if citywide.rule.id == rule.id:
                passed = bool(citywide.passed)
                status = f"（{'达标' if passed else '未达标'}：{citywide.value:g}）"
                css = "" if passed else "fail"
        items.append(f"<li class='{css}'>{esc(rule.label)}{esc(status)}</li>")
    return (f"<h2>街镇颜色：{esc(data.share_label)}</h2>" + "".join(rows)
            + "<h2>规划目标</h2><ul>" + "".join(items) + "</ul>"
            + f"<div class='note'>{DATA_ATTRIBUTION}</div>")


class _CoverageLayers(MacroElement):
    """Calls ``coverage15Map`` once the map and its feature groups exist."""

    _template = Template(
        "{% macro script(this, kwargs) %}\n"
        "coverage15Map({{ this._parent.get_name() }}, {{ this.groups }}, {{ this.overlays }},\n"
        "  {{ this.payload }});\n"
        "{% endmacro %}"
    )

    def __init__(self, groups: str, overlays: str, payload: str) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._name = "Coverage15Layers"
        self.groups = groups
        self.overlays = overlays
        self.payload = payload


def render_map(result: Result, *, options: MapOptions | None = None) -> folium.Map:
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
        Overlays (see :func:`overlay_names`): 街镇 coloured by coverage share with the
        uncovered ones outlined and labelled, their labels, district boundaries, and per
        facility layer its service-area union and clustered markers (hover or click a marker
        for its own service area). A title, legend, 街镇 search and layer control. Save it
        with ``.save(path)``; the file is self-contained unless ``assets="cdn"``.

    Raises
    ------
    ConfigError
        For an unknown district or a tile URL without attribution.
    """
    opts = options or MapOptions.from_config(result.config.map)
    data = map_data(result, district=opts.district, simplify_m=opts.simplify_m,
                    area_simplify_m=opts.area_simplify_m)
    west, south, east, north = data.bounds
    fmap = folium.Map(location=[(south + north) / 2, (west + east) / 2], zoom_start=12,
                      tiles=None, control_scale=False, prefer_canvas=False)
    if opts.tiles:
        try:
            # an attribution is HTML to Leaflet: no tags from the config or the command line
            # (entities such as &copy; still show as the sign they name)
            attribution = (None if opts.tiles_attribution is None else
                           opts.tiles_attribution.replace("<", "&lt;").replace(">", "&gt;"))
            folium.TileLayer(opts.tiles, attr=attribution, name="底图",
                             control=True).add_to(fmap)
        except ValueError as exc:
            msg = (f"tiles {opts.tiles!r}: {exc} (give a folium/xyzservices name, or a URL "
                   "template with its attribution, or 'none')")
            raise ConfigError(msg) from exc
    names = overlay_names(result)
    groups = []
    for i, name in enumerate(names):
        # the first union, every marker layer, and the proposed sites' service areas
        show = i <= 3 or i % 2 == 0 or name in proposal_overlays(result, opts.proposals)
        # the layer list shows its names as HTML: escaped (a layer's label is the config's)
        group = folium.FeatureGroup(name=html_text(name), show=show)
        group.add_to(fmap)
        groups.append(group)
    located = add_location_overlays(fmap, result, data)  # before the control lists it
    # a long list of overlays (five layers or more) folds into its button
    folium.LayerControl(collapsed=len(names) > 11, position="topright").add_to(fmap)
    areas = ", ".join(g.get_name() for g in groups[3::2])
    markers = ", ".join(g.get_name() for g in groups[4::2])
    js_groups = (f"{{units: {groups[0].get_name()}, flags: {groups[1].get_name()}, "
                 f"districts: {groups[2].get_name()}, areas: [{areas}], markers: [{markers}], "
                 f"located: [{', '.join(g for g, _ in located)}]}}")
    js_overlays = "{" + ", ".join([f"{script_json(n)}: {g.get_name()}"
                                   for n, g in zip(names, groups, strict=True)]
                                  + [f"{script_json(p['overlay'])}: {g}" for g, p in located]
                                  ) + "}"
    payload = _payload(result, data)
    mark_proposals(payload, result, data, opts.proposals)
    payload["located"] = [page for _, page in located]
    fmap.add_child(_CoverageLayers(js_groups, js_overlays, script_json(payload)))
    a = result.config.analysis
    meta = json.dumps({"config": result.config.name, "minutes": a.minutes,
                       "walk_speed_kmh": a.walk_speed_kmh, "district": opts.district},
                      ensure_ascii=False)
    root = fmap.get_root()
    assert isinstance(root, Figure)
    root.header.add_child(RawHTML(
        f"<meta name='coverage15' content='{html_text(meta)}'>"))
    root.title = html_text(f"{result.config.name} — coverage15")
    use_assets(fmap, mode=opts.assets)
    return fmap
