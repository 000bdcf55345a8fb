"""The interactive and static maps, checked in files and in headless Chromium.

Browser tests (marker ``browser``) open ``map.html`` from disk in Debian's ``chromium`` with
``chromedriver``; they skip locally without them and fail under CI. No network: the map
inlines Leaflet, and tile requests (when a basemap is on) fail harmlessly offline.
Screenshots go to the test's tmp folder and, when ``COVERAGE15_SCREENSHOT_DIR`` is set, there.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from coverage15 import ConfigError
from coverage15.cli import main
from coverage15.outputs._location_map import location_overlay_names, location_rows
from coverage15.outputs.maps import (
    FLAG_COLOUR,
    MapOptions,
    facility_count_text,
    map_data,
    overlay_names,
    render_map,
)
from coverage15.outputs.static_maps import png_districts, render_png

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "data" / "shanghai-central.toml"
MAX_MAP_BYTES = 8_000_000
CENTRAL_DISTRICTS = ["徐汇区", "普陀区", "杨浦区", "浦东新区", "虹口区", "长宁区", "静安区",
                     "黄浦区"]


@pytest.fixture(scope="module")
def offline_map(central_run, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The central map without a basemap, as ``coverage15 run --tiles none`` writes it."""
    path = tmp_path_factory.mktemp("map-none") / "map.html"
    render_map(central_run, options=MapOptions(tiles=None)).save(str(path))
    return path


@pytest.fixture(scope="module")
def central_maps(offline_map: Path, central_outputs: Path) -> dict[str, Path]:
    """The central map by basemap: none, and OpenStreetMap (``write_outputs``' default)."""
    return {"none": offline_map, "OpenStreetMap": central_outputs / "map.html"}


