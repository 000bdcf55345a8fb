"""End-to-end run on the real central-Shanghai data."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from coverage15 import settings
from coverage15.inputs.config import load_config
from coverage15.pipeline import run, write_outputs
from coverage15.reach.kernel import service_areas


def _row(report: pd.DataFrame, name: str) -> pd.Series:
    rows = report.loc[report["jiezhen"] == name]
    assert len(rows) == 1, name
    return rows.iloc[0]


def test_layer_counts(central_run):
    layers = central_run.layers
    # platform listing: 325 centres and 1,561 meal points citywide (README of the data)
    assert layers["centre"].n_source == 325
    assert layers["meal_point"].n_source == 1561
    assert layers["canteen"].n_source == 97
    # 2 centres lack coordinates; of the meal points 9 lack them, 1 sits on the fallback
    # point and 18 repeat an earlier row's name and point
    assert len(layers["centre"].points) == 323
    reasons = layers["meal_point"].rejected["reason"].value_counts()
    assert reasons["missing coordinates"] == 9
    assert reasons.filter(like="geocoding fallback").sum() == 1
    assert reasons.filter(like="duplicate of source row").sum() == 18
    assert len(layers["meal_point"].points) == 1533
    assert layers["meal_point"].set_aside_counts().to_dict() == {
        "duplicate of an earlier row (same name and point)": 18, "missing coordinates": 9,
        "on excluded point (121.473701, 31.230416): a known geocoding fallback": 1}
    # nothing is lost silently: every source row is used or set aside with a reason
    for layer in layers.values():
        assert len(layer.points) + len(layer.rejected) == layer.n_source
    assert len(central_run.demand) == 24753
    assert len(central_run.rejected) == 2 + 28 + 9 + 1352  # 9 care homes on a fallback point


def test_only_facilities_near_the_network_are_used(central_run):
    on = {k: int(f["on_network"].sum()) for k, f in central_run.facilities.items()}
    assert on == {"centre": 57, "meal_point": 298, "canteen": 16, "care_home": 80}
    # every used facility lies within the snap limit of a street
    for f in central_run.facilities.values():
        assert (f.loc[f["on_network"], "snap_m"] <= 500).all()
    assert central_run.service_areas.groupby("layer").size().to_dict() == on


def test_units_are_classified_by_the_network_extent(central_run):
    report = central_run.gap_report
    assert len(report) == 217
    counts = report["network"].value_counts().to_dict()
    assert counts["full"] == 31  # 32 wholly inside the extent; 平凉路街道 has streets missing
    # a suburban town far from the central network is "no network", never uncovered
    huating = _row(report, "华亭镇")
    assert huating["network"] == "none"
    assert pd.isna(huating["uncovered"])
    assert pd.isna(huating["centre_demand_share"])
    assert "no network" in huating["reason"]


def test_known_good_jiezhen_passes(central_run):
    row = _row(central_run.gap_report, "淮海中路街道")
    assert row["network"] == "full"
    assert row["centre_count"] >= 1
    assert row["pass_centre_in_jiezhen"]
    assert row["pass_one_plus_n"]
    assert not row["uncovered"]


def test_known_gap_jiezhen_fails(central_run):
    # the platform lists no 社区综合为老服务中心 in 湖南路街道 (徐汇区)
    row = _row(central_run.gap_report, "湖南路街道")
    assert row["network"] == "full"
    assert row["centre_count"] == 0
    assert not row["pass_centre_in_jiezhen"]
    assert row["uncovered"]
    assert "centre_in_jiezhen: 0 社区综合为老服务中心" in row["reason"]


def test_shares_are_shares(central_run):
    report = central_run.gap_report
    shares = report[[c for c in report.columns if c.endswith("_share")]]
    values = shares.to_numpy(dtype=float)
    finite = values[np.isfinite(values)]
    assert finite.size > 0
    assert ((finite >= 0) & (finite <= 1)).all()


def test_demand_coverage_is_consistent(central_run):
    demand = central_run.demand
    # covered means a facility within the limit, i.e. a nearest distance within 1,000 m
    for key in ("centre", "meal_point"):
        covered = demand[f"{key}_n"] > 0
        assert (demand.loc[covered, f"{key}_m"] <= 1000 + 1e-6).all()
        assert demand.loc[~covered, f"{key}_m"].isna().all()
    # 1+N: pass needs a centre and a station; judged only in 街镇 wholly inside the network
    status = central_run.gap_report.set_index(["district", "jiezhen"])["network"]
    full = pd.Series(list(zip(demand["district"], demand["jiezhen"], strict=True))).map(
        status).eq("full").to_numpy()
    assert demand["pass_one_plus_n"].isna().to_numpy().tolist() == (~full).tolist()
    assert int(full.sum()) == 5482  # the residential points of the 31 assessed 街镇
    passing = demand["pass_one_plus_n"].fillna(False).astype(bool)
    assert (demand.loc[passing, "centre_n"] >= 1).all()
    stations = demand["meal_point_n"] + demand["canteen_n"]
    assert (stations[passing] >= 1).all()


def test_citywide_rule_and_skipped_rules(central_run):
    citywide = {c.rule.id: c for c in central_run.check.citywide}
    assert citywide["centres_citywide"].value == 323
    assert citywide["centres_citywide"].passed is False
    assert set(central_run.check.skipped) == {"rehab_rental_in_jiezhen",
                                              "social_work_in_jiezhen", "service_floor_area"}
    assert central_run.check.skipped["service_floor_area"] == (
        "no floor_area_m2 column in layer centre")
    # beds: the listing's 617 usable homes (9 on a geocoding fallback are set aside)
    beds = citywide["beds_citywide"]
    assert beds.value == 150_677
    assert beds.passed is False
    district = central_run.district_report.set_index("district")
    assert district.loc["静安区", "beds_per_1000_60plus_value"] == 14.17
    assert bool(district.loc["青浦区", "pass_beds_per_1000_60plus"]) is True


def test_service_areas_grow_with_minutes(central_run):
    net = central_run.network
    centres = central_run.facilities["centre"]
    centres = centres.loc[centres["on_network"]].head(10)
    small = service_areas(net, centres, minutes=10)
    large = service_areas(net, centres, minutes=15)
    assert (large["reach_m"] >= small["reach_m"]).all()
    assert (large["reach_m"] > small["reach_m"]).any()
    for a, b in zip(small.geometry, large.geometry, strict=True):
        assert b.buffer(0.01).contains(a)


def test_service_area_is_not_a_hull(central_run):
    # a polygon covers only a band along reachable streets: smaller than its hull, with the
    # unreachable block interiors left as holes
    geoms = central_run.service_areas.to_crs(32651).geometry.to_numpy()
    ratio = shapely.area(geoms) / shapely.area(shapely.convex_hull(geoms))
    assert np.median(ratio) < 0.8
    holes = shapely.get_num_interior_rings(shapely.get_geometry(geoms, 0))
    assert (holes > 0).mean() > 0.5


def test_outputs_are_written(central_outputs, central_run):
    out = central_outputs
    for name in ("coverage.gpkg", "gap_report.csv", "district_report.csv", "rejected.csv",
                 "summary.json", "map.html"):
        assert (out / name).is_file(), name
    layers = dict(pyogrio.list_layers(out / "coverage.gpkg"))
    assert {"service_areas", "units", "demand", "facilities", "districts"} <= set(layers)
    units = gpd.read_file(out / "coverage.gpkg", layer="units")
    assert units.crs.to_epsg() == 4326
    assert len(units) == 217
    sa = gpd.read_file(out / "coverage.gpkg", layer="service_areas")
    assert len(sa) == len(central_run.service_areas)
    # each layer's union at each walking profile, the verdict's first and the largest
    union = gpd.read_file(out / "coverage.gpkg", layer="service_area_union")
    keys = list(central_run.config.layers)
    assert list(union["layer"]) == [k for k in keys for _ in range(3)]
    assert list(union["profile"]) == ["standard", "elderly", "frail"] * len(keys)
    assert list(union["verdict"]) == [1, 0, 0] * len(keys)
    assert list(union["limit_m"]) == [1000.0, 684.0, 576.0] * len(keys)
    for _, areas in union.groupby("layer", sort=False):
        assert areas["area_km2"].is_monotonic_decreasing
    # the facilities keep their sources' columns, typed; a source column named like one of
    # coverage15's (the canteens' own district) is kept beside it as src_district
    fac = gpd.read_file(out / "coverage.gpkg", layer="facilities")
    assert len(fac) == 323 + 1533 + 97 + 617
    types = dict(zip(*(pyogrio.read_info(out / "coverage.gpkg", layer="facilities")[k]
                       for k in ("fields", "dtypes")), strict=True))
    assert types["agencyType"] == "int64"
    canteens = fac[fac["layer"] == "canteen"]
    assert canteens["address"].notna().all()
    assert canteens["agencyType"].isna().all()
    assert (fac.loc[fac["layer"] == "centre", "agencyType"] == 6).all()
    assert canteens["src_district"].notna().all()
    # the district each official list names is the one its canteen's point lies in
    assert (canteens["src_district"] == canteens["district"]).all()
    csv = pd.read_csv(out / "gap_report.csv")
    assert len(csv) == 217
    assert {"district", "jiezhen", "uncovered", "pass_one_plus_n"} <= set(csv.columns)
    assert csv["uncovered"].sum() == central_run.gap_report["uncovered"].fillna(False).sum()
    districts = pd.read_csv(out / "district_report.csv")
    assert len(districts) == 16
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["limit_m"] == 1000
    assert (summary["buffer_m"], summary["snap_max_m"], summary["access_leg"]) == (50, 500, True)
    assert summary["network"]["edges"] == central_run.network.n_edges == 6291
    # CSVs open in Excel with their Chinese names: UTF-8 with a byte-order mark
    assert (out / "gap_report.csv").read_bytes().startswith(b"\xef\xbb\xbfdistrict,jiezhen,")
    # the location check's rows where they landed, and their counts (flagged: they count)
    assert summary["location_check"] == {
        "centre": {"rows": 11, "action": "flag"}, "meal_point": {"rows": 38, "action": "flag"},
        "care_home": {"rows": 30, "action": "flag"}, "demand": {"rows": 373, "action": "flag"}}
    located = gpd.read_file(out / "coverage.gpkg", layer="location_check")
    assert len(located) == 11 + 38 + 30 + 373
    row = located.loc[located["name"] == "上海市徐汇区徐家汇街道社区综合为老服务中心"].iloc[0]
    assert (row["named"], row["landed"], row["distance_m"]) == ("徐家汇街道", "闵行区 七宝镇",
                                                                 5048)
    assert units.loc[units["jiezhen"] == "七宝镇"].geometry.iloc[0].contains(row.geometry)
    html = (out / "map.html").read_text(encoding="utf-8")
    assert "OpenStreetMap contributors" in html
    assert "湖南路街道" in html
    assert not list(out.glob(".coverage15-staging-*"))


def test_new_layer_needs_only_a_config_entry(tmp_path: Path, data_dir: Path):
    """A user's 社工站 layer (two hand-placed test points) is picked up by config alone."""
    # two made-up test points, one inside 淮海中路街道 and one inside 外滩街道 (not real sites)
    stations = gpd.GeoDataFrame(
        {"name": ["test station A", "test station B"]},
        geometry=[shapely.Point(121.4700, 31.2190), shapely.Point(121.4870, 31.2385)],
        crs="EPSG:4326",
    )
    stations.to_file(tmp_path / "social_work.gpkg", driver="GPKG")
    base = (Path(__file__).resolve().parents[1] / "data" / "shanghai-central.toml").read_text(
        encoding="utf-8")
    base = base.replace('targets = "targets/shanghai-2025.toml"',
                        f'targets = "{Path(__file__).resolve().parents[1]}'
                        '/data/targets/shanghai-2025.toml"')
    extra = f"""
[layers.social_work]
label = "社工站"
path = "{tmp_path / 'social_work.gpkg'}"
name_field = "name"
"""
    cfg_file = tmp_path / "with-social-work.toml"
    cfg_file.write_text(base + extra, encoding="utf-8")
    result = run(load_config(cfg_file))
    report = result.gap_report
    assert "pass_social_work_in_jiezhen" in report.columns
    assert "social_work_in_jiezhen" not in result.check.skipped
    passing = report.loc[report["pass_social_work_in_jiezhen"].fillna(False).astype(bool),
                         "jiezhen"]
    assert sorted(passing) == ["外滩街道", "淮海中路街道"]
    assert int(result.facilities["social_work"]["on_network"].sum()) == 2


