"""Site recommendations: covering solvers, a hand-made street, what-if re-runs, real data.

The hand-made town is one straight street of 16 edges x 250 m (x = 0 ... 4,000 m, node ``i``
at ``x = 250 i``) in two 街镇: A (x < 2,000) and B (x > 2,000). 15 minutes at 4 km/h reach
1,000 m. One centre at x = 0; residential points on the street at x = 500 (covered by it),
1,600, 1,700 (A) and 2,400, 3,300, 3,400, 3,450, 3,600 (B). By hand: the best single new
site is node 10 (x = 2,500), reaching 1,600 ... 3,450 (6 points); 3,600 needs a second site
east of x = 2,600. Rules: 90 % of a 街镇's points within reach of a centre, and a centre in
every 街镇; both 街镇 fail, and the fewest new centres that fix both is 2.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import scipy.sparse as sp
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from coverage15 import ConfigError
from coverage15.cli import main
from coverage15.inputs.config import load_config
from coverage15.network.graph import snap_points
from coverage15.pipeline import run
from coverage15.planning.recommend import (
    candidate_sites,
    cover,
    exact_cover,
    greedy_cover,
    recommend,
    write_recommendation,
)
from coverage15.planning.scenarios import whatif, write_whatif
from coverage15.reach.distances import network_reach, point_distances
from hand_networks import write_points_csv, write_town_config, write_town_units

ROOT = Path(__file__).resolve().parents[1]
CENTRAL = ROOT / "data" / "shanghai-central.toml"
CRS = "EPSG:32651"
X0, Y0 = 350_000.0, 3_450_000.0
DEMAND_X = [500, 1600, 1700, 2400, 3300, 3400, 3450, 3600]


# --- the combinatorial core ---------------------------------------------------------------


def _sets(*rows: list[int], n_cols: int | None = None) -> sp.csr_matrix:
    n_cols = n_cols or max(max(r) for r in rows if r) + 1
    data = [(i, j) for i, r in enumerate(rows) for j in r]
    i, j = zip(*data, strict=True)
    return sp.csr_matrix((np.ones(len(i), bool), (i, j)), shape=(len(rows), n_cols))


# A covers 4, B and C 3 each but together all 6: greedy takes A first and ends at 5
TRAP = _sets([0, 1, 2, 3], [0, 1, 4], [2, 3, 5])


def test_greedy_takes_the_biggest_set_first_and_misses_the_optimum():
    g = greedy_cover(TRAP, np.ones(6), k=2)
    assert g.chosen.tolist()[0] == 0
    assert g.covered == 5
    assert g.gains.tolist() == [4, 1]


def test_exact_finds_the_known_optimum():
    e = exact_cover(TRAP, np.ones(6), k=2)
    assert sorted(e.chosen.tolist()) == [1, 2]
    assert e.covered == 6
    assert e.status == "optimal"
    assert e.bound == pytest.approx(6)


def test_set_cover_needs_two_and_greedy_drops_its_redundant_first_pick():
    group = np.zeros(6, dtype=np.int64)
    g = greedy_cover(TRAP, np.ones(6), group=group, cap=np.array([6.0]))
    e = exact_cover(TRAP, np.ones(6), group=group, cap=np.array([6.0]))
    assert sorted(e.chosen.tolist()) == [1, 2]
    assert e.status == "optimal"
    assert sorted(g.chosen.tolist()) == [1, 2]  # A, B, C, then A is dropped as redundant


def test_caps_per_group_are_partial_requirements():
    # group 0 = columns 0-3 needs 2; group 1 = columns 4-5 needs 1
    group = np.array([0, 0, 0, 0, 1, 1])
    cap = np.array([2.0, 1.0])
    e = exact_cover(TRAP, np.ones(6), group=group, cap=cap)
    assert len(e.chosen) == 1  # B alone: 2 of group 0 and 1 of group 1
    g = greedy_cover(TRAP, np.ones(6), group=group, cap=cap)
    assert len(g.chosen) >= len(e.chosen)


def test_exact_refuses_a_too_large_instance():
    with pytest.raises(ConfigError, match="exact solution refused"):
        exact_cover(TRAP, np.ones(6), k=2, max_candidates=2)


def test_exact_with_nothing_to_cover_is_empty_and_optimal():
    for sets in (sp.csr_matrix((3, 0), dtype=bool), sp.csr_matrix((0, 4), dtype=bool)):
        e = exact_cover(sets, np.ones(sets.shape[1]), k=2)
        assert (len(e.chosen), e.covered, e.status, e.bound) == (0, 0.0, "optimal", 0.0)


def test_exact_stopped_before_any_bound_returns_the_warm_start(capfd):
    rng = np.random.default_rng(0)
    sets = sp.random(2000, 3000, density=0.01, random_state=1, format="csr") > 0
    weight = rng.random(3000)
    g = greedy_cover(sets, weight, k=40)
    e = exact_cover(sets, weight, k=40, warm=g, time_limit_s=0.0)
    assert (e.status, e.bound) == ("time limit", None)
    assert e.covered == pytest.approx(g.covered)
    assert list(e.chosen) == list(g.chosen)
    assert "HiGHS" not in capfd.readouterr().out  # the solver's banner stays off stdout


def test_exact_in_threads_leaves_stdout_working(capfd):
    import os
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        found = list(pool.map(lambda _: exact_cover(TRAP, np.ones(6), k=2).covered, range(32)))
    assert found == [found[0]] * 32
    os.write(1, b"still printing\n")
    out = capfd.readouterr().out
    assert "still printing" in out
    assert "HiGHS" not in out


def _covered(sets: sp.csr_matrix, weight: np.ndarray, chosen: np.ndarray) -> float:
    hit = np.asarray(sets[chosen].sum(axis=0)).ravel() > 0
    return float(weight[hit].sum())


@st.composite
def instances(draw: st.DrawFn) -> tuple[sp.csr_matrix, np.ndarray, int]:
    n, m = draw(st.integers(1, 7)), draw(st.integers(1, 12))
    cells = draw(st.lists(st.booleans(), min_size=n * m, max_size=n * m))
    weight = np.array(draw(st.lists(st.integers(1, 9), min_size=m, max_size=m)), float)
    return sp.csr_matrix(np.array(cells).reshape(n, m)), weight, draw(st.integers(1, 3))


@settings(max_examples=40, deadline=None)
@given(instances())
def test_property_greedy_reports_what_it_covers_and_exact_is_the_brute_force_optimum(inst):
    sets, weight, k = inst
    g = greedy_cover(sets, weight, k=k)
    assert g.covered == pytest.approx(_covered(sets, weight, g.chosen))  # never over-reports
    assert len(g.chosen) <= k
    best = max((_covered(sets, weight, np.array(c, dtype=np.int64))
                for r in range(min(k, sets.shape[0]) + 1)
                for c in itertools.combinations(range(sets.shape[0]), r)), default=0.0)
    e = exact_cover(sets, weight, k=k, warm=g)
    assert e.covered == pytest.approx(_covered(sets, weight, e.chosen))
    assert e.covered == pytest.approx(best)
    assert e.covered >= g.covered - 1e-9
    assert g.covered >= (1 - 1 / math.e) * best - 1e-9  # the greedy guarantee


def test_lazy_greedy_picks_like_plain_greedy():
    rng = np.random.default_rng(7)
    sets = sp.csr_matrix(rng.random((60, 200)) < 0.08)
    weight = rng.random(200) + 0.5  # no ties
    lazy = greedy_cover(sets, weight, k=12)
    covered = np.zeros(200, dtype=bool)
    plain = []
    for _ in range(12):
        gains = sets.astype(float) @ (weight * ~covered)
        j = int(np.argmax(gains))
        plain.append(j)
        covered |= sets[j].toarray().ravel()
    assert lazy.chosen.tolist() == plain


# --- the hand-made town ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def town_files(tmp_path_factory: pytest.TempPathFactory, straight_street):
    """Config path and network of the hand-made town."""
    folder = tmp_path_factory.mktemp("town")
    net = straight_street(16, x0=X0, y0=Y0)
    write_town_units(folder, 200)
    write_points_csv(folder / "demand.csv", DEMAND_X, "住宅")
    write_points_csv(folder / "centres.csv", [0], "中心")
    write_points_csv(folder / "day_care.csv", [1000, 2500], "日间照护")
    config = write_town_config(folder, name="town", rules="""
