"""The live what-if app (``coverage15 serve``): engine equal to whatif, every endpoint, security."""

from __future__ import annotations

import io
import json
import threading

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from starlette.testclient import TestClient

from configs import CONFIG
from coverage15.app.engine import Base, LayerEdit, Scenario, Site
from coverage15.app.server import create_app

TIANPING = "天平路街道"


@pytest.fixture(scope="module")
def base(central_run):
    return Base(central_run)


@pytest.fixture(scope="module")
def tianping(central_run):
    shape = central_run.units.loc[central_run.units["unit"] == TIANPING].geometry.iloc[0]
    point = shape.representative_point()
    return float(point.x), float(point.y)


@pytest.fixture
def app(base, tmp_path):
    return create_app(base, tmp_path / "scenarios")


@pytest.fixture
def client(app):
    with TestClient(app) as c:
        yield c


def _row(state, name):
    return next(r for r in state["gap_report"] if r["jiezhen"] == name)


# --- engine ----------------------------------------------------------------------------------


def test_base_scenario_equals_the_run(base, central_run):
    ev = base.evaluate(Scenario())
    pd.testing.assert_frame_equal(ev.gap_report, central_run.gap_report)
    pd.testing.assert_frame_equal(ev.district_report, central_run.district_report)


def test_edits_equal_whatif(base, central_run, tianping):
    from coverage15.planning.scenarios import whatif

    closed = str(central_run.layers["centre"].points["facility_id"].iloc[3])
    sites = (Site("new-1", "新中心", *tianping),
             Site("new-2", "新中心二", tianping[0] + 0.01, tianping[1] + 0.005))
    previous = base.evaluate(Scenario())
    scenario = Scenario()
    for i in range(len(sites)):  # step by step, each from the one before (the app's path)
        scenario = scenario.with_edit("centre", LayerEdit(added=sites[: i + 1]))
        previous = base.evaluate(scenario, previous)
    scenario = scenario.with_edit("centre", LayerEdit(frozenset({closed}), sites))
    ev = base.evaluate(scenario, previous)
    add = gpd.GeoDataFrame({"facility_id": [s.id for s in sites],
                            "name": [s.name for s in sites]},
                           geometry=[shapely.Point(s.lon, s.lat) for s in sites], crs=4326)
    w = whatif(central_run, layer="centre", add=add, remove=[closed])
    pd.testing.assert_frame_equal(ev.gap_report, w.after.gap_report[ev.gap_report.columns])
    pd.testing.assert_frame_equal(ev.district_report,
                                  w.after.district_report[ev.district_report.columns])
    assert [c.value for c in ev.check.citywide] == [c.value for c in w.after.check.citywide]
    # and straight from the base (a reopened scenario) gives the same
    again = base.evaluate(scenario)
    pd.testing.assert_frame_equal(again.gap_report, ev.gap_report)


def test_engine_refuses_bad_scenarios(base):
    from coverage15._errors import ConfigError

    with pytest.raises(ConfigError, match="not in this run"):
        base.evaluate(Scenario({"nope": LayerEdit(added=(Site("a", "a", 121.45, 31.2),))}))
    with pytest.raises(ConfigError, match="no facility"):
        base.evaluate(Scenario({"centre": LayerEdit(removed=frozenset({"x"}))}))
    with pytest.raises(ConfigError, match="outside the study area"):
        base.evaluate(Scenario({"centre": LayerEdit(added=(Site("a", "a", 0.0, 0.0),))}))