def test_gap_report_is_deterministic(central_run, central_outputs, tmp_path: Path,
                                     monkeypatch):
    again = tmp_path / "again"
    written = write_outputs(central_run, again, map_html=False, parquet=True)
    # every file that was moved in is listed, in order, under its path in the folder
    on_disk = {p.relative_to(again).as_posix(): p for p in again.rglob("*")
               if p.is_file() and not p.name.startswith(".")}
    assert list(written.items()) == sorted(on_disk.items())
    assert {"coverage.gpkg", "gap_report.csv", "district_report.csv", "summary.json",
            "parquet/units.parquet"} <= set(written)
    # written again without --parquet: the earlier GeoParquet files do not linger
    assert "parquet/units.parquet" not in write_outputs(central_run, again, map_html=False)
    assert not (again / "parquet").exists()
    first = (central_outputs / "gap_report.csv").read_bytes()
    assert (again / "gap_report.csv").read_bytes() == first
    monkeypatch.setattr(settings, "reuse_results", False)  # compute everything again
    rerun = run(central_run.config)
    assert rerun.reused == []
    write_outputs(rerun, tmp_path / "rerun", map_html=False)
    assert (tmp_path / "rerun" / "gap_report.csv").read_bytes() == first


def test_a_rerun_reuses_the_distance_work(central_run, central_outputs, tmp_path: Path,
                                          monkeypatch):
    from coverage15.scale import partition

    def no_work(*args, **kwargs):
        raise AssertionError("computed although the cache holds the answer")

    assert central_run.network.source is not None  # named by its OSM file's content
    monkeypatch.setattr(partition, "_layer_kernel", no_work)
    monkeypatch.setattr(partition, "snap_points", no_work)
    rerun = run(central_run.config)
    assert rerun.reused == ["demand snaps", "centre", "meal_point", "canteen", "care_home"]
    assert rerun.network.source == central_run.network.source
    assert shapely.equals_exact(rerun.service_areas.geometry.to_numpy(),
                                central_run.service_areas.geometry.to_numpy(), 0).all()
    write_outputs(rerun, tmp_path, map_html=False)
    for name in ("gap_report.csv", "district_report.csv", "problems.csv"):
        assert (tmp_path / name).read_bytes() == (central_outputs / name).read_bytes()
    assert any(line.startswith("reused from an earlier run") for line in rerun.summary())


