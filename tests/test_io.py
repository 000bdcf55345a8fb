"""Output formats round-trip; layers come from PostGIS and (cached) OpenStreetMap."""

from __future__ import annotations

import geopandas as gpd
import networkx as nx
import pandas as pd
import pytest
import shapely
from geopandas.testing import assert_geodataframe_equal

from coverage15 import NetworkError, settings
from coverage15.inputs.config import LayerSpec, NetworkSpec
from coverage15.inputs.layers import load_layer
from coverage15.inputs.postgis import read_postgis
from coverage15.network.graph import build_walk_network
from coverage15.outputs.writers import (
    gis_ready,
    output_layers,
    write_excel,
    write_geopackage,
    write_geoparquet,
    write_postgis,
)


def test_geoparquet_round_trip(central_run, tmp_path):
    layers = output_layers(central_run)
    assert set(layers) == {"service_areas", "service_area_union", "units", "facilities",
                           "demand", "districts", "location_check"}
    write_geoparquet(layers, tmp_path)
    for name, frame in layers.items():
        back = gpd.read_parquet(tmp_path / f"{name}.parquet")
        assert back.crs.to_epsg() == 4326
        assert_geodataframe_equal(back, frame.reset_index(drop=True), check_dtype=False)


def test_any_source_columns_can_be_written_to_a_geopackage(tmp_path):
    frame = gpd.GeoDataFrame(
        {"name": ["a", "b"], "district": ["x", "y"], "District": ["X", "Y"], "fid": [7, 7],
         "beds": pd.Series([50, "60"], dtype=object), "ok": pd.array([True, None])},
        geometry=[shapely.Point(121.4, 31.2), shapely.Point(121.5, 31.3)], crs=4326)
    path = write_geopackage({"facilities": gis_ready(frame)}, tmp_path / "c.gpkg")
    back = gpd.read_file(path, layer="facilities")
    assert list(back.columns) == ["name", "district", "District_2", "src_fid", "beds", "ok",
                                  "geometry"]
    assert back["District_2"].tolist() == ["X", "Y"]
    assert back["src_fid"].tolist() == [7, 7]
    assert back["beds"].tolist() == ["50", "60"]
    assert back["ok"].iloc[0] == 1
    assert back["ok"].isna().iloc[1]
    # a new name never takes one the frame already has; lists mixed with text become text
    clash = gpd.GeoDataFrame(
        {"district": ["a", "a"], "District": ["b", "b"], "District_2": ["c", "c"],
         "geom": ["g", "g"], "mix": pd.Series([[1, 2], "x"], dtype=object)},
        geometry=[shapely.Point(121.4, 31.2)] * 2, crs=4326)
    path = write_geopackage({"t": gis_ready(clash)}, tmp_path / "clash.gpkg")
    back = gpd.read_file(path, layer="t")
    assert list(back.columns) == ["district", "District_3", "District_2", "src_geom", "mix",
                                  "geometry"]
    assert back["District_3"].tolist() == ["b", "b"]
    assert back["mix"].tolist() == ["[1, 2]", "x"]


