"""Reports and recommendations in a planner's words (issue #20).

A hand-made town with named streets: 长街 runs east along y = 0 in 16 edges of 250 m (node
``i`` at x = 250 i); 横路 crosses it at node 11 (x = 2,750) from y = -500 to y = 500; an
unnamed lane leaves node 0 to the south for 400 m. 街镇 A (x < 2,000) and B (x > 2,000).
One centre at x = 0; residential points on 长街 as in tests/test_recommend.py. The best
single site is node 10 (x = 2,500) on 长街, 250 m from 横路: "长街（近横路）".
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely

from coverage15.inputs.config import load_config
from coverage15.network._names import edge_names, place_names
from coverage15.network.graph import network_from_graph
from coverage15.pipeline import run
from coverage15.planning._words import move, pct
from coverage15.planning.recommend import recommend, write_recommendation
from coverage15.planning.scenarios import whatif

CRS = "EPSG:32651"
X0, Y0 = 350_000.0, 3_450_000.0
DEMAND_X = [500, 1600, 1700, 2400, 3300, 3400, 3450, 3600]


def named_town_net():
    g = nx.MultiGraph(crs=CRS)
    for i in range(17):
        g.add_node(i, x=X0 + 250.0 * i, y=Y0)
    for i in range(16):
        g.add_edge(i, i + 1, name="长街")
    g.add_node(100, x=X0 + 2750.0, y=Y0 + 500)
    g.add_node(101, x=X0 + 2750.0, y=Y0 - 500)
    g.add_edge(11, 100, name=["横路", "横路"])  # osmnx: a list where ways were joined
    g.add_edge(11, 101, name="横路")
    g.add_node(200, x=X0, y=Y0 - 400)
    g.add_edge(0, 200)  # no name
    extent = shapely.box(X0 - 500, Y0 - 600, X0 + 4500, Y0 + 600)
    return network_from_graph(g, min_component_m=0, extent=extent)


def test_edge_names_follow_the_kept_edges():
    net = named_town_net()
    names = dict(zip(zip(net.node_ids[net.edge_u], net.node_ids[net.edge_v], strict=True),
                     net.edge_name, strict=True))
    assert names[(0, 1)] == names[(15, 16)] == "长街"
    assert names[(11, 100)] == names[(11, 101)] == "横路"
    assert names[(0, 200)] is None


def test_loop_pieces_keep_their_name():
    g = nx.MultiGraph(crs=CRS)
    g.add_node(1, x=X0, y=Y0)
    g.add_node(2, x=X0 + 300, y=Y0)
    g.add_edge(1, 2, name="直路")
    ring = [(X0 + 300, Y0), (X0 + 400, Y0 + 100), (X0 + 500, Y0), (X0 + 300, Y0)]
    g.add_edge(2, 2, name="环路", geometry=shapely.LineString(ring))
    net = network_from_graph(g, min_component_m=0)
    assert sorted(net.edge_name.tolist()) == ["环路", "环路", "环路", "直路"]
    assert edge_names([], np.array([1, 2]), np.array([0]), np.array([1])).tolist() == [None]


def test_places_by_street_crossing_or_coordinates():
    net = named_town_net()
    xy = np.array([[X0 + 2500, Y0 + 5], [X0 + 2750, Y0], [X0 + 10, Y0 - 399], [X0 + 250, Y0]])
    zh, en = zip(*place_names(net, xy), strict=True)
    assert zh[0] == "长街（近横路）"
    assert en[0] == "长街 near 横路"
    assert zh[1] == "横路与长街交叉口"
    assert en[1] == "横路 at 长街"
    assert zh[2].startswith("121.")
    assert "," in zh[2]
    assert zh[3] == en[3] == "长街"  # no crossing within 400 m


def _write_csv(path: Path, xs: list[float], prefix: str) -> None:
    pd.DataFrame({"x": [X0 + x for x in xs], "y": [Y0] * len(xs),
                  "name": [f"{prefix} {x}" for x in xs]}).to_csv(path, index=False)


@pytest.fixture(scope="module")
def named_town(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("named-town")
    gpd.GeoDataFrame(
        {"name": ["A街道", "B街道"], "district": ["测试区", "测试区"]},
        geometry=[shapely.box(X0 - 100, Y0 - 600, X0 + 2000, Y0 + 600),
                  shapely.box(X0 + 2000, Y0 - 600, X0 + 4100, Y0 + 600)], crs=CRS,
    ).to_file(folder / "units.gpkg", driver="GPKG")
    _write_csv(folder / "demand.csv", DEMAND_X, "住宅")
    _write_csv(folder / "centres.csv", [0], "中心")
    (folder / "targets.toml").write_text("""