[[rules]]
id = "centre_reach"
kind = "demand_share"
layer = "centre"
min_share = 0.9

[[rules]]
id = "centre_in_jiezhen"
kind = "full_coverage"
layer = "centre"
min_count = 1
""", layers={"centre": ("中心", "centre", "centres.csv"),
             "day_care": ("日间照护", None, "day_care.csv")})
    return config, net


def _patch(mp: pytest.MonkeyPatch, net) -> None:
    mp.setattr("coverage15.pipeline.build_walk_network", lambda spec, **_: net)


@pytest.fixture
def town(town_files, monkeypatch):
    """The town's config, with its network patched into the pipeline for this test."""
    _patch(monkeypatch, town_files[1])
    return town_files[0]


@pytest.fixture(scope="module")
def town_run(town_files):
    with pytest.MonkeyPatch.context() as mp:
        _patch(mp, town_files[1])
        return run(load_config(town_files[0]))


def test_the_town_is_what_we_drew(town_run):
    report = town_run.gap_report.set_index("jiezhen")
    assert report["network"].tolist() == ["full", "full"]
    assert report.loc["A街道", "centre_demand_share"] == pytest.approx(1 / 3, abs=1e-4)
    assert report.loc["B街道", "centre_demand_share"] == 0
    assert report["uncovered"].tolist() == [True, True]
    assert town_run.demand["centre_n"].tolist() == [1, 0, 0, 0, 0, 0, 0, 0]