@pytest.mark.parametrize("minutes", [5.0, 10.0])
def test_fewer_minutes_never_cover_more(central_run, minutes):
    from dataclasses import replace

    cfg = central_run.config
    shorter = replace(cfg, analysis=replace(cfg.analysis, minutes=minutes))
    result = run(shorter)
    for key in ("centre", "meal_point"):
        full = central_run.demand[f"{key}_n"].to_numpy()
        fewer = result.demand[f"{key}_n"].to_numpy()
        assert (fewer <= full).all()
        assert fewer.sum() < full.sum()


def test_progress_reaches_its_total(central_config):
    seen = []
    run(central_config, progress=lambda step, done, total: seen.append((step, done, total)))
    ticks = [(done, total) for step, done, total in seen if step == "service areas" and total]
    assert ticks[-1] == (2570, 2570)  # every loaded facility, on the network or not
    assert all(a[0] <= b[0] for a, b in itertools.pairwise(ticks))


def test_the_configs_working_crs_is_used_for_the_network_too(central_run):
    """UTM 50N instead of 51N: the network is projected to it, and the answers stand."""
    from dataclasses import replace

    config = central_run.config
    other = replace(config, analysis=replace(config.analysis, working_crs="EPSG:32650"))
    result = run(other)
    assert result.network.crs == "EPSG:32650"
    assert (result.gap_report["network"] == "full").sum() == 31  # 平凉路: streets missing
    assert result.gap_report["network"].equals(central_run.gap_report["network"])
    assert result.gap_report["pass_centre_in_jiezhen"].equals(
        central_run.gap_report["pass_centre_in_jiezhen"])
    # lengths differ by the two zones' scale factors (Shanghai is 4.5 degrees from 50N's
    # central meridian: about 0.2 % longer), so a 街镇 at the edge of a threshold may flip
    flipped = result.gap_report["uncovered"].ne(central_run.gap_report["uncovered"]).sum()
    assert flipped <= 1
    assert result.gap_report["one_plus_n_share"].sub(
        central_run.gap_report["one_plus_n_share"]).abs().max() < 0.05
    assert not [p for p in result.problems if "no 街镇 lies inside" in p.message]