[[rules]]
id = "centre_reach"
kind = "demand_share"
layer = "centre"
min_share = 0.9
""", encoding="utf-8")
    layer = 'x = "x"\ny = "y"\ncrs = "EPSG:32651"\nname_field = "name"\n'
    (folder / "unused.osm").write_text("<osm/>\n", encoding="utf-8")
    (folder / "town.toml").write_text(f"""
name = "named-town"
data_dir = "{folder}"
targets = "targets.toml"
[analysis]
walk_speed_kmh = 4.0
minutes = 15
[network]
source = "osm_file"
path = "unused.osm"
[units]
path = "units.gpkg"
name_field = "name"
district_field = "district"
[demand]
path = "demand.csv"
{layer}
[layers.centre]
label = "中心"
role = "centre"
path = "centres.csv"
{layer}
""", encoding="utf-8")
    net = named_town_net()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("coverage15.pipeline.build_walk_network", lambda spec, **_: net)
        result = run(load_config(folder / "town.toml"))
        rec = recommend(result, layer="centre", k=2, method="exact")
        after = whatif(result, layer="centre", add=rec.proposals, added_label="拟建")
    return result, rec, after


def test_sites_are_named_by_street_crossing_and_jiezhen(named_town, tmp_path):
    result, rec, after = named_town
    first = rec.proposals.iloc[0]
    assert first["facility_id"] == "node-10"
    assert first["place"] == "长街（近横路）"
    assert first["name"] == "B街道 长街（近横路）"
    assert first["jiezhen"] == "B街道"
    # node 10 brings 1,600 ... 3,450 within reach: A 1/3 → 3/3, B 0/5 → 4/5
    assert first["effect"] == "B街道 0% → 80%；A街道 33% → 100%"
    lines = rec.summary(after)
    assert any("长街 near 横路 (测试区 B街道): +6 points" in line for line in lines)
    assert any("A街道 33% → 100% now passes" in line for line in lines)
    rerun = next(line for line in lines if line.startswith("re-run"))
    assert "2 街镇 newly pass: 测试区 A街道 (site 1, in B街道), 测试区 B街道 (site 2)" in rerun
    zh = rec.summary_zh(after)
    assert any(line.startswith("1. 测试区B街道 长街（近横路）：新覆盖 6 个居住点") for line in zh)
    assert zh[-2].startswith("新达标街镇 2 个：测试区A街道（第 1 处，位于B街道）")
    write_recommendation(rec, result, tmp_path, after=after, map_html=False)
    table = pd.read_csv(tmp_path / "recommendations.csv")
    assert table["place"].iloc[0] == "长街（近横路）"
    assert table["now_passes"].fillna("").tolist() == ["A街道", "B街道"]


def test_whatif_names_the_added_sites(named_town):
    _, _rec, after = named_town
    assert after.sites is not None
    assert after.sites["place"].iloc[0] == "长街（近横路）"
    assert after.sites["newly_covered"].iloc[0] == 6
    assert any("长街 near 横路 (测试区 B街道): +6 points" in line for line in after.summary())


@pytest.mark.parametrize(("share", "text"), [
    (0.0, "0%"), (0.0014, "0.1%"), (0.00004, "0.004%"), (0.27, "27%"), (0.9996, "99.96%"),
    (1.0, "100%"), (0.999996, "99.9996%"), (float("nan"), "–"),
])
def test_no_non_zero_share_prints_as_zero(share, text):
    assert pct(share) == text


def test_moves_show_enough_decimals_to_differ():
    assert move(0.987, 0.994) == "98.7% → 99.4%"
    assert move(0.27, 0.81) == "27% → 81%"