def test_covered_areas_update_by_the_changed_pieces():
    """A strip 10 m long: [0, 4] and [3, 6] covered (6 m²) become [3, 6] and [5, 8] (5 m²)."""
    from coverage15.app._cover import update_covered

    a, kept, b = shapely.box(0, 0, 4, 1), shapely.box(3, 0, 6, 1), shapely.box(5, 0, 8, 1)
    strip, far = shapely.box(0, 0, 10, 1), shapely.box(100, 0, 110, 1)
    shapes = np.array([strip, far], dtype=object)
    where = ((shapes, shapely.bounds(shapes)),)
    old, new = np.array([a, kept], dtype=object), np.array([kept, b], dtype=object)
    (after,) = update_covered(old, new, (np.array([6.0, 3.0]),), where)
    np.testing.assert_allclose(after, [5.0, 3.0])  # the far shape is not touched
    (back,) = update_covered(new, old, (after,), where)
    np.testing.assert_allclose(back, [6.0, 3.0])
    twice = np.array([kept, kept, a], dtype=object)  # the same site added twice: no change
    (same,) = update_covered(old, twice, (np.array([6.0, 3.0]),), where)
    np.testing.assert_allclose(same, [6.0, 3.0])
    assert update_covered(old, old[::-1].copy(), (after,), where) is None


# --- API -------------------------------------------------------------------------------------


def test_page_and_base(client):
    page = client.get("/")
    assert page.status_code == 200
    assert "c15session" in page.cookies
    assert "innerHTML" not in client.get("/static/app.js").text
    info = client.get("/api/base").json()
    assert [layer["key"] for layer in info["layers"]] == ["centre", "meal_point", "canteen",
                                                          "care_home"]
    assert [(p["id"], p["verdict"], p["suffix"]) for p in info["profiles"]] == [
        ("standard", True, ""), ("elderly", False, "_elderly"), ("frail", False, "_frail")]
    assert info["walking_rules"] == ["one_plus_n"]
    units = client.get("/api/units").json()
    assert units["type"] == "FeatureCollection"
    assert {f["properties"]["jiezhen"] for f in units["features"]} >= {TIANPING}
    areas = client.get("/api/areas/centre").json()
    assert len(areas["features"]) > 20
    assert client.get("/api/areas/nope").status_code == 404


def test_add_move_close_reopen_undo_reset(client, tianping, central_run):
    start = client.get("/api/state").json()
    before = _row(start, TIANPING)["centre_demand_share"]
    lon, lat = tianping
    added = client.post("/api/edit", json={"op": "add", "layer": "centre", "lon": lon,
                                           "lat": lat, "name": "<b>新</b>"})
    assert added.status_code == 200, added.text
    body = added.json()
    assert body["site"]["snap"]["m"] < 500
    assert body["site"]["area"]["features"]
    assert body["site"]["name"] == "<b>新</b>"  # data, shown as text by the page
    after = _row(body, TIANPING)["centre_demand_share"]
    assert after > before
    changed = {c["jiezhen"]: c for c in body["changes"]}
    assert changed[TIANPING]["values"]["centre_demand_share"] == {"before": before,
                                                                  "after": after}
    assert changed[TIANPING]["values"]["centre_count"]["after"] == (
        changed[TIANPING]["values"]["centre_count"]["before"] + 1)
    assert body["district_changes"]
    site = body["site"]["id"]
    moved = client.post("/api/edit", json={"op": "move", "layer": "centre", "id": site,
                                           "lon": lon + 0.002, "lat": lat}).json()
    assert moved["edits"]["centre"]["added"][0]["lon"] == pytest.approx(lon + 0.002)
    base_id = str(central_run.layers["centre"].points["facility_id"].iloc[0])
    closed = client.post("/api/edit", json={"op": "close", "layer": "centre", "id": base_id})
    assert closed.json()["edits"]["centre"]["removed"] == [base_id]
    again = client.post("/api/edit", json={"op": "close", "layer": "centre", "id": base_id})
    assert again.status_code == 400
    reopened = client.post("/api/edit", json={"op": "reopen", "layer": "centre", "id": base_id})
    assert reopened.json()["edits"]["centre"]["removed"] == []
    moved_base = client.post("/api/edit", json={"op": "move", "layer": "centre", "id": base_id,
                                                "lon": lon, "lat": lat + 0.001}).json()
    assert moved_base["site"]["id"] == f"moved-{base_id}"
    undone = client.post("/api/undo").json()
    assert undone["edits"]["centre"]["removed"] == []
    reset = client.post("/api/reset").json()
    assert reset["edits"] == {}
    assert _row(reset, TIANPING)["centre_demand_share"] == before
    assert client.get("/api/snap", params={"lon": lon, "lat": lat}).json()["snap"]