def test_excel_workbook(central_run, tmp_path):
    path = write_excel(central_run, tmp_path / "gap_report.xlsx")
    sheets = pd.read_excel(path, sheet_name=None)
    districts = sorted(central_run.gap_report["district"].unique())
    assert list(sheets) == ["汇总", *districts, "说明"]
    huangpu = sheets["黄浦区"]
    assert "街镇" in huangpu.columns
    assert "社区综合为老服务中心数量" in huangpu.columns
    assert "达标：每个街镇至少1处社区综合为老服务中心" in huangpu.columns
    row = huangpu.loc[huangpu["街镇"] == "淮海中路街道"].iloc[0]
    report_row = central_run.gap_report.query("jiezhen == '淮海中路街道'").iloc[0]
    assert row["社区综合为老服务中心数量"] == report_row["centre_count"]
    assert row["未达标"] == "否"
    assert row["路网覆盖"] == "完整"
    # passes at the standard speed, fails for slower walkers (walking profiles)
    assert row["原因"] == ("按标准步速达标，但步速较慢者（老年 0.76 m/s、体弱 0.64 m/s）不达标")
    assert "原因（英文）" not in huangpu.columns
    xuhui = sheets["徐汇区"].set_index("街镇")
    assert xuhui.loc["湖南路街道", "原因"] == (
        "1+N：54% 居住点达标（需 ≥ 90%，尚差 37 个居住点）；缺中心：中心（社区综合为老服务中心）"
        "覆盖 59%，站点（助餐服务点/社区长者食堂）覆盖 94%；社区综合为老服务中心 0 处（需 ≥ 1，"
        "缺 1 处）；步速较慢者（老年 0.76 m/s、体弱 0.64 m/s）亦不达标")
    assert xuhui.loc["龙华街道", "原因"].startswith(  # 0.14 % of its area: never "0%"
        "仅部分在路网内（路网内面积 0.1%）：步行目标未评估；社区综合为老服务中心 0 处")
    assert len(sheets["汇总"]) >= 16
    notes = [str(v) for v in sheets["汇总"].to_numpy().ravel()]  # every note in Chinese
    assert "全市共 323 处社区综合为老服务中心（目标 ≥ 500，尚差 177 处）" in notes
    assert not [n for n in notes if "(target" in n or "walking rules" in n or "flagged" in n]
    from openpyxl import load_workbook

    book = load_workbook(path)
    sheet = book["黄浦区"]
    header = {c.value: c.column_letter for c in sheet[1]}
    share = "1+N：15分钟内有综合为老服务中心、10分钟内有至少1处助餐点 达标居住点比例"
    assert sheet[f"{header[share]}2"
                 ].number_format == "[<0.01]0.0#%;[>0.99]0.0#%;0%"
    assert sheet.auto_filter.ref == sheet.dimensions


def test_postgis_round_trip(central_run, postgis_url):
    layers = output_layers(central_run)
    tables = write_postgis(layers, postgis_url, schema="c15_test")
    assert len(tables) == len(layers)
    for name, frame in layers.items():
        back = read_postgis(postgis_url, table=f"c15_test.coverage15_{name}")
        assert back.crs.to_epsg() == 4326
        assert_geodataframe_equal(back, frame.reset_index(drop=True), check_dtype=False,
                                  check_less_precise=True, normalize=True)


def test_postgis_write_is_all_tables_or_none(postgis_url, monkeypatch):
    from shapely.geometry import Point

    def points(n: int) -> gpd.GeoDataFrame:
        return gpd.GeoDataFrame({"n": range(n)}, geometry=[Point(121.47, 31.23)] * n,
                                crs="EPSG:4326")

    write_postgis({"a": points(2), "b": points(2)}, postgis_url, schema="c15_atomic")
    real = gpd.GeoDataFrame.to_postgis

    def interrupted_at_b(self, name, *args, **kwargs):
        if name == "coverage15_b":
            raise KeyboardInterrupt  # Ctrl-C once table a has been replaced
        return real(self, name, *args, **kwargs)

    monkeypatch.setattr(gpd.GeoDataFrame, "to_postgis", interrupted_at_b)
    with pytest.raises(KeyboardInterrupt):
        write_postgis({"a": points(5), "b": points(5)}, postgis_url, schema="c15_atomic")
    for table in ("a", "b"):  # both previous tables stand, the first one not replaced
        assert len(read_postgis(postgis_url, table=f"c15_atomic.coverage15_{table}")) == 2


def test_layer_from_postgis(data_dir, postgis_url):
    canteens = load_layer(LayerSpec(key="canteen", label="c", crs="gcj02", x="longitude",
                                    y="latitude", name_field="name",
                                    path=data_dir / "facilities/meal_canteens.csv"))
    write_postgis({"canteens": canteens.points[["name", "geometry"]]}, postgis_url,
                  schema="c15_test")
    from_db = load_layer(LayerSpec(key="canteen", label="c", path=None, name_field="name",
                                   database=postgis_url, table="c15_test.coverage15_canteens"))
    assert len(from_db.points) == 97
    assert from_db.points.geometry.geom_equals_exact(canteens.points.geometry, 1e-9).all()
    sql = "SELECT * FROM c15_test.coverage15_canteens WHERE name LIKE '%路街道%'"
    some = load_layer(LayerSpec(key="c", label="c", path=None, name_field="name",
                                database=postgis_url, sql=sql))
    assert 0 < len(some.points) < 97


