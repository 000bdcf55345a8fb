"""Coverage per unit on hand-made squares whose answers are known."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from coverage15.reach.coverage import assign_units, coverage_by_unit, demand_coverage

CRS = "EPSG:32651"
X0, Y0 = 350000.0, 3450000.0


def _units() -> gpd.GeoDataFrame:
    # two 1 km squares side by side, and one far away
    return gpd.GeoDataFrame(
        {"unit": ["西", "东", "远"], "district": ["甲区", "甲区", "乙区"]},
        geometry=[shapely.box(X0, Y0, X0 + 1000, Y0 + 1000),
                  shapely.box(X0 + 1000, Y0, X0 + 2000, Y0 + 1000),
                  shapely.box(X0 + 9000, Y0, X0 + 10000, Y0 + 1000)],
        crs=CRS,
    )


def _points(xy) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(geometry=[shapely.Point(X0 + x, Y0 + y) for x, y in xy], crs=CRS)


def test_assign_units():
    points = _points([(500, 500), (1500, 500), (5000, 500), (9500, 10)])
    assert assign_units(points, _units()).tolist() == [0, 1, -1, 2]


def test_demand_coverage_counts_and_nearest():
    pairs = {"c": (np.array([0, 1, 1]), np.array([0, 0, 2]), np.array([300.0, 200.0, 900.0]))}
    cover = demand_coverage(4, pairs)
    assert cover["c_n"].tolist() == [2, 0, 1, 0]
    assert cover["c_m"].tolist()[0] == 200.0
    assert np.isnan(cover["c_m"][1])


def test_coverage_by_unit_known_answers():
    units = _units()
    demand = _points([(100, 100), (900, 900), (1500, 500), (1600, 600)])
    cover = demand_coverage(4, {"c": (np.array([0, 0]), np.array([0, 2]),
                                      np.array([10.0, 10.0]))})
    facilities = {"c": _points([(500, 500), (600, 600), (1500, 100)]).to_crs(4326)}
    union = shapely.box(X0, Y0, X0 + 1500, Y0 + 1000)  # all of 西, half of 东
    extent = shapely.box(X0 - 10, Y0 - 10, X0 + 1500, Y0 + 1010)
    table = coverage_by_unit(
        units, facility_units={"c": assign_units(facilities["c"], units).to_numpy()},
        demand_unit=assign_units(demand.to_crs(4326), units).to_numpy(), demand_cover=cover,
        unions={"c": union}, extent=extent, working_crs=CRS)
    assert table["c_count"].tolist() == [2, 1, 0]
    assert table["demand_points"].tolist() == [2, 2, 0]
    assert table["c_demand_share"].tolist()[:2] == [0.5, 0.5]
    assert np.isnan(table["c_demand_share"][2])
    assert table["c_area_share"].tolist() == pytest.approx([1.0, 0.5, 0.0])
    assert table["network_share"].tolist() == pytest.approx([1.0, 0.5, 0.0])
    assert table["network"].tolist() == ["full", "partial", "none"]
    assert table["area_km2"].tolist() == pytest.approx([1.0, 1.0, 1.0])


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 2000), st.floats(0, 1000)), min_size=1, max_size=30),
    st.lists(st.booleans(), min_size=30, max_size=30),
    st.floats(0, 2500),
)
def test_shares_stay_in_unit_interval(xy, covered, union_width):
    demand = _points(xy)
    n = len(xy)
    hit = np.flatnonzero(np.array(covered[:n]))
    cover = demand_coverage(n, {"c": (np.zeros(len(hit), dtype=np.int64), hit,
                                      np.full(len(hit), 5.0))})
    units = _units()
    where = assign_units(demand, units).to_numpy()
    table = coverage_by_unit(
        units, facility_units={"c": where[:1]}, demand_unit=where, demand_cover=cover,
        unions={"c": shapely.box(X0 - 100, Y0 - 100, X0 + union_width, Y0 + 1100)},
        extent=shapely.box(X0, Y0, X0 + union_width, Y0 + 1000), working_crs=CRS)
    for column in ("c_demand_share", "c_area_share", "network_share"):
        values = table[column].dropna().to_numpy()
        assert ((values >= 0) & (values <= 1)).all()
    # more covered points never lower a share
    more = demand_coverage(n, {"c": (np.zeros(n, dtype=np.int64), np.arange(n),
                                     np.full(n, 5.0))})
    table_more = coverage_by_unit(
        units, facility_units={"c": where[:1]}, demand_unit=where, demand_cover=more,
        unions={}, extent=shapely.box(X0, Y0, X0 + 1, Y0 + 1), working_crs=CRS)
    both = table["c_demand_share"].notna()
    assert (table_more.loc[both, "c_demand_share"] >= table.loc[both, "c_demand_share"]).all()