def test_one_site_goes_where_we_computed(town_run):
    rec = recommend(town_run, layer="centre", k=1, method="both")
    assert rec.proposals["facility_id"].tolist() == ["node-10"]
    assert rec.stats["newly_covered"] == 6
    assert rec.exact is not None
    assert rec.exact.covered == 6
    assert rec.stats["greedy_gap"] == 0
    assert sorted(rec.newly_covered["row"]) == [1, 2, 3, 4, 5, 6]
    assert rec.stats["share_before"] == pytest.approx(1 / 8, abs=1e-4)
    assert rec.stats["share_after"] == pytest.approx(7 / 8, abs=1e-4)
    assert rec.proposals["jiezhen"].tolist() == ["B街道"]
    area = rec.areas.to_crs(CRS).geometry.iloc[0]
    assert area.bounds[0] == pytest.approx(X0 + 1500 - 50, abs=1)  # 1,000 m west + the band


def test_two_sites_cover_everyone(town_run):
    rec = recommend(town_run, layer="centre", k=2, method="exact")
    assert rec.stats["newly_covered"] == 7
    assert "node-10" in rec.proposals["facility_id"].tolist() or rec.stats["share_after"] == 1


def test_candidates_from_a_layer_and_from_a_file(town_run, tmp_path):
    rec = recommend(town_run, layer="centre", k=1, candidates="layer:day_care")
    assert rec.proposals["name"].tolist() == ["日间照护 2500"]
    path = write_points_csv(tmp_path / "sites.csv", [3250, 3600], "地块")
    rec = recommend(town_run, layer="centre", k=1, candidates=str(path), x="x", y="y",
                    crs="EPSG:32651", name_field="name")
    assert rec.proposals["name"].tolist() == ["地块 3250"]
    assert rec.stats["newly_covered"] == 5  # 2,400 ... 3,600
    with pytest.raises(ConfigError, match="no layer 'nope'"):
        candidate_sites(town_run, "layer:nope")