def _tiny_graph() -> nx.MultiDiGraph:
    graph = nx.MultiDiGraph(crs="EPSG:4326")
    for i, lng in enumerate((121.470, 121.475, 121.480)):
        graph.add_node(i, x=lng, y=31.23)
    for a, b in ((0, 1), (1, 2)):
        graph.add_edge(a, b)
        graph.add_edge(b, a)
    return graph


def test_fetch_then_offline(monkeypatch, tmp_path):
    import coverage15.network.graph as network_module

    calls = []

    def fake_online(spec):
        calls.append(spec.place)
        return _tiny_graph(), shapely.box(121.46, 31.22, 121.49, 31.24)

    monkeypatch.setattr(network_module, "_online_graph", fake_online)
    spec = NetworkSpec(source="place", place="测试区")
    monkeypatch.setattr(settings, "online", False)
    with pytest.raises(NetworkError, match="coverage15 fetch"):
        build_walk_network(spec)
    monkeypatch.setattr(settings, "online", True)
    first = build_walk_network(spec)
    assert first.n_edges == 2
    monkeypatch.setattr(settings, "online", False)
    again = build_walk_network(spec)  # offline: from the cache, no query
    assert calls == ["测试区"]
    assert again.n_edges == 2


def test_osm_tagged_layer_is_cached(monkeypatch):
    import osmnx as ox

    found = gpd.GeoDataFrame(
        {"element": ["node", "way"], "id": [1, 2], "name": ["站点甲", "站点乙"],
         "social_facility": ["outreach", "outreach"]},
        geometry=[shapely.Point(121.47, 31.23), shapely.box(121.48, 31.22, 121.481, 31.221)],
        crs="EPSG:4326",
    ).set_index(["element", "id"])
    calls = []
    monkeypatch.setattr(ox, "features_from_place",
                        lambda place, tags: calls.append(place) or found)
    spec = LayerSpec(key="social_work", label="社工站", path=None, name_field="name",
                     osm_tags=(("social_facility", "outreach"),), place="测试区")
    monkeypatch.setattr(settings, "online", False)
    with pytest.raises(NetworkError, match="not cached"):
        load_layer(spec)
    monkeypatch.setattr(settings, "online", True)
    layer = load_layer(spec)
    assert list(layer.points["name"]) == ["站点甲", "站点乙"]
    assert layer.points.geometry.iloc[1].within(shapely.box(121.48, 31.22, 121.481, 31.221))
    monkeypatch.setattr(settings, "online", False)
    assert len(load_layer(spec).points) == 2
    assert calls == ["测试区"]


@pytest.mark.web
def test_live_osm_network_query():
    net = build_walk_network(NetworkSpec(source="place", place="外滩街道, 黄浦区, 上海市"))
    assert net.n_edges > 100


def test_cli_writes_every_format(data_dir, postgis_url, tmp_path):
    from pathlib import Path

    from coverage15.cli import main

    config = Path(__file__).resolve().parents[1] / "data/shanghai-central.toml"
    out = tmp_path / "out"
    code = main(["-q", "run", str(config), "--out", str(out), "--no-map", "--parquet",
                 "--to", postgis_url, "--schema", "c15_cli"])
    assert code == 0
    assert (out / "gap_report.xlsx").is_file()
    assert len(gpd.read_parquet(out / "parquet" / "units.parquet")) == 217
    assert len(read_postgis(postgis_url, table="c15_cli.coverage15_units")) == 217
    layers = gpd.list_layers(out / "coverage.gpkg")["name"].tolist()
    assert sorted(layers) == ["demand", "districts", "facilities", "location_check",
                              "service_area_union", "service_areas", "units"]
    located = read_postgis(postgis_url, table="c15_cli.coverage15_location_check")
    assert len(located) == 11 + 38 + 30 + 373


def test_unreachable_database_is_one_line(data_dir, tmp_path, capsys):
    from pathlib import Path

    from coverage15.cli import main

    config = Path(__file__).resolve().parents[1] / "data/shanghai-central.toml"
    code = main(["-q", "run", str(config), "--out", str(tmp_path), "--no-map",
                 "--to", "postgresql://nobody:secret@127.0.0.1:1/none"])
    assert code == 2
    err = capsys.readouterr().err
    assert "cannot connect" in err
    assert "secret" not in err  # the password is never printed
    assert not (tmp_path / "gap_report.csv").exists()  # checked before the run