def test_district_figures_add_up_to_their_jiezhen(central_run):
    """A district is the sum of its 街镇: counts, points and area agree with the 街镇 rows."""
    d = central_run.district_report.set_index("district")
    sums = central_run.gap_report.groupby("district")[
        ["centre_count", "meal_point_count", "canteen_count", "demand_points"]].sum()
    assert len(d) == 16
    pd.testing.assert_frame_equal(d.loc[sums.index, sums.columns], sums, check_names=False)
    area = central_run.gap_report.groupby("district")["area_km2"].sum()
    # the district's area is its 街镇' union (OSM borders overlap a little: 1.7 % in 崇明)
    assert (d.loc[area.index, "area_km2"] / area).between(0.98, 1.0001).all()
    assert d.loc["黄浦区", "centre_count"] == 12


def test_district_rows_name_their_uncovered_jiezhen(central_run):
    """A district can pass its own (summed) rules while its 街镇 fail; the row says which."""
    d = central_run.district_report.set_index("district")
    assert d["jiezhen_count"].sum() == 217
    assert d["jiezhen_uncovered"].sum() == 58  # the run's 58 uncovered 街镇
    # 静安区 is flagged on its beds per 1,000 aged 60+ (14.2 < 30), not on walking (partial
    # network), while 12 of its 14 街镇 are flagged
    assert bool(d.loc["静安区", "uncovered"]) is True
    assert d.loc["静安区", "reason"].startswith("partial network")
    assert "beds_per_1000_60plus: 14.2 beds per 1,000 age_60_plus" in d.loc["静安区", "reason"]
    assert (d.loc["静安区", "jiezhen_count"], d.loc["静安区", "jiezhen_uncovered"]) == (14, 12)
    assert "大宁路街道" in d.loc["静安区", "uncovered_jiezhen"].split("、")
    assert d.loc["闵行区", "jiezhen_uncovered"] == 0
    assert pd.isna(d.loc["闵行区", "uncovered_jiezhen"])  # none (NULL in GIS formats)
    gap = central_run.gap_report
    flagged = gap[(gap["district"] == "黄浦区") & gap["uncovered"].fillna(False).astype(bool)]
    assert d.loc["黄浦区", "uncovered_jiezhen"].split("、") == list(flagged["jiezhen"])