def test_node_thinning_keeps_one_node_per_square(town_run):
    assert len(candidate_sites(town_run)) == 17
    assert len(candidate_sites(town_run, spacing_m=1000)) == 5


@pytest.mark.usefixtures("town")
def test_cover_makes_both_jiezhen_pass_with_two_sites(town_run):
    rec = cover(town_run, layer="centre", method="both")
    assert rec.exact is not None
    assert len(rec.exact.chosen) == 2
    assert len(rec.greedy.chosen) >= 2
    req = rec.requirements.set_index(["rule", "jiezhen"])
    assert req.loc[("centre_reach", "A街道"), "need"] == 2
    assert req.loc[("centre_reach", "B街道"), "need"] == 5
    assert req.loc[("centre_in_jiezhen", "B街道"), "need"] == 1
    assert req["met"].all()
    after = whatif(town_run, layer="centre", add=rec.proposals)
    assert after.diff["uncovered_after"].tolist() == [False, False]
    assert after.diff["change"].tolist() == ["newly passes", "newly passes"]
    # what the sites add is counted like the re-run counts it: points newly within reach
    was = town_run.demand["centre_n"].to_numpy() > 0
    now = after.after.demand["centre_n"].to_numpy() > 0
    assert rec.stats["newly_covered"] == int((now & ~was).sum()) > 0
    assert rec.stats["share_after"] == round(now.sum() / len(now), 4)


def test_rules_that_cannot_be_used_are_refused(town_run):
    with pytest.raises(ConfigError, match="counts sites"):
        recommend(town_run, layer="centre", objective="centre_in_jiezhen")
    with pytest.raises(ConfigError, match="not in the targets"):
        cover(town_run, layer="centre", rules=["nope"])
    with pytest.raises(ConfigError, match="layer 'nope' is not in this run"):
        recommend(town_run, layer="nope")
    twins = gpd.GeoDataFrame({"facility_id": ["s1", "s1"]},
                             geometry=[shapely.Point(0, 0), shapely.Point(10, 0)],
                             crs=town_run.network.crs)
    with pytest.raises(ConfigError, match=r"1 facility_id\(s\) given to more than one"):
        whatif(town_run, layer="centre", add=twins)


@pytest.mark.usefixtures("town")
def test_whatif_remove_and_add_per_jiezhen(town_run, tmp_path):
    gone = whatif(town_run, layer="day_care", remove=["day_care-1"])  # the one at x = 2,500
    diff = gone.diff.set_index("jiezhen")
    assert diff.loc["B街道", "day_care_demand_share_before"] == pytest.approx(0.8)
    assert diff.loc["B街道", "day_care_demand_share_after"] == 0
    assert diff["day_care_count_after"].tolist() == [1, 0]
    assert diff["change"].tolist() == ["", "share down"]  # A keeps the one at x = 1,000
    assert gone.after.layers["day_care"].points["facility_id"].tolist() == ["day_care-0"]
    with pytest.raises(ConfigError, match="not in layer 'centre'"):
        whatif(town_run, layer="centre", remove=["centre-9"])
    with pytest.raises(ConfigError, match="empty"):
        whatif(town_run, layer="centre", remove=["centre-0"])
    sites = gpd.GeoDataFrame({"name": ["新"]}, geometry=[shapely.Point(X0 + 3000, Y0)], crs=CRS)
    more = whatif(town_run, layer="centre", add=sites)
    row = more.diff.set_index("jiezhen").loc["B街道"]
    assert row["centre_demand_share_after"] == 1.0
    assert row["change"] == "newly passes"
    assert "centre_added" in more.after.layers  # shown as its own layer on the map
    written = write_whatif(more, tmp_path / "w", map_html=False)
    assert set(written) == {"whatif.gpkg", "whatif.csv", "summary.json"}
    assert "added" in pyogrio.list_layers(tmp_path / "w" / "whatif.gpkg")[:, 0]