def test_profile_verdicts_and_shares(client, central_run):
    """Every profile's shares are in the rows, and its verdicts beside them, in row order."""
    state = client.get("/api/state").json()
    rows, verdicts = state["gap_report"], state["profile_verdicts"]
    assert set(verdicts) == {"standard", "elderly", "frail"}
    assert verdicts["standard"] == [r["uncovered"] for r in rows]
    gap = central_run.gap_report
    assert [r["one_plus_n_share_frail"] for r in rows] == [
        None if pd.isna(v) else v for v in gap["one_plus_n_share_frail"]]
    for i, r in enumerate(rows):  # slower walkers reach less: a failing 街镇 still fails
        if r["uncovered"]:
            assert verdicts["frail"][i] is True
            assert verdicts["elderly"][i] is True
        if r["network"] != "full" and not r["uncovered"]:
            assert verdicts["frail"][i] is None
        failing = (r["fails_at_profiles"] or "").split(",")
        if r["uncovered"] is False:
            assert verdicts["frail"][i] is ("frail" in failing)
    assert any(r["uncovered"] is False and verdicts["frail"][i] for i, r in enumerate(rows))


@pytest.mark.parametrize(("payload", "message"), [
    ({"op": "add", "layer": "nope", "lon": 121.45, "lat": 31.2}, "layer must be"),
    ({"op": "add", "layer": "centre", "lon": "x", "lat": 31.2}, "finite number"),
    (b'{"op": "add", "layer": "centre", "lon": Infinity, "lat": 31.2}', "finite number"),
    ({"op": "add", "layer": "centre", "lon": 100.0, "lat": 10.0}, "outside the study area"),
    ({"op": "add", "layer": "centre", "lon": 121.45, "lat": 31.2, "name": "x" * 200},
     "at most"),
    ({"op": "fly", "layer": "centre"}, "op must be"),
    ({"op": "close", "layer": "centre", "id": "no-such"}, "no open facility"),
])
def test_bad_edits_change_nothing(client, payload, message):
    state = client.get("/api/state").json()
    answer = (client.post("/api/edit", content=payload) if isinstance(payload, bytes)
              else client.post("/api/edit", json=payload))
    assert answer.status_code == 400
    assert message in answer.json()["error"]
    assert client.get("/api/state").json() == state


def test_bad_json(client):
    assert client.post("/api/edit", content=b"{nope").status_code == 400
    assert client.post("/api/edit", content=b"[1]").status_code == 400


def test_sessions_are_separate_and_concurrent(app, tianping):
    lon, lat = tianping
    clients = [TestClient(app) for _ in range(4)]
    errors = []

    def edit(i, c):
        try:
            for j in range(2):
                r = c.post("/api/edit", json={"op": "add", "layer": "centre",
                                              "lon": lon + 0.002 * i, "lat": lat + 0.001 * j})
                assert r.status_code == 200, r.text
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=edit, args=(i, c)) for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i, c in enumerate(clients):
        added = c.get("/api/state").json()["edits"]["centre"]["added"]
        assert [a["lon"] for a in added] == [pytest.approx(lon + 0.002 * i)] * 2
    assert TestClient(app).get("/api/state").json()["edits"] == {}


def test_save_list_open_compare(client, app, tianping):
    lon, lat = tianping
    client.post("/api/edit", json={"op": "add", "layer": "centre", "lon": lon, "lat": lat})
    assert client.put("/api/scenarios/tianping-1").status_code == 200
    listed = client.get("/api/scenarios").json()["scenarios"]
    assert [s["name"] for s in listed] == ["tianping-1"]
    assert listed[0]["added"] == 1
    other = TestClient(app)  # another browser (or after a restart: the file is on disk)
    opened = other.post("/api/scenarios/tianping-1/open").json()
    assert opened["name"] == "tianping-1"
    assert len(opened["edits"]["centre"]["added"]) == 1
    assert TIANPING in [c["jiezhen"] for c in opened["changes"]]
    saved = other.get("/api/scenarios/tianping-1").json()
    assert saved["edits"] == opened["edits"]
    compared = other.get("/api/compare", params={"a": "base", "b": "tianping-1"}).json()
    assert TIANPING in [c["jiezhen"] for c in compared["changes"]]
    restarted = create_app(app.state.app.base, app.state.app.store.folder)
    assert [s["name"] for s in TestClient(restarted).get("/api/scenarios").json()[
        "scenarios"]] == ["tianping-1"]