@pytest.fixture(scope="module")
def district_map(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``coverage15 map --district 黄浦区 --png`` run through the CLI."""
    out = tmp_path_factory.mktemp("map-district")
    assert main(["map", str(CONFIG), "--district", "黄浦区", "--out", str(out), "--png",
                 "-q"]) == 0
    return out / "map-黄浦区.html"


def _scripts(html: str) -> list[str]:
    return re.findall(r"<script[^>]*\bsrc=[\"']([^\"']+)", html)


def _stylesheets(html: str) -> list[str]:
    return re.findall(r"<link[^>]*\bhref=[\"']([^\"']+)", html)


# --- the HTML file -------------------------------------------------------------------------


def test_map_is_self_contained(offline_map: Path, central_outputs: Path):
    for path in (offline_map, central_outputs / "map.html"):
        html = path.read_text(encoding="utf-8")
        assert _scripts(html) == []
        assert _stylesheets(html) == []
        assert "Leaflet 1.9.4" in html
        assert "jquery" not in html.lower()
        assert "bootstrap" not in html.lower()
        assert "OpenStreetMap contributors" in html
        assert path.stat().st_size < MAX_MAP_BYTES
    # the default basemap is OpenStreetMap, with its attribution
    html = (central_outputs / "map.html").read_text(encoding="utf-8")
    assert "tile.openstreetmap.org" in html
    assert "tile.openstreetmap.org" not in offline_map.read_text(encoding="utf-8")


def test_map_title_names_config_speed_and_minutes(offline_map: Path, central_run):
    html = offline_map.read_text(encoding="utf-8")
    meta = re.search(r"<meta name='coverage15' content='([^']+)'", html)
    assert meta is not None
    info = json.loads(meta.group(1).replace("&quot;", '"'))
    assert info == {"config": central_run.config.name, "minutes": 15.0,
                    "walk_speed_kmh": 4.0, "district": None}
    assert "步速 4 km/h" in html
    assert "shanghai-central.toml" in html


def test_a_jiezhen_with_streets_missing_carries_the_caution_on_the_map(offline_map: Path):
    html = offline_map.read_text(encoding="utf-8")
    # once, in 平凉路街道's popup (the only 街镇 the central run cautions)
    assert html.count("路网此处缺少道路") == 2  # the summary and the reason
    assert "未评估：路网此处缺少道路" in html
    assert "因路网此处缺少道路（居民点 28% 距道路 50 米内，道路密度为中位数的 0.31 倍）" in html
    assert "缺路较多" in html  # the 路网完整度 column


def test_cdn_assets_option(central_run, tmp_path: Path):
    path = tmp_path / "cdn.html"
    render_map(central_run, options=MapOptions(tiles=None, district="黄浦区",
                                               assets="cdn")).save(str(path))
    html = path.read_text(encoding="utf-8")
    scripts = _scripts(html)
    assert any("leaflet@1.9.4/dist/leaflet.js" in s for s in scripts)
    assert any("leaflet.markercluster@1.5.3" in s for s in scripts)
    assert not any("jquery" in s or "bootstrap" in s for s in scripts)
    assert "coverage15Map" in html  # our own script stays inline


def test_other_tile_provider_and_bad_tiles(central_run, tmp_path: Path):
    path = tmp_path / "other.html"
    url = "https://tiles.example.org/{z}/{x}/{y}.png"
    render_map(central_run, options=MapOptions(tiles=url, tiles_attribution="© Example tiles",
                                               district="黄浦区")).save(str(path))
    html = path.read_text(encoding="utf-8")
    assert "tiles.example.org" in html
    assert "Example tiles" in html
    assert "OpenStreetMap contributors" in html  # the data's attribution stays
    with pytest.raises(ConfigError, match="tiles"):
        render_map(central_run, options=MapOptions(tiles=url))


def test_overlay_names(central_run):
    assert overlay_names(central_run) == [
        "街镇：1+N 达标居住点比例", "未达标街镇标注", "区界",
        "社区综合为老服务中心 15分钟服务圈", "社区综合为老服务中心 设施",
        "助餐服务点 15分钟服务圈", "助餐服务点 设施",
        "社区长者食堂 15分钟服务圈", "社区长者食堂 设施",
        "养老机构 15分钟服务圈", "养老机构 设施",
    ]


def test_a_district_map_shows_the_rows_that_name_or_land_in_it(central_run):
    """徐家汇街道's centre, geocoded 5 km away into 闵行区 七宝镇, is on 徐汇区's map (it names
    one of its 街镇), not on 黄浦区's; 徐汇区's map shows fewer rows than the overview."""
    def names(district: str) -> list[str]:
        units = central_run.units
        jiezhen = set(units.loc[units["district"] == district, "unit"])
        return [row[3] for row in location_rows(central_run, district, jiezhen)]

    centre = "上海市徐汇区徐家汇街道社区综合为老服务中心"
    assert centre in names("徐汇区")
    assert centre not in names("黄浦区")
    assert 0 < len(names("徐汇区")) < len(location_rows(central_run))
    xuhui = location_overlay_names(central_run, "徐汇区")
    assert xuhui[0].startswith("位置存疑的设施（")
    assert xuhui != location_overlay_names(central_run)


def test_facility_ids_may_repeat_across_layers(central_run, tmp_path: Path):
    """Ids are unique within a layer only: each marker still finds its own service area."""
    import copy

    result = copy.copy(central_run)
    result.facilities = dict(central_run.facilities)
    canteens = central_run.facilities["canteen"].copy()
    canteens["facility_id"] = [f"centre-{i}" for i in range(len(canteens))]  # clash on purpose
    result.facilities["canteen"] = canteens
    areas = central_run.service_areas.copy()
    on = areas["layer"] == "canteen"
    ids = dict(zip(central_run.facilities["canteen"]["facility_id"], canteens["facility_id"],
                   strict=True))
    areas.loc[on, "facility_id"] = areas.loc[on, "facility_id"].map(ids)
    result.service_areas = areas
    data = map_data(result)
    shown = data.areas.groupby("layer").size().to_dict()
    assert shown["canteen"] == int(canteens["on_network"].sum())
    render_map(result, options=MapOptions(tiles=None)).save(str(tmp_path / "map.html"))
    assert (tmp_path / "map.html").stat().st_size > 100_000


def test_district_data_is_restricted(central_run):
    data = map_data(central_run, district="黄浦区")
    assert set(data.units["district"]) == {"黄浦区"}
    assert len(data.units) == 10
    assert set(data.districts["unit"]) == {"黄浦区"}
    west, south, east, north = data.bounds
    assert 121.45 < west < east < 121.53
    assert 31.18 < south < north < 31.26
    # facilities: in the district, or serving it from a neighbouring one
    for key, points in data.facilities.items():
        outside = points.loc[points["district"] != "黄浦区"]
        assert outside["on_network"].all(), key
    # the legends tell the district's own centres (12) from the neighbours' serving it
    assert facility_count_text(data, "centre") == ("本区 12 处（路网内 12 处），"
                                                    "另有邻区服务本区的 6 处")
    assert facility_count_text(map_data(central_run), "centre") == "57 处在路网内（图上 76 处）"
    assert data.units["flag"].sum() == 8  # (6 before the doorstep stations' 10 minutes)
    with pytest.raises(ConfigError, match="did you mean '黄浦区'\\? use one of"):
        map_data(central_run, district="黄埔区")


def test_district_map_through_the_cli(district_map: Path, offline_map: Path):
    assert district_map.is_file()
    assert district_map.with_suffix(".png").is_file()
    html = district_map.read_text(encoding="utf-8")
    assert "黄浦区" in html
    assert "湖南路街道（徐汇区）" not in html  # a 街镇 of 徐汇区 is not on the map
    assert district_map.stat().st_size < offline_map.stat().st_size / 2


def test_unknown_district_is_a_one_line_error(data_dir: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]):
    assert main(["map", str(CONFIG), "--district", "黄埔区", "--out", str(tmp_path),
                 "-q"]) == 2
    err = capsys.readouterr().err
    assert "黄埔区" in err
    assert "黄浦区" in err
    assert "Traceback" not in err
    assert not list(tmp_path.glob("*.html"))


# --- static maps ---------------------------------------------------------------------------


def test_png_maps_are_written(central_outputs: Path, central_run):
    from PIL import Image

    assert png_districts(central_run) == sorted(CENTRAL_DISTRICTS)
    pngs = sorted(p.name for p in (central_outputs / "png").glob("*.png"))
    assert pngs == sorted(["overview.png", *(f"{d}.png" for d in CENTRAL_DISTRICTS)])
    with Image.open(central_outputs / "png" / "overview.png") as image:
        assert image.size == (1800, 1275)
        colours = {c for _, c in image.convert("RGB").getcolors(maxcolors=1 << 20) or []}
    red = tuple(int(FLAG_COLOUR[i:i + 2], 16) for i in (1, 3, 5))
    assert red in colours  # uncovered 街镇 are outlined in the flag colour


def test_png_without_cjk_font_still_renders(central_run, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch,
                                            caplog: pytest.LogCaptureFixture):
    from coverage15.outputs import static_maps

    monkeypatch.setattr(static_maps, "_font_checked", False)
    monkeypatch.setattr(static_maps, "CJK_FAMILIES", ("No Such Font",))
    monkeypatch.setattr(static_maps, "_CJK_FILES", re.compile(r"^$"))
    with caplog.at_level("WARNING", logger="coverage15"):
        path = render_png(central_run, tmp_path / "x.png", district="黄浦区", dpi=40)
    assert path.stat().st_size > 1000
    assert "no CJK font" in caplog.text


# --- in a real browser ---------------------------------------------------------------------


def _open(driver, path: Path) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(path.resolve().as_uri())
    WebDriverWait(driver, 30).until(
        lambda d: d.execute_script("return !!(window.L && window.__c15 && window.__c15.ready)"))


def _js_errors(driver) -> list[str]:
    errors = list(driver.execute_script("return window.__c15_errors || []"))
    for entry in driver.get_log("browser"):
        if entry["level"] != "SEVERE":
            continue
        # offline, basemap tiles cannot load: a network message, not a script error
        if entry.get("source") == "network" and "tile" in entry["message"]:
            continue
        errors.append(entry["message"])
    return errors


def _screenshot(driver, name: str, tmp_path: Path) -> Path:
    path = tmp_path / name
    driver.save_screenshot(str(path))
    target = os.environ.get("COVERAGE15_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(target) / name)
    assert path.stat().st_size > 20_000
    return path


def _toggle_every_overlay(driver, names: list[str]) -> None:
    from selenium.webdriver.common.by import By

    labels = driver.find_elements(By.CSS_SELECTOR, ".leaflet-control-layers-overlays label")
    by_name = {label.text.strip(): label for label in labels}
    assert list(by_name) == names
    on_map = "return window.__c15.map.hasLayer(window.__c15.overlays[arguments[0]])"
    for name in names:
        box = by_name[name].find_element(By.CSS_SELECTOR, "input[type=checkbox]")
        before = driver.execute_script(on_map, name)
        assert box.is_selected() == before, name
        box.click()
        assert driver.execute_script(on_map, name) is (not before), name
        box.click()
        assert driver.execute_script(on_map, name) is before, name


FLAGGED_UNIT_JS = """
var name = arguments[0], out = null;
window.__c15.units.eachLayer(function (layer) {
  var p = layer.feature.properties, path = layer._path;
  if (p.name === name) {
    out = {flag: p.flag, drawn: !!path && document.body.contains(path),
           stroke: path && path.getAttribute("stroke"), cls: path && path.getAttribute("class"),
           d: path ? path.getAttribute("d").length : 0};
  }
});
return out;
"""


@pytest.mark.browser
@pytest.mark.parametrize("tiles", ["none", "OpenStreetMap"])
def test_central_map_in_chromium(browser, tiles: str, central_maps: dict[str, Path],
                                 central_run, tmp_path: Path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser
    _open(driver, central_maps[tiles])
    shot = _screenshot(driver, "map-central.png" if tiles == "none" else "map-central-osm.png",
                       tmp_path)
    assert _js_errors(driver) == []

    # every overlay is in the layer control and can be switched off and on; the location
    # check's rows have overlays of their own, named with their counts (off at start)
    located = ["位置存疑的设施（79 处）", "位置存疑的居住点（373 处）"]
    assert location_overlay_names(central_run) == located
    names = overlay_names(central_run)
    _toggle_every_overlay(driver, [*names, *located])
    rings = driver.execute_script("""
        var s = window.__c15;
        return s.located.map(function (g) { return g.length; }).concat(
          [s.map.hasLayer(s.overlays[arguments[0]])]);""", located[0])
    assert rings == [79, 373, False]
    popup = driver.execute_script("""
        var hit = null;
        window.__c15.located[0].forEach(function (m) {
          if (m.getTooltip().getContent().indexOf("徐家汇街道社区综合为老服务中心") >= 0) {
            hit = m.getPopup().getContent(); }});
        return hit;""")
    assert "徐家汇街道" in popup
    assert "闵行区 七宝镇" in popup
    assert "5048 m" in popup
    assert "仍按落点计入" in popup
    legend_text = driver.find_element(By.CSS_SELECTOR, ".c15-legend").text
    assert "坐标与名称或区属不符的设施：79 处" in legend_text

    # uncovered 街镇 are drawn in the flag colour; 湖南路街道 is one (no centre in it)
    flagged = driver.execute_script("return window.__c15.flagged")
    assert len(flagged) == int(central_run.gap_report["uncovered"].fillna(False).sum())
    unit = driver.execute_script(FLAGGED_UNIT_JS, "湖南路街道")
    assert unit["flag"] is True
    assert unit["drawn"] is True
    assert unit["stroke"] == FLAG_COLOUR
    assert "c15-flagged" in str(unit["cls"])
    assert int(str(unit["d"])) > 20
    assert len(driver.find_elements(By.CSS_SELECTOR, "path.c15-flagged")) == len(flagged)

    # centres are drawn above the meal points that often share their address
    panes = driver.execute_script("""
        var m = window.__c15.markers, z = function (p) {
          return Number(window.__c15.map.getPane(p).style.zIndex); };
        return {centre: z(m.centre[0].options.pane), meal: z(m.meal_point[0].options.pane)};""")
    assert panes["centre"] > panes["meal"]
    # and so are their clusters, above every other layer's clusters (and centres above both)
    clusters = driver.execute_script("""
        var c = window.__c15.clusters, z = function (p) {
          return Number(window.__c15.map.getPane(p).style.zIndex); };
        return {centre: z(c.centre.options.clusterPane),
                meal: z(c.meal_point.options.clusterPane)};""")
    assert panes["centre"] > clusters["centre"] > clusters["meal"]

    # the title and legend say what produced the map
    title = driver.find_element(By.CSS_SELECTOR, ".c15-title").text
    assert central_run.config.name in title
    assert "4 km/h" in title
    assert "15 分钟" in title
    legend = driver.find_element(By.CSS_SELECTOR, ".c15-legend").text
    assert "未达标街镇" in legend
    assert "规划目标" in legend
    # the legend folds away and back; the studied area was fitted clear of it
    body = driver.find_element(By.CSS_SELECTOR, ".c15-legend-body")
    toggle = driver.find_element(By.CSS_SELECTOR, ".c15-legend-toggle")
    toggle.click()
    assert not body.is_displayed()
    toggle.click()
    assert body.is_displayed()
    clear = driver.execute_script("""
        var s = window.__c15, m = s.map, r = s.legend.getBoundingClientRect();
        var west = m.latLngToContainerPoint(L.latLngBounds(s.data.bounds).getSouthWest());
        return west.x >= r.right - m.getContainer().getBoundingClientRect().left;""")
    assert clear is True
    assert "OpenStreetMap" in driver.find_element(
        By.CSS_SELECTOR, ".leaflet-control-attribution").text

    # search by 街镇 name opens its gap-report row
    box = driver.find_element(By.CSS_SELECTOR, ".leaflet-control-search input")
    box.send_keys("湖南路")
    tip = WebDriverWait(driver, 10).until(
        lambda d: next((t for t in d.find_elements(By.CSS_SELECTOR, ".search-tip")
                        if "湖南路街道" in t.text), None))
    tip.click()
    popup = WebDriverWait(driver, 10).until(  # shown once its fade-in ends
        lambda d: next((p.text for p in d.find_elements(By.CSS_SELECTOR,
                                                         ".leaflet-popup-content")
                        if "湖南路街道" in p.text), None))
    assert "未达标" in popup
    assert "社区综合为老服务中心数量" in popup

    # clicking a facility shows its own service area
    shown = driver.execute_async_script("""
      var done = arguments[arguments.length - 1];
      var s = window.__c15;
      var rows = s.data.layers[0].facilities;
      var i = rows.findIndex(function (r) { return r[7] >= 0; });
      var marker = s.markers[s.data.layers[0].key][i];
      s.clusters[s.data.layers[0].key].zoomToShowLayer(marker, function () {
        marker.fire("click");
        done([s.selected.getLayers().length,
              document.querySelectorAll("path.c15-selected").length,
              !!document.querySelector(".leaflet-popup-content .c15-fac-type")]);
      });
    """)
    assert shown == [1, 1, True]
    WebDriverWait(driver, 10).until(  # the search's popup has closed and faded out
        lambda d: len(d.find_elements(By.CSS_SELECTOR, ".leaflet-popup")) == 1)
    _screenshot(driver, shot.name.replace(".png", "-facility.png"), tmp_path)
    assert _js_errors(driver) == []



def test_map_carries_each_layers_areas_at_every_profile(central_run):
    """Per layer: the verdict profile's union and one at each slower profile, nested."""
    import shapely

    from coverage15.outputs.maps import _payload

    data = map_data(central_run)
    payload = _payload(central_run, data)
    assert [p["id"] for p in payload["profiles"]] == ["standard", "elderly", "frail"]
    for layer in payload["layers"]:
        assert set(layer["unions"]) == {"elderly", "frail"}, layer["key"]
        standard = shapely.from_geojson(json.dumps(layer["union"]))
        elderly = shapely.from_geojson(json.dumps(layer["unions"]["elderly"]))
        frail = shapely.from_geojson(json.dumps(layer["unions"]["frail"]))
        assert frail.area < elderly.area < standard.area, layer["key"]
        # within the display simplification (10 m) of the faster profile's areas
        grown = standard.buffer(20 / 111_000)
        assert grown.contains(elderly)
        assert elderly.buffer(20 / 111_000).contains(frail)
        assert central_run.profile_unions[layer["key"]]["elderly"].area < (
            central_run.unions[layer["key"]].area)


PROFILE_AREAS_JS = """
var s = window.__c15, out = {};
function area(g) {  // shoelace, in square degrees: enough to compare
  var a = 0;
  (g.type === "Polygon" ? [g.coordinates] : g.coordinates).forEach(function (poly) {
    poly.forEach(function (ring, k) {
      var t = 0;
      for (var i = 0; i < ring.length - 1; i++) {
        t += ring[i][0] * ring[i + 1][1] - ring[i + 1][0] * ring[i][1];
      }
      a += (k === 0 ? 1 : -1) * Math.abs(t) / 2;
    });
  });
  return a;
}
s.data.layers.forEach(function (layer) {
  var drawn = s.areas[layer.key].getLayers();
  out[layer.key] = {n: drawn.length,
                    same: drawn.length === 1 && drawn[0].feature.geometry === (
                      s.profile in layer.unions ? layer.unions[s.profile] : layer.union),
                    span: drawn.length ? area(drawn[0].feature.geometry) : 0};
});
out.fills = s.data.units.features.map(function (f) {
  var p = f.properties.profiles; return p && p[s.profile] ? p[s.profile][0] : f.properties.fill;
});
out.drawnFills = [];
s.units.eachLayer(function (l) { out.drawnFills.push(l.options.fillColor); });
return out;
"""


@pytest.mark.browser
def test_profile_switch_shrinks_the_service_areas_in_chromium(browser, offline_map: Path,
                                                                tmp_path: Path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver = browser
    _open(driver, offline_map)
    before = driver.execute_script(PROFILE_AREAS_JS)
    select = Select(driver.find_element(By.CSS_SELECTOR, "select.c15-profile-select"))
    assert [o.get_attribute("value") for o in select.options] == [
        "standard", "elderly", "frail"]
    spans = {"standard": before}
    for profile in ("elderly", "frail"):
        select.select_by_value(profile)
        assert driver.execute_script("return window.__c15.profile") == profile
        spans[profile] = driver.execute_script(PROFILE_AREAS_JS)
    _screenshot(driver, "map-central-frail.png", tmp_path)
    layers = [k for k in before if k not in ("fills", "drawnFills")]
    for key in layers:
        # the drawn areas are the chosen profile's, one shape per layer, smaller each time
        assert [spans[p][key]["n"] for p in spans] == [1, 1, 1], key
        assert all(spans[p][key]["same"] for p in spans), key
        assert (spans["standard"][key]["span"] > spans["elderly"][key]["span"]
                > spans["frail"][key]["span"]), key
    # the 街镇 are recoloured with the areas: the drawn fills are the profile's
    assert spans["frail"]["drawnFills"] == spans["frail"]["fills"]
    assert spans["frail"]["fills"] != before["fills"]
    select.select_by_value("standard")
    assert driver.execute_script(PROFILE_AREAS_JS)[layers[0]]["span"] == before[layers[0]]["span"]
    assert _js_errors(driver) == []

@pytest.mark.browser
def test_district_map_in_chromium(browser, district_map: Path, tmp_path: Path):
    driver = browser
    _open(driver, district_map)
    _screenshot(driver, "map-黄浦区.png", tmp_path)
    assert _js_errors(driver) == []
    districts = driver.execute_script("""
      var out = {};
      window.__c15.units.eachLayer(function (l) { out[l.feature.properties.district] = 1; });
      return Object.keys(out);
    """)
    assert districts == ["黄浦区"]
    # zoomed to the district: its 街镇 fill the view
    view = driver.execute_script("""
      var b = window.__c15.map.getBounds(), u = window.__c15.units.getBounds();
      return [b.contains(u), window.__c15.map.getZoom()];
    """)
    assert view[0] is True
    assert view[1] >= 13
    assert "黄浦区" in driver.find_element("css selector", ".c15-title").text


# --- hostile text is shown, never run ------------------------------------------------------

# 街镇 names come from OpenStreetMap (anyone can edit it), labels and the title from configs
HOSTILE = {
    "unit": '<img src=x onerror="window.__pwned=1">外滩街道',
    "unit2": "<script>window.__pwned2=1</script>南京东路街道",
    "reason": '<img src=x onerror="window.__pwned3=1">原因',
    "facility": '<img src=x onerror="window.__pwned4=1">为老服务中心',
    "layer": ('</script><script>window.__pwned5=1</script>'
              '<img src=x onerror="window.__pwned6=1">助餐服务点'),
    "title": '<img src=x onerror="window.__pwned7=1">配置</title><script>window.__pwned8=1'
             "</script>",
}
PWNED = [f"__pwned{i}" for i in ("", *range(2, 9))]


@pytest.fixture(scope="module")
def hostile_map(central_run, tmp_path_factory: pytest.TempPathFactory):
    """The central map with script in a 街镇's name and reason, a facility, a layer, the title."""
    import copy
    import dataclasses

    result = copy.copy(central_run)
    rename = {"外滩街道": HOSTILE["unit"], "南京东路街道": HOSTILE["unit2"]}
    gap = central_run.gap_report.copy()
    gap["jiezhen"] = gap["jiezhen"].replace(rename)
    gap.loc[gap["jiezhen"] == HOSTILE["unit"], "reason_zh"] = HOSTILE["reason"]
    result.gap_report = gap
    units = central_run.units.copy()
    units["unit"] = units["unit"].replace(rename)
    result.units = units
    result.facilities = dict(central_run.facilities)
    centres = central_run.facilities["centre"].copy()
    centres["jiezhen"] = centres["jiezhen"].replace(rename)
    first = centres.index[centres["on_network"].to_numpy()][0]
    centres.loc[first, "name"] = HOSTILE["facility"]
    result.facilities["centre"] = centres
    config = central_run.config
    layers = {key: dataclasses.replace(spec, label=HOSTILE["layer"]) if key == "meal_point"
              else spec for key, spec in config.layers.items()}
    result.config = dataclasses.replace(config, name=HOSTILE["title"], layers=layers)
    path = tmp_path_factory.mktemp("map-hostile") / "map.html"
    render_map(result, options=MapOptions(tiles=None)).save(str(path))
    return result, path


def test_hostile_text_does_not_close_the_script(hostile_map):
    _, path = hostile_map
    html = path.read_text(encoding="utf-8")
    for text in HOSTILE.values():
        assert text not in html
    # no tag of the data's in the file: escaped for HTML, or \u003c in the script's JSON
    assert "<img" not in html
    assert "<script>window" not in html
    assert "<title>&lt;img" in html


def test_a_tile_attribution_is_text(central_run, tmp_path: Path):
    path = tmp_path / "tiles.html"
    render_map(central_run, options=MapOptions(
        tiles="https://tiles.example.org/{z}/{x}/{y}.png", district="黄浦区",
        tiles_attribution='&copy; <img src=x onerror="window.__pwned=1">Example')).save(str(path))
    html = path.read_text(encoding="utf-8")
    assert "<img" not in html
    # (folium writes the options as JSON with & as \u0026): an entity still names its sign
    assert "&copy; &lt;img src=x" in html.replace("\\u0026", "&")


HOSTILE_TEXTS_JS = """
var s = window.__c15, out = {tooltips: [], flags: []};
s.units.eachLayer(function (layer) {
  var name = layer.feature.properties.name;
  if (name.indexOf("<") >= 0) {
    layer.openTooltip(layer.getBounds().getCenter());
    out.tooltips.push(layer.getTooltip().getElement().textContent);
  }
});
document.querySelectorAll(".c15-flag-label").forEach(function (e) {
  out.flags.push(e.textContent);
});
out.pwned = arguments[0].filter(function (k) { return window[k] !== undefined; });
out.images = document.querySelectorAll("img[src='x']").length;
out.scripts = Array.prototype.filter.call(document.scripts, function (e) {
  return e.textContent.indexOf("__pwned") >= 0 && e.textContent.indexOf("coverage15Map") < 0;
}).length;
return out;
"""


@pytest.mark.browser
def test_hostile_names_are_shown_as_text_in_chromium(browser, hostile_map, tmp_path: Path):
    import time

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    result, path = hostile_map
    driver = browser
    _open(driver, path)

    # the layer list names the hostile layer as text
    labels = driver.find_elements(By.CSS_SELECTOR, ".leaflet-control-layers-overlays label")
    assert [label.text.strip() for label in labels] == [*overlay_names(result),
                                                         *location_overlay_names(result)]
    assert driver.find_elements(By.CSS_SELECTOR, ".leaflet-control-layers img") == []
    title = driver.find_element(By.CSS_SELECTOR, ".c15-title").text
    assert HOSTILE["title"] in title
    assert driver.title == f"{HOSTILE['title']} — coverage15"
    assert HOSTILE["layer"] in driver.find_element(By.CSS_SELECTOR, ".c15-legend").text

    # typing part of a name lists the hostile 街镇 as its text
    box = driver.find_element(By.CSS_SELECTOR, ".leaflet-control-search input")
    box.send_keys("外滩")
    tip = WebDriverWait(driver, 10).until(
        lambda d: next((t for t in d.find_elements(By.CSS_SELECTOR, ".search-tip")
                        if "外滩街道（黄浦区）" in t.text), None))  # not 北外滩街道
    assert tip.text == f"{HOSTILE['unit']}（黄浦区）"
    assert driver.find_elements(By.CSS_SELECTOR, ".search-tip *") == []
    tip.click()
    popup = WebDriverWait(driver, 10).until(
        lambda d: next((p.text for p in d.find_elements(By.CSS_SELECTOR,
                                                         ".leaflet-popup-content")
                        if "外滩街道 黄浦区" in p.text), None))
    assert HOSTILE["unit"] in popup
    assert HOSTILE["reason"] in popup
    box.clear()
    box.send_keys("南京东路")
    tip = WebDriverWait(driver, 10).until(
        lambda d: next((t for t in d.find_elements(By.CSS_SELECTOR, ".search-tip")
                        if "南京东路街道" in t.text), None))
    assert tip.text == f"{HOSTILE['unit2']}（黄浦区）"

    # the facility's popup and tooltip
    facility = driver.execute_async_script("""
      var done = arguments[arguments.length - 1], s = window.__c15;
      var rows = s.data.layers[0].facilities;
      var i = rows.findIndex(function (r) { return r[2].indexOf("<img") === 0; });
      var marker = s.markers[s.data.layers[0].key][i];
      s.clusters[s.data.layers[0].key].zoomToShowLayer(marker, function () {
        marker.openTooltip();
        var tooltip = marker.getTooltip().getElement().textContent;
        marker.fire("click");
        marker.openPopup();
        done([tooltip, marker.getPopup().getElement().textContent]);
      });
    """)
    assert facility[0] == HOSTILE["facility"]
    assert HOSTILE["facility"] in facility[1]

    # the 街镇's tooltips and flag labels
    time.sleep(0.5)  # a broken image's onerror would have run by now
    texts = driver.execute_script(HOSTILE_TEXTS_JS, PWNED)
    assert len(texts["tooltips"]) == 2
    assert any(t.startswith(HOSTILE["unit"]) for t in texts["tooltips"])
    assert any(t.startswith(HOSTILE["unit2"]) for t in texts["tooltips"])
    for flag in texts["flags"]:
        assert "<img" not in flag or HOSTILE["unit"] in flag or HOSTILE["unit2"] in flag
    assert texts["pwned"] == []
    assert texts["images"] == 0
    assert texts["scripts"] == 0
    _screenshot(driver, "map-hostile.png", tmp_path)
    assert _js_errors(driver) == []


@pytest.fixture(scope="module")
def recommendation_map(central_run, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``coverage15 recommend … --layer centre --k 5 --tiles none``: the map after the sites."""
    from coverage15.planning.recommend import recommend, write_recommendation
    from coverage15.planning.scenarios import whatif

    out = tmp_path_factory.mktemp("recommend-map")
    rec = recommend(central_run, layer="centre", k=5)
    after = whatif(central_run, layer="centre", add=rec.proposals, added_label="拟建")
    write_recommendation(rec, central_run, out, after=after,
                         map_options=MapOptions(tiles=None))
    return out / "map.html"


@pytest.mark.browser
def test_recommendation_map_numbers_the_sites_and_shows_their_areas(
        browser, recommendation_map: Path, tmp_path: Path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser
    _open(driver, recommendation_map)
    _screenshot(driver, "map-recommend.png", tmp_path)
    assert _js_errors(driver) == []
    # five numbered sites, in order, and their five service areas on at start
    numbers = [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".c15-site div")]
    assert sorted(numbers) == ["1", "2", "3", "4", "5"]
    assert len(driver.find_elements(By.CSS_SELECTOR, "path.c15-site-area")) == 5
    assert driver.execute_script(
        "return window.__c15.map.hasLayer(window.__c15.overlays[arguments[0]])",
        "拟建社区综合为老服务中心 15分钟服务圈") is True
    # the title and legend say the map shows the state after the proposals
    assert "拟建 5 处后" in driver.find_element(By.CSS_SELECTOR, ".c15-title").text
    legend = driver.find_element(By.CSS_SELECTOR, ".c15-legend").text
    assert "推荐方案（拟建后）" in legend
    assert "拟建后的状况" in legend
    # flag labels never overlap: at zoom 13 (where they show) the ones that would are thinned
    overlaps = driver.execute_script("""
        var s = window.__c15;
        s.map.setZoom(13, {animate: false});
        s.thinLabels();
        var r = Array.prototype.filter.call(document.querySelectorAll(".c15-flag-label"),
          function (e) { return !e.classList.contains("c15-thinned") &&
                                e.getBoundingClientRect().width > 0; })
          .map(function (e) { return e.getBoundingClientRect(); });
        var n = 0;
        for (var i = 0; i < r.length; i++) { for (var j = i + 1; j < r.length; j++) {
          if (r[i].left < r[j].right && r[i].right > r[j].left && r[i].top < r[j].bottom &&
              r[i].bottom > r[j].top) { n++; } } }
        return [n, r.length];""")
    assert overlaps[0] == 0
    assert overlaps[1] > 0
    # a click on site 1 tells where it is and what it changes
    driver.execute_script("""
        var m = window.__c15.markers.centre_added.find(function (m) {
          return m.options.title === "拟建第 1 处"; });
        m.fire("click"); m.openPopup();""")
    popup = WebDriverWait(driver, 10).until(
        lambda d: next((p.text for p in d.find_elements(By.CSS_SELECTOR,
                                                         ".leaflet-popup-content")
                        if "拟建第 1 处" in p.text), None))
    assert "拟建第 1 处：嘉善路与建国西路交叉口" in popup
    assert "天平路街道 27% → 81%" in popup
    assert "由此达标的街镇：瑞金二路街道" in popup


def test_png_labels_never_overlap():
    """Three labels on one spot: the second and third are moved clear, none overlaps."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from coverage15.outputs.static_maps import place_labels

    fig = Figure(figsize=(4, 3), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 10)
    labels = [(5.0, 5.0, name, {"fontsize": 10}) for name in ("芷江西路街道", "宝山路街道",
                                                               "共和新路街道")]
    labels.append((5.0, 5.0, "第四个", {"fontsize": 10}))
    labels.append((5.0, 5.0, "第五个", {"fontsize": 10}))
    labels.append((5.0, 5.0, "第六个", {"fontsize": 10}))
    kept = place_labels(fig, ax, labels)
    renderer = FigureCanvasAgg(fig).get_renderer()
    boxes = [t.get_window_extent(renderer) for t in kept]
    assert len(kept) == 5  # on the spot, up, down, twice up, twice down; the sixth is left out
    assert [t.get_text() for t in kept][:2] == ["芷江西路街道", "宝山路街道"]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])


def test_central_district_png_labels_do_not_overlap(central_run):
    """静安区's map names every 街镇: no two names overlap (芷江西路 / 宝山路 did)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from coverage15.outputs.static_maps import _draw

    fig = Figure(figsize=(12, 8.5), dpi=60)
    _draw(fig, central_run, map_data(central_run, district="静安区"), label_all=True)
    ax = fig.axes[0]
    renderer = FigureCanvasAgg(fig).get_renderer()
    boxes = [t.get_window_extent(renderer) for t in ax.texts if "街道" in t.get_text()
             or "镇" in t.get_text()]
    assert len(boxes) >= 10
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