def test_jiezhen_without_district_names_take_the_district_they_lie_in(central_run):
    """No [units] district_field: each 街镇 gets the district its interior point lies in."""
    from dataclasses import replace

    config = central_run.config
    result = run(replace(config, units=replace(config.units, district_field=None)))
    (note,) = [p for p in result.problems if "took the district they lie in" in p.message]
    assert note.count == 217
    d = result.district_report.set_index("district")
    assert d.loc["黄浦区", "centre_count"] == 12
    assert d["demand_points"].sum() == central_run.district_report["demand_points"].sum()
    # the same districts as the names in the data give, for all but border-straddling 街镇
    same = (result.gap_report["district"] == central_run.gap_report["district"]).mean()
    assert same > 0.97


def test_a_stretching_working_crs_is_warned():
    import networkx as nx

    from coverage15.network.checks import scale_problems
    from coverage15.network.graph import network_from_graph

    g = nx.MultiGraph(crs="EPSG:4326")
    g.add_node(1, x=121.47, y=31.23)
    g.add_node(2, x=121.48, y=31.23)
    g.add_edge(1, 2)
    assert scale_problems(network_from_graph(g, min_component_m=0, working_crs="EPSG:32651")
                           ) == []
    (warning,) = scale_problems(network_from_graph(g, min_component_m=0,
                                                    working_crs="EPSG:3857"))
    assert "stretches lengths by 16.9%" in warning.message
    assert (warning.severity, warning.id) == ("error", "working-crs")  # a run stops on it
