"""``coverage15.analyse`` on hand-made GeoDataFrames, with answers computed by hand."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
import shapely

import coverage15 as c15
from coverage15.reach.targets import Rule

X0, Y0 = 350_000.0, 3_450_000.0
CRS = "EPSG:32651"


def _points(*xs: float, **columns: list[object]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(columns, geometry=[shapely.Point(X0 + x, Y0) for x in xs], crs=CRS)


@pytest.fixture
def street(straight_street):
    return straight_street(8)  # 2,000 m of street along x, nodes every 250 m


@pytest.fixture
def units():
    # one 街镇 around the street, wholly inside the network's extent (street box + 500 m)
    return gpd.GeoDataFrame({"name": ["甲街道"], "district": ["乙区"]},
                            geometry=[shapely.box(X0 - 100, Y0 - 100, X0 + 2_100, Y0 + 100)],
                            crs=CRS)


RULES = [Rule(id="centre_walk", kind="demand_share", layer="centre", min_share=0.9),
         Rule(id="centre_in_jiezhen", kind="full_coverage", layer="centre", min_count=1)]


def test_shares_and_verdict_by_hand(street, units):
    # a centre at x = 0; homes at 500, 900 and 1,500 m: 15 min at 4 km/h reaches 1,000 m,
    # so two of three are covered (a share of 2/3, failing 90 %)
    centres = _points(0.0, name=["中心"])
    homes = _points(500.0, 900.0, 1_500.0)
    result = c15.analyse(street, {"centre": centres}, units, demand=homes, rules=RULES)
    row = result.gap_report.iloc[0]
    assert row["jiezhen"] == "甲街道"
    assert row["district"] == "乙区"
    assert row["network"] == "full"
    assert row["demand_points"] == 3
    assert row["centre_count"] == 1
    assert row["centre_demand_share"] == pytest.approx(2 / 3, abs=1e-3)
    assert bool(row["pass_centre_in_jiezhen"]) is True
    assert bool(row["uncovered"]) is True
    facility = result.facilities["centre"].iloc[0]
    assert facility["name"] == "中心"
    assert facility["jiezhen"] == "甲街道"
    assert facility["snap_m"] == pytest.approx(0.0, abs=1e-6)  # (a round trip via EPSG:4326)
    assert facility["reach_m"] == pytest.approx(1_000.0, abs=1e-3)
    assert bool(facility["on_network"]) is True
    assert len(result.service_areas) == 1
    assert result.config.analysis.limit_m == pytest.approx(1_000.0)


def test_the_limit_comes_from_the_analysis_spec(street, units):
    # 22.5 minutes at 4 km/h = 1,500 m: homes at 500, 900 and 1,400 m are all covered
    result = c15.analyse(street, {"centre": _points(0.0)}, units,
                         demand=_points(500.0, 900.0, 1_400.0), rules=RULES,
                         analysis=c15.AnalysisSpec(minutes=22.5))
    assert result.gap_report.loc[0, "centre_demand_share"] == pytest.approx(1.0)
    assert not bool(result.gap_report.loc[0, "uncovered"])
    assert result.config.analysis.minutes == 22.5  # what the outputs will report


def test_any_geodataframe_or_geoseries_of_points_is_a_layer(street, units):
    series = _points(0.0).geometry  # no columns at all: ids and names are made up
    result = c15.analyse(street, {"centre": series}, units,
                         demand=_points(500.0, 1_500.0), rules=RULES)
    assert result.facilities["centre"]["facility_id"].tolist() == ["centre-0"]
    assert result.gap_report.loc[0, "centre_demand_share"] == pytest.approx(0.5)


def test_inputs_are_not_changed(street, units):
    centres = _points(0.0, name=["中心"])
    before = centres.copy(), units.copy()
    c15.analyse(street, {"centre": centres}, units, rules=RULES)
    pd.testing.assert_frame_equal(centres, before[0])
    pd.testing.assert_frame_equal(units, before[1])


def test_read_points_keeps_rows_set_aside_and_the_label(tmp_path, street, units):
    table = tmp_path / "centres.csv"
    # row 2 has no coordinates; row 3 repeats row 1 (same name and point)
    table.write_text("name,lng,lat\nA,121.43,31.15\nB,,\nA,121.43,31.15\n", encoding="utf-8")
    points = c15.read_points(table, key="x", x="lng", y="lat", crs="EPSG:4326",
                             name_field="name", label="社区综合为老服务中心", role="centre")
    assert points["name"].tolist() == ["A"]
    result = c15.analyse(street, {"centre": points}, units, rules=RULES)
    assert result.layers["centre"].spec.label == "社区综合为老服务中心"
    assert result.layers["centre"].spec.role == "centre"
    assert sorted(result.rejected["source_row"].tolist()) == [1, 2]
    assert set(result.rejected["layer"]) == {"centre"}
