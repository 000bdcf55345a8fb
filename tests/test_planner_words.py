"""Reports and recommendations in a planner's words (issue #20).

A hand-made town with named streets: 长街 runs east along y = 0 in 16 edges of 250 m (node
``i`` at x = 250 i); 横路 crosses it at node 11 (x = 2,750) from y = -500 to y = 500; an
unnamed lane leaves node 0 to the south for 400 m. 街镇 A (x < 2,000) and B (x > 2,000).
One centre at x = 0; residential points on 长街 as in tests/test_recommend.py. The best
single site is node 10 (x = 2,500) on 长街, 250 m from 横路: "长街（近横路）".
"""

from __future__ import annotations

from pathlib import Path

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
from coverage15.reach.gaps import units_by_district
from coverage15.reach.targets import Rule, check_targets
from hand_networks import write_points_csv, write_town_config, write_town_units

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


@pytest.fixture(scope="module")
def named_town(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("named-town")
    write_town_units(folder, 600)
    write_points_csv(folder / "demand.csv", DEMAND_X, "住宅")
    write_points_csv(folder / "centres.csv", [0], "中心")
    config = write_town_config(folder, name="named-town", rules="""
[[rules]]
id = "centre_reach"
kind = "demand_share"
layer = "centre"
min_share = 0.9
""", layers={"centre": ("中心", "centre", "centres.csv")})
    net = named_town_net()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("coverage15.pipeline.build_walk_network", lambda spec, **_: net)
        result = run(load_config(config))
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


# --- reasons ------------------------------------------------------------------------------

ONE_PLUS_N = Rule(id="one_plus_n", kind="one_plus_n", centre_layers=("centre",),
                  station_layers=("meal",), n=1, min_share=0.75)
LABELS = {"centre": "中心", "meal": "助餐点"}


def _check(centre_n: list[int], meal_n: list[int], rules: list[Rule] | None = None,
           share_in: float = 1.0):
    units = pd.DataFrame({"network": ["full" if share_in == 1 else "partial"],
                          "network_share": [share_in], "centre_count": [0], "meal_count": [1]})
    cover = pd.DataFrame({"centre_n": centre_n, "meal_n": meal_n})
    return check_targets(units, rules or [ONE_PLUS_N], demand_cover=cover,
                         demand_unit=np.zeros(len(centre_n), dtype=np.int64),
                         layer_labels=LABELS, layer_totals={"centre": 0, "meal": 1})


@pytest.mark.parametrize(("centre_n", "meal_n", "side_en", "side_zh"), [
    # 4 points: centre side 1/4, stations 4/4: the centres are missing
    ([1, 0, 0, 0], [1, 1, 1, 1], "fails on the centre side: centre (中心) 25%, stations "
     "(助餐点) 100%", "缺中心：中心（中心）覆盖 25%，站点（助餐点）覆盖 100%"),
    ([1, 1, 1, 1], [0, 0, 1, 0], "fails on the station side: centre (中心) 100%, stations "
     "(助餐点) 25%", "缺站点：中心（中心）覆盖 100%，站点（助餐点）覆盖 25%"),
    ([1, 0, 0, 0], [0, 0, 1, 0], "fails on both sides", "中心和站点都不足"),
    # each side reaches 3 of 4, but only 2 points have both
    ([1, 1, 1, 0], [0, 1, 1, 1],
     "fails on neither side alone (too few residential points have both)",
     "两侧各自够，但同时有中心和站点的居住点不足"),
])
def test_each_one_plus_n_reason_names_the_failing_side(centre_n, meal_n, side_en, side_zh):
    flags = _check(centre_n, meal_n).flags
    assert flags["pass_one_plus_n"].iloc[0] == False  # noqa: E712
    assert side_en in flags["reason"].iloc[0]
    assert side_zh in flags["reason_zh"].iloc[0]
    assert "(needs ≥ 75%;" in flags["reason"].iloc[0]
    assert "（需 ≥ 75%，尚差" in flags["reason_zh"].iloc[0]


def test_reasons_say_by_how_much_per_rule_kind():
    rules = [ONE_PLUS_N, Rule(id="meal_reach", kind="demand_share", layer="meal",
                              min_share=0.9),
             Rule(id="centres", kind="full_coverage", layer="centre", min_count=2)]
    flags = _check([1, 0, 0, 0], [1, 1, 1, 0], rules).flags
    en, zh = flags["reason"].iloc[0], flags["reason_zh"].iloc[0]
    assert ("one_plus_n: 25% of residential points pass 1+N (needs ≥ 75%; 2 more residential "
            "points)") in en
    assert ("meal_reach: 75% of residential points within reach of 助餐点 (needs ≥ 90%; 1 "
            "more ") in en
    assert "centres: 0 中心 (needs ≥ 2; 2 more)" in en
    assert "1+N：25% 居住点达标（需 ≥ 75%，尚差 2 个居住点）" in zh
    assert "步行可达助餐点：75% 居住点（需 ≥ 90%，尚差 1 个居住点）" in zh
    assert "中心 0 处（需 ≥ 2，缺 2 处）" in zh


def test_no_non_zero_share_of_the_area_prints_as_zero():
    flags = _check([1], [1], share_in=0.0014).flags
    assert flags["reason"].iloc[0].startswith("partial network (0.1% of the area)")
    assert flags["reason_zh"].iloc[0].startswith("仅部分在路网内（路网内面积 0.1%）")
    one_in_a_thousand = _check([1] + [0] * 999, [1] * 1000).flags
    assert "0.1% of residential points pass 1+N" in one_in_a_thousand["reason"].iloc[0]


def test_district_rows_summarise_their_flagged_jiezhen():
    district = pd.DataFrame({"district": ["甲区", "乙区"], "uncovered": [pd.NA, False],
                             "reason": ["partial network (19% of the area): walking rules "
                                        "not evaluated", "passes every evaluated rule"],
                             "reason_zh": ["仅部分在路网内（路网内面积 19%）：步行目标未评估",
                                           "已评估的目标均达标"]})
    units = pd.DataFrame({"district": ["甲区"] * 3 + ["乙区"],
                          "jiezhen": ["一街道", "二街道", "三镇", "四街道"],
                          "network": ["full", "partial", "full", "full"],
                          "uncovered": [True, True, False, False]})
    out = units_by_district(district, units)
    assert out["reason_zh"].iloc[0] == (
        "仅部分在路网内（路网内面积 19%）：步行目标未评估；3 个街镇中 2 个未达标：一街道、二街道"
        "（1 个不全在路网内，未评估步行目标）")
    assert out["reason"].iloc[0].endswith(
        "; 2 of its 3 街镇 flagged: 一街道, 二街道 (1 not wholly inside the network: walking "
        "rules not judged there)")
    assert out["reason_zh"].iloc[1] == "已评估的目标均达标；1 个街镇中 0 个未达标"


def test_central_district_rows_name_their_flagged_jiezhen(central_run):
    rows = central_run.district_report.set_index("district")
    assert "13 个街镇中 3 个未达标：天平路街道、湖南路街道、龙华街道" in rows.loc["徐汇区",
                                                                                "reason_zh"]
    gap = central_run.gap_report.set_index("jiezhen")
    assert ("中心和站点都不足：中心（社区综合为老服务中心）覆盖 27%，"
            "站点（助餐服务点/社区长者食堂）覆盖 88%") in gap.loc["天平路街道", "reason_zh"]
    shown = " ".join(central_run.gap_report["reason"]) + " ".join(
        central_run.district_report["reason"])
    zero = central_run.gap_report["network_share"].between(0, 0.005, inclusive="neither")
    assert zero.any()  # 龙华街道: 0.14 %
    assert "partial network (0% of the area)" not in shown


def test_central_recommend_k5_names_streets_jiezhen_and_who_passes(data_dir, tmp_path, capsys):
    from coverage15.cli import main

    config = Path(__file__).resolve().parents[1] / "data" / "shanghai-central.toml"
    assert main(["recommend", str(config), "--layer", "centre", "--k", "5", "--out",
                 str(tmp_path), "--no-map"]) == 0
    out = capsys.readouterr().out
    assert ("   1. 嘉善路 at 建国西路 (徐汇区 天平路街道): +196 points; 天平路街道 27% → 81% "
            "still fails, 瑞金二路街道 79% → 99% now passes") in out
    # (外滩 and 打浦桥 reach 90 % of points with a centre but still fail 1+N: their meal points
    # must be within 10 minutes)
    assert ("2 街镇 newly pass: 黄浦区 南京东路街道 (site 3), 黄浦区 瑞金二路街道 "
            "(site 1, in 天平路街道); 0 newly fail") in out
    assert "node-" not in out
    table = pd.read_csv(tmp_path / "recommendations.csv")
    assert table["name"].iloc[0] == "天平路街道 嘉善路与建国西路交叉口"
    assert table["place"].tolist()[:2] == ["嘉善路与建国西路交叉口", "东余杭路与舟山路交叉口"]
    assert table["now_passes"].iloc[0] == "瑞金二路街道"
    assert table["effect"].iloc[0].startswith("天平路街道 27% → 81%；")


def test_map_popups_never_show_zero_for_a_non_zero_share():
    from coverage15.outputs.maps import _cell

    assert _cell("network_share", 0.0014) == "0.1%"  # 龙华街道
    assert _cell("one_plus_n_share", 0.27) == "27%"
    assert _cell("centre_demand_share", 0.0) == "0%"