@pytest.mark.parametrize("name", ["../etc", "UPPER", "-x", "a" * 49, "a b", "名字", "a.json"])
def test_scenario_names_are_slugs(client, app, name):
    answer = client.put(f"/api/scenarios/{name}")
    assert answer.status_code in (400, 404)
    assert list(app.state.app.store.folder.iterdir()) == []


def test_missing_and_damaged_saved_scenarios(client, app):
    assert client.post("/api/scenarios/nothing/open").status_code == 400
    (app.state.app.store.folder / "broken.json").write_text("{not json", encoding="utf-8")
    assert client.post("/api/scenarios/broken/open").status_code == 400
    (app.state.app.store.folder / "wrong.json").write_text(
        json.dumps({"edits": {"centre": {"removed": ["no-such-id"]}}}), encoding="utf-8")
    answer = client.post("/api/scenarios/wrong/open")
    assert answer.status_code == 400
    assert client.get("/api/state").json()["edits"] == {}


def _geojson(points, crs=None, **props):
    frame = gpd.GeoDataFrame(props, geometry=points, crs=crs or "EPSG:4326")
    return frame.to_json().encode()


def test_upload_adds_and_removes(client, tianping, central_run):
    lon, lat = tianping
    body = _geojson([shapely.Point(lon, lat), shapely.Point(lon + 0.003, lat)],
                    name=["上传一", "上传二"])
    answer = client.post("/api/upload?layer=centre&action=add&format=geojson", content=body)
    assert answer.status_code == 200, answer.text
    assert [a["name"] for a in answer.json()["edits"]["centre"]["added"]] == ["上传一", "上传二"]
    ids = central_run.layers["centre"].points["facility_id"].astype(str).iloc[:2].tolist()
    points = central_run.layers["centre"].points.geometry.iloc[:2].tolist()
    removed = client.post("/api/upload?layer=centre&action=remove&format=geojson",
                          content=_geojson(points, facility_id=ids))
    assert sorted(removed.json()["edits"]["centre"]["removed"]) == sorted(ids)


def test_upload_geopackage(client, tianping, tmp_path):
    lon, lat = tianping
    path = tmp_path / "sites.gpkg"
    gpd.GeoDataFrame({"name": ["a"]}, geometry=[shapely.Point(lon, lat)],
                     crs=4326).to_crs(32651).to_file(path, driver="GPKG")
    answer = client.post("/api/upload?layer=centre&format=gpkg", content=path.read_bytes())
    assert answer.status_code == 200, answer.text
    assert answer.json()["edits"]["centre"]["added"][0]["lon"] == pytest.approx(lon)


def _no_crs_gpkg(tmp_path, lon, lat):
    path = tmp_path / "nocrs.gpkg"
    gpd.GeoDataFrame({"name": ["a"]}, geometry=[shapely.Point(lon, lat)]).to_file(
        path, driver="GPKG")
    return path.read_bytes()


def test_bad_uploads(client, tianping, tmp_path):
    lon, lat = tianping
    cases = [
        (b"not json", "geojson", "not GeoJSON"),
        (b'{"type": "Point", "coordinates": [1, 2]}', "geojson", "FeatureCollection"),
        (b"", "geojson", "empty"),
        (b"x" * 100, "gpkg", "not a GeoPackage"),
        (b"SQLite format 3\0" + b"x" * 100, "gpkg", "cannot be read"),
        (_geojson([shapely.LineString([(lon, lat), (lon + 0.01, lat)])]), "geojson",
         "must be a point"),
        (_geojson([shapely.Point(0.0, 0.0)]), "geojson", "outside the study area"),
        (_no_crs_gpkg(tmp_path, lon, lat), "gpkg", "no coordinate system"),
        (_geojson([shapely.Point(lon, lat)]), "shp", "format must be"),
        (b"x" * (2 * 1024 * 1024 + 1), "geojson", "larger than"),
    ]
    for body, kind, message in cases:
        answer = client.post(f"/api/upload?layer=centre&format={kind}", content=body)
        assert answer.status_code in (400, 413), (message, answer.text)
        assert message in answer.json()["error"], (message, answer.text)
    remove = client.post("/api/upload?layer=centre&action=remove&format=geojson",
                         content=_geojson([shapely.Point(lon, lat)], facility_id=["nope"]))
    assert "not in layer" in remove.json()["error"]
    assert client.get("/api/state").json()["edits"] == {}


