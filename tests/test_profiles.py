"""Walking profiles, per-rule limits, weights, sum and ratio rules (issue #18), by hand.

Every network is one straight street (``straight_street``: nodes every 250 m along x), so
each walking distance is a difference of x coordinates.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

import coverage15 as c15
from coverage15.inputs.specs import WalkProfile
from coverage15.reach.targets import Rule

X0, Y0 = 350_000.0, 3_450_000.0
CRS = "EPSG:32651"
STANDARD = WalkProfile("standard", 1.11 * 3.6, "标准")  # 15 min: 999 m
FRAIL = WalkProfile("frail", 0.64 * 3.6, "体弱")  # 15 min: 576 m
PROFILES = c15.AnalysisSpec(walk_speed_kmh=STANDARD.speed_kmh, profiles=(STANDARD, FRAIL),
                            verdict_profile="standard")


def _points(*xs: float, **columns: list[object]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(columns, geometry=[shapely.Point(X0 + x, Y0) for x in xs], crs=CRS)


@pytest.fixture
def street(straight_street):
    return straight_street(8)  # 2,000 m


def _units(*names_districts: tuple[str, str, float, float]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"name": [n for n, _, _, _ in names_districts],
         "district": [d for _, d, _, _ in names_districts]},
        geometry=[shapely.box(X0 + a, Y0 - 100, X0 + b, Y0 + 100)
                  for _, _, a, b in names_districts], crs=CRS)


@pytest.fixture
def one_unit():
    return _units(("甲街道", "乙区", -100, 2_100))


def test_a_point_passes_at_standard_speed_and_fails_for_frail_walkers(street, one_unit):
    # the home is 650 m from the centre: within 999 m (1.11 m/s), beyond 576 m (0.64 m/s)
    rule = Rule(id="centre_walk", kind="demand_share", layer="centre", min_share=0.9)
    result = c15.analyse(street, {"centre": _points(0.0)}, one_unit,
                         demand=_points(650.0), rules=[rule], analysis=PROFILES)
    row = result.gap_report.iloc[0]
    assert row["centre_walk_share"] == 1.0
    assert bool(row["pass_centre_walk"]) is True
    assert row["centre_walk_share_frail"] == 0.0
    assert bool(row["pass_centre_walk_frail"]) is False
    assert row["fails_at_profiles"] == "frail"
    assert bool(row["uncovered"]) is False  # the verdict is the standard profile's
    assert row["reason"] == ("passes at the verdict speed (standard, 1.11 m/s) but fails for "
                             "slower walkers: centre_walk 0% at frail (0.64 m/s)")
    assert "体弱" in row["reason_zh"]
    # service areas are drawn at the verdict limit, not the largest one
    assert result.facilities["centre"]["reach_m"].iloc[0] == pytest.approx(999.0, abs=1e-3)
    home = result.demand.iloc[0]
    assert bool(home["pass_centre_walk"]) is True
    assert bool(home["pass_centre_walk_frail"]) is False
    assert home["centre_m"] == pytest.approx(650.0, abs=1e-3)


def test_profiles_without_slower_walkers_change_nothing(street, one_unit):
    rule = Rule(id="centre_walk", kind="demand_share", layer="centre", min_share=0.9)
    args = ({"centre": _points(0.0)}, one_unit)
    plain = c15.analyse(street, *args, demand=_points(650.0, 1_200.0), rules=[rule])
    assert "fails_at_profiles" not in plain.gap_report.columns
    assert "centre_walk_share_frail" not in plain.gap_report.columns
    assert plain.gap_report.loc[0, "centre_walk_share"] == 0.5


def test_one_plus_n_with_its_own_limits_for_centre_and_stations(street, one_unit):
    # centre within 15 min, stations within 10 min (4 km/h: 1,000 m and 666.7 m);
    # centre and station both at 1,000 m; homes at 200 (800 m away: centre yes, station
    # no) and 500 (500 m: both)
    rule = Rule(id="one_plus_n", kind="one_plus_n", centre_layers=("centre",),
                station_layers=("meal",), centre_minutes=15, station_minutes=10,
                min_share=0.9)
    result = c15.analyse(street, {"centre": _points(1_000.0), "meal": _points(1_000.0)},
                         one_unit, demand=_points(200.0, 500.0), rules=[rule])
    assert result.gap_report.loc[0, "one_plus_n_share"] == 0.5
    # the same layout with one 15-minute limit: both pass
    same = Rule(id="one_plus_n", kind="one_plus_n", centre_layers=("centre",),
                station_layers=("meal",), min_share=0.9)
    both = c15.analyse(street, {"centre": _points(1_000.0), "meal": _points(1_000.0)},
                       one_unit, demand=_points(200.0, 500.0), rules=[same])
    assert both.gap_report.loc[0, "one_plus_n_share"] == 1.0


def test_rule_limits_scale_with_each_profile_and_reach_beyond_the_run_limit(street, one_unit):
    # a 20-minute centre rule at 4 km/h reaches 1,333 m, beyond the run's 15 minutes: the
    # distances go as far as the largest limit; at 0.64 m/s, 20 min = 768 m
    rule = Rule(id="centre_20", kind="demand_share", layer="centre", minutes=20)
    frail = c15.AnalysisSpec(profiles=(WalkProfile("standard", 4.0), FRAIL),
                             verdict_profile="standard")
    result = c15.analyse(street, {"centre": _points(0.0)}, one_unit,
                         demand=_points(700.0, 1_300.0), rules=[rule], analysis=frail)
    row = result.gap_report.iloc[0]
    assert row["centre_20_share"] == 1.0
    assert row["centre_20_share_frail"] == 0.5
    assert row["centre_demand_share"] == 0.5  # the layer's own share: the run's 1,000 m
    assert result.facilities["centre"]["reach_m"].iloc[0] == pytest.approx(1_000.0, abs=1e-3)
    distance = Rule(id="centre_600m", kind="demand_share", layer="centre", distance_m=600)
    fixed = c15.analyse(street, {"centre": _points(0.0)}, one_unit,
                        demand=_points(500.0, 700.0), rules=[distance], analysis=frail)
    assert fixed.gap_report.loc[0, "centre_600m_share"] == 0.5
    assert fixed.gap_report.loc[0, "centre_600m_share_frail"] == 0.5  # metres: any speed


def test_weighted_shares_by_hand(street):
    units = _units(("甲街道", "乙区", -100, 1_000), ("丙街道", "丁区", 1_000, 2_100))
    rule = Rule(id="centre_walk", kind="demand_share", layer="centre")
    # persons per point: 10, 30 and 60 in 甲 (homes at 200, 600, 900 m from a centre at 0
    # is within 1,000 m for all... use 1,200 m for the third: beyond)
    homes = _points(200.0, 600.0, 1_200.0, 1_500.0, persons=[10, 30, 60, None])
    result = c15.analyse(street, {"centre": _points(0.0)}, units, demand=homes,
                         rules=[rule], weight_field="persons")
    gap = result.gap_report.set_index("jiezhen")
    assert gap.loc["甲街道", "centre_walk_share"] == 1.0
    assert gap.loc["甲街道", "centre_walk_people_share"] == 1.0
    # 丙: 1,200 m (60 persons, not covered) and 1,500 m (no weight: left out of people)
    assert gap.loc["丙街道", "centre_walk_share"] == 0.0
    assert gap.loc["丙街道", "centre_walk_people_share"] == 0.0
    assert result.demand["persons_source"].iloc[0] == "column"
    # a per-街镇 population spread over the points: 甲 has 300 aged 60+, 丙 none listed
    population = pd.DataFrame({"age_60_plus": [300.0]}, index=pd.Index(["甲街道"]))
    population.attrs.update(unit="jiezhen", column="age_60_plus")
    homes = _points(200.0, 600.0, 1_100.0, 1_500.0)
    spread = c15.analyse(street, {"centre": _points(0.0)}, units, demand=homes, rules=[rule],
                         population=population)
    persons = spread.demand["persons"].tolist()
    assert persons[:2] == [150.0, 150.0]
    assert all(pd.isna(p) for p in persons[2:])
    assert (spread.demand["persons_source"] == "estimate").all()
    gap = spread.gap_report.set_index("jiezhen")
    assert gap.loc["甲街道", "centre_walk_people_share"] == 1.0
    assert pd.isna(gap.loc["丙街道", "centre_walk_people_share"])  # no population: no share
    assert gap.loc["丙街道", "centre_walk_share"] == 0.0  # points are still counted


def test_weighted_share_differs_from_the_point_share(street, one_unit):
    rule = Rule(id="centre_walk", kind="demand_share", layer="centre")
    homes = _points(200.0, 600.0, 1_500.0, persons=[10, 30, 60])
    result = c15.analyse(street, {"centre": _points(0.0)}, one_unit, demand=homes,
                         rules=[rule], weight_field="persons")
    row = result.gap_report.iloc[0]
    assert row["centre_walk_share"] == pytest.approx(2 / 3, abs=1e-4)
    assert row["centre_walk_people_share"] == pytest.approx(0.4)



def test_share_basis_people_judges_walking_rules_on_persons(street, one_unit):
    # homes 200, 600 and 1,500 m from the centre with 10, 30 and 60 persons: 2 of 3 points
    # within 1,000 m (67 %), but 40 of 100 persons (40 %); the target is 50 %
    rule = Rule(id="centre_walk", kind="demand_share", layer="centre", min_share=0.5)
    homes = _points(200.0, 600.0, 1_500.0, persons=[10, 30, 60])
    args = ({"centre": _points(0.0)}, one_unit)
    points = c15.analyse(street, *args, demand=homes, rules=[rule], weight_field="persons")
    assert bool(points.gap_report.loc[0, "pass_centre_walk"]) is True
    people = c15.AnalysisSpec(share_basis="people")
    weighed = c15.analyse(street, *args, demand=homes, rules=[rule], weight_field="persons",
                          analysis=people)
    row = weighed.gap_report.iloc[0]
    assert row["centre_walk_share"] == pytest.approx(2 / 3, abs=1e-4)  # still shown beside
    assert row["centre_walk_people_share"] == pytest.approx(0.4)
    assert bool(row["pass_centre_walk"]) is False
    assert bool(row["uncovered"]) is True
    # 50 of the 100 persons are needed, 40 reach it: 10 more
    assert "centre_walk: 40% of residents within reach" in row["reason"]
    assert "10 more residents" in row["reason"]
    assert "10 名居民" in row["reason_zh"]
    # without weights a walking rule is not judged on people
    plain = c15.analyse(street, *args, demand=_points(200.0, 600.0, 1_500.0), rules=[rule],
                        analysis=people)
    assert "no population weights" in plain.check.skipped["centre_walk"]
    assert "pass_centre_walk" not in plain.gap_report.columns
    assert bool(plain.gap_report.loc[0, "uncovered"]) is False  # no rule judged fails

@pytest.fixture
def two_districts():
    units = _units(("甲街道", "乙区", -100, 1_000), ("丙街道", "丁区", 1_000, 2_100))
    districts = gpd.GeoDataFrame(
        {"name": ["乙区", "丁区"]},
        geometry=[shapely.box(X0 - 100, Y0 - 100, X0 + 1_000, Y0 + 100),
                  shapely.box(X0 + 1_000, Y0 - 100, X0 + 2_100, Y0 + 100)], crs=CRS)
    return units, districts


BED_RULES = [
    Rule(id="beds_citywide", kind="facility_sum", layer="care_home", attribute="beds",
         min_value=500),
    Rule(id="beds_per_1000_60plus", kind="ratio", layer="care_home", attribute="beds",
         population="age_60_plus", per=1000, min_value=30, scope="district"),
    Rule(id="floor_area", kind="ratio", layer="care_home", attribute="floor_area_m2",
         population="population", per=1000, min_value=40, scope="district"),
    Rule(id="beds_per_district", kind="facility_sum", layer="care_home", attribute="beds",
         min_value=100, scope="district"),
]


def test_sum_and_ratio_rules_with_their_columns(street, two_districts):
    units, districts = two_districts
    homes = _points(100.0, 300.0, 1_500.0, beds=[120, 80, 150])  # 乙区 200 beds, 丁区 150
    population = pd.DataFrame({"age_60_plus": [5_000.0, 10_000.0], "population": [2e4, 4e4]},
                              index=pd.Index(["乙区", "丁区"]))
    result = c15.analyse(street, {"care_home": homes}, units, districts=districts,
                         rules=BED_RULES, population=population)
    (total,) = [c for c in result.check.citywide if c.rule.id == "beds_citywide"]
    assert total.value == 350
    assert total.passed is False
    assert "350 beds (target ≥ 500)" in total.reason
    report = result.district_report.set_index("district")
    # 200 beds per 5,000 aged 60+ = 40 per 1,000; 150 per 10,000 = 15 per 1,000
    assert report.loc["乙区", "beds_per_1000_60plus_value"] == 40.0
    assert report.loc["丁区", "beds_per_1000_60plus_value"] == 15.0
    assert bool(report.loc["乙区", "pass_beds_per_1000_60plus"]) is True
    assert bool(report.loc["丁区", "pass_beds_per_1000_60plus"]) is False
    assert report.loc["丁区", "beds_per_district_value"] == 150
    assert "pass_floor_area" not in report.columns
    assert result.check.skipped["floor_area"] == "no floor_area_m2 column in layer care_home"
    # district rules stay out of the 街镇 report
    assert "pass_beds_per_1000_60plus" not in result.gap_report.columns


def test_sum_and_ratio_rules_without_their_data(street, two_districts):
    units, districts = two_districts
    homes = _points(100.0, 1_500.0)  # no beds column
    result = c15.analyse(street, {"care_home": homes}, units, districts=districts,
                         rules=BED_RULES)
    assert result.check.skipped["beds_citywide"] == "no beds column in layer care_home"
    assert not result.check.citywide
    count = Rule(id="homes_per_1000", kind="ratio", layer="care_home",
                 population="age_60_plus", per=1000, min_value=0.1, scope="district")
    no_table = c15.analyse(street, {"care_home": homes}, units, districts=districts,
                           rules=[count])
    # the district check says why (the 街镇 check does not judge district rules)
    assert "pass_homes_per_1000" not in no_table.district_report.columns
    # a population for one district only: the other is not judged
    population = pd.DataFrame({"age_60_plus": [5_000.0]}, index=pd.Index(["乙区"]))
    partial = c15.analyse(street, {"care_home": homes}, units, districts=districts,
                          rules=[count], population=population)
    report = partial.district_report.set_index("district")
    assert report.loc["乙区", "homes_per_1000_value"] == pytest.approx(0.2)
    assert bool(report.loc["乙区", "pass_homes_per_1000"]) is True
    assert pd.isna(report.loc["丁区", "pass_homes_per_1000"])
    assert pd.isna(report.loc["丁区", "homes_per_1000_value"])


ELDERLY = WalkProfile("elderly", 0.76 * 3.6, "老年")  # 15 min: 684 m


def test_service_area_unions_shrink_for_slower_walkers(street, one_unit):
    # one centre mid-street (x = 1,000): 15 minutes reach 999 m each way at 1.11 m/s, 684 m
    # at 0.76 and 576 m at 0.64; each union is that stretch of street grown by the 50 m band
    a = c15.AnalysisSpec(walk_speed_kmh=STANDARD.speed_kmh,
                         profiles=(STANDARD, ELDERLY, FRAIL), verdict_profile="standard")
    result = c15.analyse(street, {"centre": _points(1_000.0)}, one_unit, analysis=a)
    standard = result.unions["centre"]
    unions = result.profile_unions["centre"]
    assert set(unions) == {"elderly", "frail"}  # the verdict's is ``unions``
    band = a.buffer_m
    for profile, reach_m in (("elderly", 684.0), ("frail", 576.0)):
        union = unions[profile]
        west, south, east, north = union.bounds
        assert west == pytest.approx(X0 + 1_000 - reach_m - band, abs=0.01)
        assert east == pytest.approx(X0 + 1_000 + reach_m + band, abs=0.01)
        assert (south, north) == pytest.approx((Y0 - band, Y0 + band), abs=0.01)
        # a band around the reached street only: its area within the rounding of the caps
        assert union.area == pytest.approx(2 * reach_m * 2 * band + np.pi * band**2, rel=0.01)
        assert standard.contains(union)
        assert union.area < standard.area - 1_000
    assert unions["elderly"].contains(unions["frail"])
    # the standard union is the one of the facilities' own polygons, at 999 m
    assert standard.bounds[0] == pytest.approx(X0 + 1_000 - 999.0 - band, abs=0.01)



def test_profile_failures_judge_walking_rules_at_each_speed():
    """Walking rules at the profile's own columns, count rules as they are, empty = not judged."""
    from coverage15.reach.gaps import profile_failures

    report = pd.DataFrame({
        "one_plus_n_share": [0.95, 0.95, 0.5, 0.95],
        "pass_one_plus_n": pd.array([True, True, False, None], dtype="boolean"),
        "pass_one_plus_n_frail": pd.array([True, False, False, None], dtype="boolean"),
        "pass_centre_in_jiezhen": pd.array([True, True, True, False], dtype="boolean"),
    })
    failed = profile_failures(report, ["standard", "frail"])
    assert failed["standard"].tolist() == [False, False, True, True]
    assert failed["frail"].tolist() == [False, True, True, True]