def test_cli_whatif_and_errors(town, tmp_path, capsys):
    sites = write_points_csv(tmp_path / "add.csv", [3000], "新")
    out = tmp_path / "o"
    assert main(["recommend", str(town), "--layer", "centre", "--add", str(sites), "--x", "x",
                 "--y", "y", "--crs", "EPSG:32651", "--name-field", "name", "--out", str(out),
                 "--no-map"]) == 0
    printed = capsys.readouterr().out
    assert "1 newly pass," in printed
    assert "B街道: centre 0% → 100%; centre_reach 0% → 100% (newly passes)" in printed
    diff = pd.read_csv(out / "whatif.csv", keep_default_na=False)
    assert diff["change"].tolist() == ["", "newly passes"]  # x = 3,000 reaches only B
    assert main(["recommend", str(town), "--layer", "centre", "--k", "2", "--method", "both",
                 "--out", str(tmp_path / "r"), "--tiles", "none"]) == 0
    printed = capsys.readouterr().out
    assert "re-run with the proposals: 7 of 7 promised points covered" in printed
    page = (tmp_path / "r" / "map.html").read_text(encoding="utf-8")
    assert "拟建中心" in page  # the proposals are a layer of their own on the map
    summary = json.loads((tmp_path / "r" / "summary.json").read_text(encoding="utf-8"))
    assert summary["stats"]["exact"]["covered"] == 7
    assert main(["recommend", str(town), "--layer", "centre", "--add", str(sites),
                 "--k", "2"]) == 2
    assert main(["recommend", str(town), "--layer", "nope", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "layer 'nope'" in err



def _station_town(straight_street, centres: list[float], meals: list[float],
                  homes: list[float]):
    """A 4 km street in one 街镇, judged on "1+N": a centre within 15 minutes (1,000 m at
    4 km/h) and a meal point within 10 (666.7 m)."""
    import coverage15 as c15
    from coverage15.reach.targets import Rule

    def pts(xs: list[float]) -> gpd.GeoDataFrame:
        return gpd.GeoDataFrame({"name": [f"p{x:g}" for x in xs]},
                                geometry=[shapely.Point(X0 + x, Y0) for x in xs], crs=CRS)

    rule = Rule(id="one_plus_n", kind="one_plus_n", centre_layers=("centre",),
                station_layers=("meal",), n=1, min_share=0.9, centre_minutes=15,
                station_minutes=10)
    units = gpd.GeoDataFrame({"name": ["甲街道"], "district": ["乙区"]},
                             geometry=[shapely.box(X0 - 100, Y0 - 200, X0 + 4100, Y0 + 200)],
                             crs=CRS)
    return c15.analyse(straight_street(16, x0=X0, y0=Y0),
                       {"centre": pts(centres), "meal": pts(meals)}, units,
                       demand=pts(homes), rules=[rule])


def test_would_pass_counts_stations_at_their_own_limit(straight_street):
    # a meal point at x = 0; homes at 500 (its meal point 7.5 minutes away) and 800 (12
    # minutes: within the centre's 15, not the stations' 10); the only centre at x = 4,000.
    # A new centre makes only the first pass: the second has no meal point within 10 min
    result = _station_town(straight_street, [4_000], [0], [500, 800])
    assert result.demand["meal_n"].tolist() == [1, 1]  # both within the run's 15 minutes
    rec = recommend(result, layer="centre", k=1, objective="one_plus_n")
    assert rec.stats["eligible"] == 1
    assert rec.newly_covered["row"].tolist() == [0]
    # a meal point is proposed within 10 minutes of the home that has its centre: the home
    # at 500 has the centre at 0 within 15 minutes and its meal point at 1,400 (900 m, 13.5
    # minutes) does not count, so one more meal point would make it pass
    result = _station_town(straight_street, [0], [1_400], [500])
    rec = recommend(result, layer="meal", k=1, objective="one_plus_n")
    assert rec.stats["eligible"] == 1
    site = rec.proposals.to_crs(CRS).geometry.iloc[0]
    assert abs(site.x - (X0 + 500)) <= 1_000 * 10 / 15 + 1e-6
    assert rec.stats["newly_covered"] == 1

# --- central Shanghai ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def central_rec(central_run):
    return recommend(central_run, layer="centre", k=10)


def test_greedy_never_reports_more_than_it_covers(central_run, central_rec):
    """Recompute the new coverage from the proposals alone, with the service-area code."""
    a, net, demand = central_run.config.analysis, central_run.network, central_run.demand
    snap = snap_points(net, central_rec.proposals, snap_max_m=a.snap_max_m)
    reach = network_reach(net, snap, limit_m=a.limit_m, access_leg=a.access_leg)
    _, target, _ = point_distances(net, reach, snap_points(net, demand, snap_max_m=a.snap_max_m),
                                   access_leg=a.access_leg)
    assessed = central_run.gap_report.loc[central_run.gap_report["network"] == "full"]
    keys = set(zip(assessed["district"], assessed["jiezhen"], strict=True))
    in_scope = np.array([k in keys for k in zip(demand["district"], demand["jiezhen"],
                                                 strict=True)])
    reached = np.zeros(len(demand), dtype=bool)
    reached[target] = True
    newly = reached & in_scope & (demand["centre_n"].to_numpy() == 0)
    assert central_rec.greedy.covered <= newly.sum()
    assert central_rec.stats["newly_covered"] == newly.sum()
    assert central_rec.stats["scope_points"] == in_scope.sum()
    assert set(central_rec.newly_covered["row"]) == set(np.flatnonzero(newly))
    assert len(central_rec.proposals) == 10
    assert (np.diff(central_rec.proposals["newly_covered"]) <= 0).all()  # greedy order
    assert 0 < central_rec.stats["newly_covered_share"] <= 1


def test_rerun_covers_what_was_promised(central_run, central_rec, tmp_path):
    after = whatif(central_run, layer="centre", add=central_rec.proposals)
    rows = central_rec.newly_covered["row"].to_numpy()
    assert (central_run.demand["centre_n"].to_numpy()[rows] == 0).all()
    assert (after.after.demand["centre_n"].to_numpy()[rows] > 0).all()
    assert len(after.after.layers["centre"].points) == 323 + 10
    share = after.diff["centre_demand_share_change"].dropna()
    assert (share >= 0).all()
    assert not (after.diff["change"] == "newly fails").any()
    written = write_recommendation(central_rec, central_run, tmp_path, after=after,
                                   map_html=False)
    assert {"recommend.gpkg", "recommendations.csv", "gap_report.csv"} <= set(written)
    layers = set(pyogrio.list_layers(tmp_path / "recommend.gpkg")[:, 0])
    assert layers == {"proposals", "proposal_areas", "newly_covered", "units"}
    gap = pd.read_csv(tmp_path / "gap_report.csv")
    assert gap["proposed_sites"].sum() == 10
    assert gap["newly_covered"].sum() == central_rec.stats["newly_covered"]
    assert {"centre_demand_share_after", "uncovered_after"} <= set(gap.columns)


def test_exact_at_least_greedy_on_a_subset(central_run):
    rec = recommend(central_run, layer="centre", k=5, scope="flagged", spacing_m=100,
                    method="both")
    assert rec.exact is not None
    assert rec.exact.status == "optimal"
    assert rec.exact.covered >= rec.greedy.covered
    assert rec.exact.bound == pytest.approx(rec.exact.covered)
    assert rec.stats["newly_covered"] == rec.exact.covered


def test_candidates_from_the_day_care_layer_as_the_readme_says(central_config, data_dir):
    from dataclasses import replace

    from coverage15.inputs.config import LayerSpec

    day_care = LayerSpec(key="day_care", label="老年日间照护机构", role="station",
                         path=data_dir / "facilities/elderly_services_platform.json",
                         x="longitude", y="latitude", crs="gcj02", filter="agencyType == 3",
                         name_field="agencyName")
    result = run(replace(central_config, layers={**central_config.layers,
                                                 "day_care": day_care}))
    rec = recommend(result, layer="centre", k=10, candidates="layer:day_care", method="both")
    assert (rec.stats["n_candidates"], rec.stats["n_useful"]) == (601, 49)
    assert rec.greedy.covered == rec.exact.covered == 867
    assert rec.stats["newly_covered_share"] == 0.1582  # of the 31 assessed 街镇's 5,482


def test_cover_tells_what_the_sites_add_as_the_re_run_counts_it(central_run):
    rec = cover(central_run, layer="centre")
    # 58 flagged 街镇 with 7,448 residential points, 3,262 within reach of a centre; the 14
    # sites bring 864 more within reach (not only those whose reach makes a rule pass)
    assert (rec.stats["scope_points"], rec.stats["before"]) == (7448, 3262)
    assert len(rec.proposals) == 14
    assert rec.stats["newly_covered"] == rec.proposals["newly_covered"].sum() == 864
    assert rec.stats["share_after"] == round((3262 + 864) / 7448, 4)
    # a new centre makes a point pass 1+N only where its meal point is within 10 minutes:
    # 13 of the 28 failing 1+N requirements can be met by centres alone (24 when stations
    # were counted at the centre's 15 minutes); the others need meal points too
    req = rec.requirements.loc[rec.requirements["rule"] == "one_plus_n"]
    assert (len(req), int(req["met"].sum())) == (28, 13)


def test_objective_one_plus_n_counts_points_with_their_stations(central_run):
    rec = recommend(central_run, layer="centre", k=3, objective="one_plus_n")
    d = central_run.demand.iloc[rec.newly_covered["row"]]
    stations = d["meal_point_n"] + d["canteen_n"]
    assert (stations >= 1).all()
    assert (~d["pass_one_plus_n"].astype(bool)).all()
    # their stations within the stations' own limit (10 minutes), not the centre's 15
    nearest = d[["meal_point_m", "canteen_m"]].min(axis=1)
    assert (nearest <= 1_000 * 10 / 15 + 1e-6).all()


def test_cli_recommend_on_central(data_dir, tmp_path, capsys):
    assert main(["recommend", str(CENTRAL), "--layer", "centre", "--k", "3", "--out",
                 str(tmp_path), "--no-map"]) == 0
    out = capsys.readouterr().out
    assert "re-run with the proposals:" in out
    assert "promised points covered" in out
    table = pd.read_csv(tmp_path / "recommendations.csv")
    assert table["rank"].tolist() == [1, 2, 3]
    assert {"lon", "lat", "newly_covered", "cumulative_share"} <= set(table.columns)


def test_a_centre_beyond_the_network_lifts_a_count_flag(central_run):
    """新泾镇 (no streets in the data) fails only 'a centre in every 街镇': one more fixes it."""
    units = central_run.units
    xinjing = units.loc[units["unit"] == "新泾镇"].geometry.iloc[0]
    site = gpd.GeoDataFrame({"name": ["新中心"]}, geometry=[xinjing.representative_point()],
                            crs=units.crs)
    change = whatif(central_run, layer="centre", add=site)
    row = change.diff.set_index("jiezhen").loc["新泾镇"]
    assert row["network"] == "none"
    assert bool(row["uncovered_before"])
    assert pd.isna(row["uncovered_after"])  # passes its count rules, walking rules unjudged
    assert row["change"] == "newly passes"
    assert (change.diff["change"] == "newly passes").sum() == 1