def test_token_host_and_origin(base, tmp_path):
    with pytest.raises(Exception, match="needs a token"):
        create_app(base, tmp_path, host="0.0.0.0")
    app = create_app(base, tmp_path, host="10.1.2.3", token="s3cret-token", port=8015)
    c = TestClient(app, base_url="http://10.1.2.3:8015")
    assert c.get("/api/state").status_code == 401
    assert c.get("/api/state", headers={"X-Coverage15-Token": "wrong"}).status_code == 401
    assert c.get("/api/state", headers={"X-Coverage15-Token": "s3cret-token"}).status_code == 200
    page = c.get("/", params={"token": "s3cret-token"})
    assert page.status_code == 200
    assert c.get("/api/state").status_code == 200  # the cookie the page set
    local = TestClient(create_app(base, tmp_path), base_url="http://evil.example")
    assert local.get("/api/state").status_code == 400
    ok = TestClient(create_app(base, tmp_path), base_url="http://127.0.0.1:8015")
    assert ok.post("/api/reset", headers={"Origin": "http://evil.example"}).status_code == 403
    assert ok.post("/api/reset", headers={"Origin": "http://127.0.0.1:8015"}).status_code == 200


def test_export_equals_whatif_cli(client, tianping, tmp_path, data_dir):
    """The exported files of a scenario with one added centre equal `recommend --add`'s."""
    from coverage15.cli import main

    lon, lat = tianping
    state = client.post("/api/edit", json={"op": "add", "layer": "centre", "lon": lon,
                                           "lat": lat, "name": "新中心"}).json()
    gap = client.get("/api/export/gap_report.csv")
    assert gap.status_code == 200
    exported = pd.read_csv(io.BytesIO(gap.content))
    live = pd.DataFrame(state["gap_report"])
    columns = [c for c in live.columns if c in exported.columns and c.endswith("_share")]
    np.testing.assert_allclose(exported[columns].to_numpy(float),
                               live[columns].to_numpy(float), equal_nan=True)
    whatif_csv = client.get("/api/export/whatif.csv").content
    sites = tmp_path / "site.geojson"
    sites.write_bytes(_geojson([shapely.Point(lon, lat)], facility_id=["new-1"],
                               name=["新中心"]))
    out = tmp_path / "cli"
    assert main(["recommend", str(CONFIG), "--layer", "centre", "--add", str(sites),
                 "--out", str(out), "--no-map", "-q"]) == 0
    assert whatif_csv == (out / "whatif.csv").read_bytes()
    archive = client.get("/api/export/scenario.zip")
    import zipfile

    names = set(zipfile.ZipFile(io.BytesIO(archive.content)).namelist())
    assert {"gap_report.csv", "gap_report.xlsx", "coverage.gpkg", "map.html",
            "whatif.csv"} <= names
    assert client.get("/api/export/..%2Fetc").status_code == 404
    assert client.get("/api/export/secret.txt").status_code == 404


# --- in a real browser -----------------------------------------------------------------------


@pytest.fixture
def live_server(base, tmp_path):
    """The app served by uvicorn on 127.0.0.1 (a free port), in a thread."""
    import socket
    import time

    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(base, tmp_path / "scenarios", port=port)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def _share_text(driver, name):
    return driver.execute_script(
        "const r = [...document.querySelectorAll('#gap tbody tr')]"
        ".find((tr) => tr.dataset.jiezhen === arguments[0]);"
        "return r ? r.querySelector('td.share').textContent : null;", name)


def _rule_share_text(driver, name):
    return driver.execute_script(
        "const r = [...document.querySelectorAll('#gap tbody tr')]"
        ".find((tr) => tr.dataset.jiezhen === arguments[0]);"
        "return r ? r.querySelector('td.rule-share').textContent : null;", name)


def _unit_colour(driver, name):
    return driver.execute_script(
        "let c = null; unitsLayer.eachLayer((l) => {"
        "if (l.feature.properties.jiezhen === arguments[0]) c = l.options.fillColor; });"
        "return c;", name)


@pytest.mark.browser
def test_add_a_centre_in_the_browser(browser, live_server, central_run, tianping, tmp_path):
    """Click a centre into 天平路街道, see it, save, reload, reopen, export = whatif's rows."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from coverage15.outputs.writers import write_csv
    from coverage15.planning.scenarios import whatif

    driver = browser
    driver.get(live_server + "/")
    wait = WebDriverWait(driver, 60)
    # the page's handlers (the map's click among them) are in place only once it says so
    wait.until(lambda d: d.execute_script("return window.c15Ready === true;"))
    wait.until(lambda d: _share_text(d, TIANPING) is not None)
    before = _share_text(driver, TIANPING)

    # the walking-profile switch: 体弱 (frail) shows that profile's 1+N shares and verdicts
    from selenium.webdriver.support.ui import Select

    gap = central_run.gap_report
    slower = gap.loc[(gap["one_plus_n_share_frail"] < gap["one_plus_n_share"])
                     & ~gap["uncovered"].astype("boolean").fillna(True)
                     & gap["fails_at_profiles"].fillna("").str.contains("frail")]
    name = str(slower["jiezhen"].iloc[0])  # passes at the standard speed, fails when frail
    standard = _rule_share_text(driver, name)
    assert _unit_colour(driver, name) == "#1a9850"  # green: passes
    Select(driver.find_element(By.ID, "profile")).select_by_value("frail")
    wait.until(lambda d: _rule_share_text(d, name) != standard)
    frail = 100 * slower["one_plus_n_share_frail"].iloc[0]
    assert _rule_share_text(driver, name) == f"{frail:.1f}%"
    assert _unit_colour(driver, name) == "#d7301f"  # red: fails for frail walkers
    assert "体弱" in driver.find_element(By.CSS_SELECTOR, "#gap thead").text
    Select(driver.find_element(By.ID, "profile")).select_by_value("standard")
    wait.until(lambda d: _rule_share_text(d, name) == standard)
    lon, lat = tianping
    driver.execute_script("map.setView([arguments[1], arguments[0]], 16, {animate: false});",
                          lon, lat)
    ActionChains(driver).move_to_element(driver.find_element(By.ID, "map")).click().perform()
    wait.until(lambda d: _share_text(d, TIANPING) != before)
    assert driver.find_elements(By.CSS_SELECTOR, ".site-icon.added")  # the new centre
    assert driver.find_elements(By.CSS_SELECTOR, "path.leaflet-interactive, path")  # its area
    change = driver.find_element(By.ID, "change-body").text
    assert TIANPING in change
    driver.save_screenshot(str(tmp_path / "app.png"))

    driver.find_element(By.ID, "scenario-name").send_keys("tianping-browser")
    driver.find_element(By.ID, "save").click()
    wait.until(lambda d: "tianping-browser" in d.find_element(By.ID, "scenarios").text)
    driver.refresh()
    wait.until(lambda d: d.execute_script("return window.c15Ready === true;"))
    wait.until(lambda d: "tianping-browser" in d.find_element(By.ID, "scenarios").text)
    driver.find_element(By.XPATH, "//ul[@id='scenarios']//button[contains(., 'open')]").click()
    wait.until(lambda d: "tianping-browser" in d.find_element(By.ID, "scenario-current").text)
    assert _share_text(driver, TIANPING) != before

    state = driver.execute_script("return state;")
    site = state["edits"]["centre"]["added"][0]
    driver.set_script_timeout(300)
    exported = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch('/api/export/gap_report.csv').then((r) => r.text()).then(done);")
    add = gpd.GeoDataFrame({"facility_id": [site["id"]], "name": [site["name"]]},
                           geometry=[shapely.Point(site["lon"], site["lat"])], crs=4326)
    w = whatif(central_run, layer="centre", add=add)
    write_csv(w.after.gap_report, tmp_path / "whatif_gap.csv")
    expected = (tmp_path / "whatif_gap.csv").read_text(encoding="utf-8-sig")
    assert exported.lstrip("\ufeff").splitlines() == expected.lstrip("\ufeff").splitlines()
    errors = [e["message"] for e in driver.get_log("browser")
              if e["level"] == "SEVERE" and "tile" not in e["message"]
              and "favicon" not in e["message"]]
    assert errors == []


def test_propose_and_accept(client, app):
    import time

    assert client.post("/api/propose", json={"layer": "nope", "k": 2}).status_code == 400
    assert client.post("/api/propose", json={"layer": "centre", "k": 0}).status_code == 400
    assert client.post("/api/propose", json={"layer": "centre", "k": True}).status_code == 400
    job = client.post("/api/propose", json={"layer": "centre", "k": 2}).json()["job"]
    assert TestClient(app).get(f"/api/propose/{job}").status_code == 404  # another session's
    deadline = time.monotonic() + 600
    while True:
        status = client.get(f"/api/propose/{job}").json()
        if status["state"] != "running" or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert status["state"] == "done", status
    assert [p["rank"] for p in status["proposals"]] == [1, 2]
    assert client.post(f"/api/propose/{job}/accept", json={"ranks": [9]}).status_code == 400
    state = client.post(f"/api/propose/{job}/accept", json={"ranks": [2]}).json()
    assert [a["name"] for a in state["edits"]["centre"]["added"]] == ["拟建 2"]
    assert client.post("/api/undo").status_code == 200
    assert client.post("/api/undo").json()["error"] == "nothing to undo"


def _finished(client, job):
    import time

    deadline = time.monotonic() + 900
    while True:
        status = client.get(f"/api/propose/{job}").json()
        if status["state"] != "running" or time.monotonic() > deadline:
            return status
        time.sleep(0.5)


def test_propose_on_the_scenario(client, base, monkeypatch):
    """Proposals are made for the session's scenario: its adds and closes, not the base run's."""
    import coverage15.planning.recommend as recommend_module

    seen = []
    real = recommend_module.recommend

    def spy(result, **options):
        seen.append(result)
        return real(result, **options)

    monkeypatch.setattr(recommend_module, "recommend", spy)
    job = client.post("/api/propose", json={"layer": "centre", "k": 2}).json()["job"]
    first = _finished(client, job)
    assert first["state"] == "done", first
    assert seen[-1] is base.result  # nothing edited: the base run itself
    # the scenario: proposal 1 accepted, and a centre off the network closed
    client.post(f"/api/propose/{job}/accept", json={"ranks": [1]})
    state = base.layer_state["centre"]
    off = str(state.points["facility_id"][~state.areas.on_network].iloc[0])
    assert client.post("/api/edit", json={"op": "close", "layer": "centre",
                                          "id": off}).status_code == 200
    job = client.post("/api/propose", json={"layer": "centre", "k": 2}).json()["job"]
    second = _finished(client, job)
    assert second["state"] == "done", second
    assert second["scenario"]["edits"]["centre"]["removed"] == [off]
    ids = set(seen[-1].layers["centre"].points["facility_id"].astype(str))
    added = client.get("/api/state").json()["edits"]["centre"]["added"]
    assert off not in ids
    assert added[0]["id"] in ids
    assert len(ids) == len(base.ids["centre"])  # one closed, one added
    # proposal 1's area is now served: the best site left is what the base's greedy picked
    # second, with the same points newly covered
    before, after = first["proposals"], second["proposals"]
    assert after[0]["jiezhen"] != before[0]["jiezhen"]
    assert (after[0]["jiezhen"], after[0]["newly_covered"]) == (before[1]["jiezhen"],
                                                                before[1]["newly_covered"])
