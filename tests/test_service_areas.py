"""Network reach, point distances, reached stretches and service-area polygons on tiny
hand-made street graphs whose answers can be worked out on paper.

All graphs are in UTM 51N metres around (350 000, 3 450 000). A straight "path" has nodes
0..4 every 250 m eastwards along y = Y0; distances below are hand-computed.
"""

from __future__ import annotations

import itertools
import math

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from coverage15.inputs.config import AnalysisSpec
from coverage15.network.graph import WalkNetwork, snap_points
from coverage15.reach import _bands
from coverage15.reach._bands import bands_by_group, chain_lines, group_blocks, same_groups
from coverage15.reach.distances import nearest_facility, network_reach, point_distances
from coverage15.reach.kernel import layer_reach, service_areas
from coverage15.reach.service_areas import (
    Intervals,
    interval_lines,
    reached_intervals,
    service_area_polygons,
    union_areas,
)
from hand_networks import (
    CRS,
    X0,
    Y0,
    edge_of,
    grid_net,
    make_net,
    node_dist,
    path_net,
    point_st,
    points,
    snap,
    square_net,
)


def covered(net: WalkNetwork, intervals: Intervals, group: int = 0) -> dict[tuple, tuple]:
    """``{(u id, v id): (start, end)}`` of one group's stretches, oriented u -> v."""
    out = {}
    for e, s, t in zip(intervals.edge[intervals.group == group],
                       intervals.start_m[intervals.group == group],
                       intervals.end_m[intervals.group == group], strict=True):
        key = (int(net.node_ids[net.edge_u[e]]), int(net.node_ids[net.edge_v[e]]))
        assert key not in out, "one merged stretch per edge expected here"
        out[key] = (float(s), float(t))
    return out


def assert_covered(net: WalkNetwork, intervals: Intervals, want: dict, group: int = 0) -> None:
    got = covered(net, intervals, group)
    assert set(got) == set(want)
    for key, (start, end) in want.items():
        assert got[key] == pytest.approx((start, end), abs=1e-6), key


def total(intervals: Intervals, group: int = 0) -> float:
    mine = intervals.group == group
    return float((intervals.end_m[mine] - intervals.start_m[mine]).sum())


# --- the hand-made networks themselves -----------------------------------------------------


def test_path_network_is_what_we_drew():
    net = path_net()
    assert net.n_nodes == 5
    assert net.n_edges == 4
    np.testing.assert_allclose(net.edge_length, 250.0)
    assert net.crs == CRS


def test_fifteen_minutes_at_four_kmh_is_1000_m():
    assert AnalysisSpec(walk_speed_kmh=4.0, minutes=15.0).limit_m == pytest.approx(1000.0)
    assert AnalysisSpec(walk_speed_kmh=3.6, minutes=10.0).limit_m == pytest.approx(600.0)


# --- network_reach and reached_intervals ---------------------------------------------------


def test_facility_at_node_reaches_along_path():
    net = path_net()
    s = snap(net, (0, 0))
    assert s.edge[0] == edge_of(net, 0, 1)
    assert s.offset_m[0] == pytest.approx(0.0)
    assert s.snap_m[0] == pytest.approx(0.0)
    reach = network_reach(net, s, limit_m=1000.0, access_leg=False)
    assert node_dist(net, reach) == pytest.approx({0: 0, 1: 250, 2: 500, 3: 750, 4: 1000},
                                                  abs=1e-6)
    iv = reached_intervals(net, reach)
    assert_covered(net, iv, {(0, 1): (0, 250), (1, 2): (0, 250),
                             (2, 3): (0, 250), (3, 4): (0, 250)})
    assert total(iv) == pytest.approx(1000.0, abs=1e-6)


def test_limit_900_covers_the_last_edge_partly():
    net = path_net()
    reach = network_reach(net, snap(net, (0, 0)), limit_m=900.0, access_leg=False)
    assert node_dist(net, reach) == pytest.approx({0: 0, 1: 250, 2: 500, 3: 750}, abs=1e-6)
    iv = reached_intervals(net, reach)
    cov = covered(net, iv)
    assert cov[(3, 4)] == pytest.approx((0.0, 150.0), abs=1e-6)
    assert total(iv) == pytest.approx(900.0, abs=1e-6)


def test_facility_mid_edge():
    net = path_net()
    s = snap(net, (350, 0))  # 100 m along edge 1-2
    assert s.edge[0] == edge_of(net, 1, 2)
    assert s.offset_m[0] == pytest.approx(100.0)
    reach = network_reach(net, s, limit_m=1000.0, access_leg=False)
    assert node_dist(net, reach) == pytest.approx({0: 350, 1: 100, 2: 150, 3: 400, 4: 650},
                                                  abs=1e-6)
    # 300 m: nodes 1 (100) and 2 (150) only; 200 m back, the whole own edge, 150 m ahead
    reach = network_reach(net, s, limit_m=300.0, access_leg=False)
    assert node_dist(net, reach) == pytest.approx({1: 100, 2: 150}, abs=1e-6)
    iv = reached_intervals(net, reach)
    assert_covered(net, iv, {(0, 1): (50, 250), (1, 2): (0, 250), (2, 3): (0, 150)})
    assert total(iv) == pytest.approx(600.0, abs=1e-6)


def test_stretch_within_the_own_edge_only():
    # limit 60 m from 100 m along a 250 m edge: [40, 160] and no node at all
    net = path_net()
    reach = network_reach(net, snap(net, (350, 0)), limit_m=60.0, access_leg=False)
    assert len(reach.node) == 0
    iv = reached_intervals(net, reach)
    assert_covered(net, iv, {(1, 2): (40, 160)})


def test_access_leg_reduces_the_reach():
    net = path_net()
    s = snap(net, (350, 30))  # 30 m north of 100 m along edge 1-2
    assert s.edge[0] == edge_of(net, 1, 2)
    assert s.offset_m[0] == pytest.approx(100.0)
    assert s.snap_m[0] == pytest.approx(30.0)
    with_leg = network_reach(net, s, limit_m=300.0, access_leg=True)
    assert with_leg.access_m[0] == pytest.approx(30.0)
    assert node_dist(net, with_leg) == pytest.approx({1: 130, 2: 180}, abs=1e-6)
    assert total(reached_intervals(net, with_leg)) == pytest.approx(2 * (300 - 30), abs=1e-6)
    without = network_reach(net, s, limit_m=300.0, access_leg=False)
    assert without.access_m[0] == 0.0
    assert node_dist(net, without) == pytest.approx({1: 100, 2: 150}, abs=1e-6)
    assert total(reached_intervals(net, without)) == pytest.approx(600.0, abs=1e-6)


def test_access_leg_longer_than_the_limit_reaches_nothing():
    net = path_net()
    s = snap(net, (350, 40))
    reach = network_reach(net, s, limit_m=30.0, access_leg=True)
    assert len(reach.node) == 0
    assert len(reached_intervals(net, reach).edge) == 0


def test_unsnapped_source_reaches_nothing():
    net = path_net()
    s = snap(net, (350, 300), (0, 0), snap_max_m=100.0)
    assert list(s.edge[:1]) == [-1]
    assert np.isnan(s.snap_m[0])
    reach = network_reach(net, s, limit_m=1000.0)
    assert np.isnan(reach.access_m[0])
    assert 0 not in set(reach.source.tolist())
    assert set(reach.source.tolist()) == {1}
    iv = reached_intervals(net, reach)
    assert set(iv.group.tolist()) == {1}


def test_square_loop_takes_the_shorter_way_round():
    net = square_net()
    s = snap(net, (50, 0))  # 50 m from node 0 on edge 0-1
    reach = network_reach(net, s, limit_m=1000.0, access_leg=False)
    # node 2 opposite: 200 + 250 via node 1, not 50 + 250 + 250 via nodes 0 and 3
    assert node_dist(net, reach) == pytest.approx({0: 50, 1: 200, 2: 450, 3: 300}, abs=1e-6)
    # a point 150 m along edge 3-2 (x = 150, y = 250): 50 + 250 + 150 via nodes 0 and 3,
    # rather than 200 + 250 + 100 via nodes 1 and 2
    tgt = snap(net, (150, 250))
    src, t, d = point_distances(net, reach, tgt, access_leg=False)
    assert list(src) == [0]
    assert list(t) == [0]
    assert d[0] == pytest.approx(450.0)
    # with 460 m the whole loop (1000 m) is covered up to the unreached 80 m around (190, 250)
    reach = network_reach(net, s, limit_m=460.0, access_leg=False)
    iv = reached_intervals(net, reach)
    assert total(iv) == pytest.approx(1000.0 - 80.0, abs=1e-6)


def test_two_sources_in_one_group_merge_their_stretches():
    net = path_net()
    s = snap(net, (0, 0), (300, 0))
    reach = network_reach(net, s, limit_m=200.0, access_leg=False)
    single = reached_intervals(net, reach)
    assert total(single, 0) == pytest.approx(200.0)
    assert total(single, 1) == pytest.approx(400.0)
    merged = reached_intervals(net, reach, group=np.array([0, 0]))
    # [0, 200] and [100, 500] overlap on [100, 200]: union is [0, 500]
    assert total(merged, 0) == pytest.approx(500.0, abs=1e-6)
    assert set(merged.group.tolist()) == {0}
    # 148 m each: [0, 148] and [152, 448] leave a 4 m gap on edge 0-1 that stays open
    reach = network_reach(net, s, limit_m=148.0, access_leg=False)
    merged = reached_intervals(net, reach, group=np.array([0, 0]))
    on_01 = merged.edge == edge_of(net, 0, 1)
    np.testing.assert_allclose(merged.start_m[on_01], [0.0, 152.0], atol=1e-6)
    np.testing.assert_allclose(merged.end_m[on_01], [148.0, 250.0], atol=1e-6)
    assert total(merged, 0) == pytest.approx(444.0, abs=1e-6)


# --- interval_lines ------------------------------------------------------------------------


@pytest.fixture
def l_net() -> WalkNetwork:
    # one L-shaped street: east 300 m, then north 400 m (700 m long), vertex at (300, 0)
    return make_net({0: (0, 0), 1: (300, 400)}, [(0, 1, [(0, 0), (300, 0), (300, 400)])])


def test_interval_lines_partial_stretch_of_a_bent_edge(l_net):
    assert l_net.edge_length[0] == pytest.approx(700.0)
    iv = Intervals(group=np.array([0, 0, 0]), edge=np.array([0, 0, 0]),
                   start_m=np.array([100.0, 350.0, 0.0]), end_m=np.array([500.0, 650.0, 700.0]))
    lines = interval_lines(l_net, iv)
    # [100, 500] goes round the corner: (100, 0) -> (300, 0) -> (300, 200)
    want = [(X0 + 100, Y0), (X0 + 300, Y0), (X0 + 300, Y0 + 200)]
    np.testing.assert_allclose(shapely.get_coordinates(lines[0]), want, atol=1e-6)
    assert lines[0].length == pytest.approx(400.0)
    # [350, 650] lies past the corner: a straight piece (300, 50) -> (300, 350)
    np.testing.assert_allclose(shapely.get_coordinates(lines[1]),
                               [(X0 + 300, Y0 + 50), (X0 + 300, Y0 + 350)], atol=1e-6)
    assert lines[1].length == pytest.approx(300.0)
    # the whole edge is the edge itself
    assert lines[2].equals(l_net.edge_geometry[0])
    assert interval_lines(l_net, Intervals(*(np.array([], dtype=int),) * 2,
                                           np.array([]), np.array([]))).shape == (0,)


def test_interval_lines_from_a_real_reach_on_a_bent_edge(l_net):
    # from the v end (300, 400), 500 m reaches back round the corner to (100, 0)
    reach = network_reach(l_net, snap(l_net, (300, 400)), limit_m=500.0, access_leg=False)
    iv = reached_intervals(l_net, reach)
    assert_covered(l_net, iv, {(0, 1): (200.0, 700.0)})
    line = interval_lines(l_net, iv)[0]
    assert line.length == pytest.approx(500.0)
    xy = shapely.get_coordinates(line)
    np.testing.assert_allclose(xy[[0, -1]], [(X0 + 200, Y0), (X0 + 300, Y0 + 400)], atol=1e-6)


# --- polygons ------------------------------------------------------------------------------


def facilities(*offsets: tuple[float, float]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"name": [f"f{i}" for i in range(len(offsets))]},
                            geometry=points(*offsets))


def test_polygon_area_of_one_fully_reached_edge():
    net = make_net({0: (0, 0), 1: (500, 0)}, [(0, 1)])
    b, length = 50.0, 500.0
    out = service_areas(net, facilities((0, 0)), minutes=15, walk_speed_kmh=4, buffer_m=b,
                        snap_max_m=100, access_leg=False)
    assert out.crs == CRS
    assert out["reach_m"].iloc[0] == pytest.approx(length)
    assert out["snap_m"].iloc[0] == pytest.approx(0.0)
    want = 2 * b * length + math.pi * b * b  # a stadium: 57 854 m²
    assert out.geometry.iloc[0].area == pytest.approx(want, rel=0.01)


def test_the_kernel_gives_reach_polygon_and_street_length_per_facility():
    net = path_net()  # 0 -- 250 -- 500 -- 750 -- 1000 m along x
    # from x = 0 and from x = 600, 300 m each way along the street; a point 400 m off the
    # street is not snapped and reaches nothing
    s = points((0, 0), (600, 0), (600, 400))
    spec = AnalysisSpec(minutes=4.5, walk_speed_kmh=4.0, buffer_m=10.0, snap_max_m=100.0,
                        access_leg=False)  # 300 m
    out = layer_reach(net, s, spec, threads=1)
    assert out.reached_m.tolist() == pytest.approx([300.0, 600.0, 0.0])
    assert out.on_network.tolist() == [True, True, False]
    assert out.polygons[0].area == pytest.approx(300 * 20 + math.pi * 100, rel=0.01)
    assert out.polygons[2].is_empty
    bare = layer_reach(net, s, spec, polygons=False)  # the candidates' way: no polygons
    assert bare.reached_m.tolist() == out.reached_m.tolist()
    assert all(p.is_empty for p in bare.polygons)


def test_polygon_is_a_band_around_reached_streets_only():
    net = path_net()
    # 500 m from node 0: streets x in [0, 500] reached, [500, 1000] not
    out = service_areas(net, facilities((0, 0)), minutes=7.5, walk_speed_kmh=4, buffer_m=50,
                        snap_max_m=100, access_leg=False)
    poly = out.geometry.iloc[0]
    assert out["reach_m"].iloc[0] == pytest.approx(500.0)
    inside = points((250, 49), (250, -49), (549, 0), (-49, 0), (0, 0))
    outside = points((250, 51), (250, -51), (551, 0), (1000, 0), (750, 0), (-51, 0))
    assert shapely.covers(poly, inside.to_numpy()).all()
    assert not shapely.intersects(poly, outside.to_numpy()).any()
    # nothing of the polygon lies farther than the band from the reached street
    reached = shapely.LineString([(X0, Y0), (X0 + 500, Y0)])
    assert shapely.hausdorff_distance(poly.exterior, reached) <= 50 + 1e-6


def test_polygons_grow_with_minutes():
    net = square_net()
    fac = facilities((50, 0), (250, 120))
    areas = [service_areas(net, fac, minutes=m, walk_speed_kmh=4, buffer_m=30, snap_max_m=100,
                           access_leg=True) for m in (2, 5, 8, 20)]
    for small, big in itertools.pairwise(areas):
        for i in range(2):
            assert big.geometry.iloc[i].buffer(1e-6).contains(small.geometry.iloc[i])
            assert big["reach_m"].iloc[i] >= small["reach_m"].iloc[i]
    # 2 minutes = 133.3 m both ways from each facility, all on the loop
    assert areas[0]["reach_m"].to_list() == pytest.approx([2 * 400 / 3] * 2)
    # 20 minutes reach the whole 1000 m loop
    assert areas[-1]["reach_m"].to_list() == pytest.approx([1000.0] * 2)


def test_facility_off_the_network_gets_an_empty_polygon():
    net = path_net()
    fac = facilities((500, 300), (500, 0))
    out = service_areas(net, fac, minutes=15, walk_speed_kmh=4, buffer_m=50, snap_max_m=100)
    assert out.geometry.iloc[0].is_empty
    assert np.isnan(out["snap_m"].iloc[0])
    assert out["reach_m"].iloc[0] == 0.0
    assert not out.geometry.iloc[1].is_empty
    assert out["reach_m"].iloc[1] == pytest.approx(1000.0)
    assert list(out.index) == list(fac.index)


def test_service_area_polygons_by_group():
    net = path_net()
    reach = network_reach(net, snap(net, (0, 0), (1000, 0), (500, 500), snap_max_m=100),
                          limit_m=100.0, access_leg=False)
    iv = reached_intervals(net, reach, group=np.array([0, 0, 2]))
    polys = service_area_polygons(net, iv, n_groups=4, buffer_m=10.0, quad_segs=8)
    assert polys.shape == (4,)
    assert polys[0].geom_type == "MultiPolygon"  # two separate 100 m pieces at the ends
    assert polys[0].area == pytest.approx(2 * (2 * 10 * 100 + math.pi * 100), rel=0.01)
    assert polys[1].is_empty
    assert polys[2].is_empty  # the third source is unsnapped
    assert polys[3].is_empty


# --- properties on random grids -----------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(
    shape=st.tuples(st.integers(2, 4), st.integers(2, 4)),
    fac=point_st,
    minutes=st.tuples(st.floats(0.5, 6.0), st.floats(0.1, 4.0)),
)
def test_property_polygons_nest(shape, fac, minutes):
    net = grid_net(*shape)
    f = facilities(fac)
    small = service_areas(net, f, minutes=minutes[0], walk_speed_kmh=4, buffer_m=20, snap_max_m=80)
    big = service_areas(net, f, minutes=sum(minutes), walk_speed_kmh=4, buffer_m=20, snap_max_m=80)
    assert big["reach_m"].iloc[0] >= small["reach_m"].iloc[0] - 1e-6
    if not small.geometry.iloc[0].is_empty:  # (an empty geometry is "covered" by nothing)
        assert big.geometry.iloc[0].buffer(1e-6).covers(small.geometry.iloc[0])
    # reached street length never exceeds the network
    assert big["reach_m"].iloc[0] <= net.edge_length.sum() + 1e-6


# --- the fast paths: chained bands, nearest facility, unions, tiles, snapping -------------


def arc_rounding(buffer_m: float, quad_segs: int) -> float:
    """How far a buffer's polygonal arcs may lie inside the true circle."""
    return buffer_m * (1 - math.cos(math.pi / (4 * quad_segs)))


def assert_same_band(a: np.ndarray, b: np.ndarray, tol: float) -> None:
    """Same empties; every point of each polygon within ``tol`` of the other."""
    assert np.array_equal(shapely.is_empty(a), shapely.is_empty(b))
    ok = ~shapely.is_empty(a)
    assert shapely.is_valid(a[ok]).all()
    assert shapely.covers(shapely.buffer(a[ok], tol), b[ok]).all()
    assert shapely.covers(shapely.buffer(b[ok], tol), a[ok]).all()


@settings(max_examples=40, deadline=None)
@given(
    shape=st.tuples(st.integers(2, 5), st.integers(2, 5)),
    facs=st.lists(point_st, min_size=1, max_size=6),
    minutes=st.floats(0.3, 12.0),
    quad_segs=st.sampled_from([2, 4, 8]),
    grouped=st.booleans(),
)
def test_property_chained_bands_equal_multiline_buffer(shape, facs, minutes, quad_segs,
                                                       grouped):
    net = grid_net(*shape)
    s = snap(net, *facs, snap_max_m=60.0)
    reach = network_reach(net, s, limit_m=4000.0 / 60.0 * minutes, access_leg=True)
    group = np.arange(len(facs)) // 2 if grouped else None
    iv = reached_intervals(net, reach, group=group)
    n = len(facs)
    chains = service_area_polygons(net, iv, n_groups=n, buffer_m=20.0, quad_segs=quad_segs)
    lines = service_area_polygons(net, iv, n_groups=n, buffer_m=20.0, quad_segs=quad_segs,
                                  method="lines")
    assert_same_band(chains, lines, arc_rounding(20.0, quad_segs) + 1e-6)
    # the same answer on one thread and on several
    one = service_area_polygons(net, iv, n_groups=n, buffer_m=20.0, quad_segs=quad_segs,
                                threads=1)
    assert all(shapely.equals_exact(one, chains, tolerance=0.0))


def test_chains_keep_every_stretch_once_and_never_mix_groups():
    net = grid_net(4, 4)
    s = snap(net, (0, 0), (300, 300), (150, 0))
    reach = network_reach(net, s, limit_m=350.0, access_leg=False)
    iv = reached_intervals(net, reach)
    lines = interval_lines(net, iv)
    length = net.edge_length[iv.edge]
    chains, group = chain_lines(lines, iv.group, node_u=net.edge_u[iv.edge],
                                node_v=net.edge_v[iv.edge], at_u=iv.start_m <= 1e-6,
                                at_v=iv.end_m >= length - 1e-6)
    assert len(chains) < len(lines)  # stretches were joined through nodes
    for g in range(3):
        mine = shapely.union_all(lines[iv.group == g])
        theirs = shapely.union_all(chains[group == g])
        assert theirs.length == pytest.approx(mine.length, abs=1e-6)
        assert shapely.symmetric_difference(mine, theirs).length == pytest.approx(0, abs=1e-6)


def _chains_of(*paths):
    """chain_lines on hand-made stretches, one group; ``paths`` as (xy list, u node, v node)."""
    lines = np.array([shapely.LineString(xy) for xy, _, _ in paths], dtype=object)
    node_u = np.array([u for _, u, _ in paths])
    node_v = np.array([v for _, _, v in paths])
    ends = np.ones(len(paths), dtype=bool)
    return chain_lines(lines, np.zeros(len(paths), dtype=np.int64), node_u=node_u,
                       node_v=node_v, at_u=ends, at_v=ends)


def test_at_a_node_with_three_ends_two_join_and_one_ends_a_chain():
    # a T at (0, 0): ends sorted by direction are east, north, west; east pairs with the
    # next half a turn round (north), west ends its own chain
    chains, group = _chains_of(([(-30, 0), (0, 0)], 1, 0), ([(0, 0), (40, 0)], 0, 2),
                               ([(0, 0), (0, 25)], 0, 3))
    assert sorted(shapely.length(chains).tolist()) == [30.0, 65.0]
    bent = chains[np.argmax(shapely.length(chains))]
    assert shapely.get_coordinates(bent).tolist() in ([[40, 0], [0, 0], [0, 25]],
                                                      [[0, 25], [0, 0], [40, 0]])
    assert group.tolist() == [0, 0]


def test_a_figure_eight_is_one_closed_chain_through_its_middle_twice():
    # two squares meeting at (0, 0): four ends there, paired straight across (east with
    # west, north with south), so a single walk covers all eight sides and comes back
    c = 0
    paths = [([(0, 0), (10, 0)], c, 1), ([(10, 0), (10, 10)], 1, 2),
             ([(10, 10), (0, 10)], 2, 3), ([(0, 10), (0, 0)], 3, c),
             ([(0, 0), (-10, 0)], c, 4), ([(-10, 0), (-10, -10)], 4, 5),
             ([(-10, -10), (0, -10)], 5, 6), ([(0, -10), (0, 0)], 6, c)]
    chains, _ = _chains_of(*paths)
    assert len(chains) == 1
    xy = shapely.get_coordinates(chains[0])
    assert len(xy) == 9
    assert shapely.is_closed(chains[0])
    assert shapely.length(chains[0]) == 80.0
    assert (xy == 0).all(axis=1).sum() == 3  # start, middle and end at the shared node
    # the band of the walk is the band of the eight sides
    sides = shapely.union_all(shapely.buffer([shapely.LineString(p[0]) for p in paths], 3.0))
    walk = shapely.buffer(chains[0], 3.0)
    assert shapely.symmetric_difference(walk, sides).area < 1e-6
    assert walk.area == pytest.approx(sides.area, rel=1e-12)


def test_gc_is_paused_inside_and_restored_after():
    import gc

    from coverage15.reach._bands import gc_paused

    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # it was off before: it stays off
    finally:
        gc.enable()


def test_blocks_of_groups_never_split_a_group():
    group = np.array([0, 0, 1, 1, 1, 2, 3, 3])
    # about 3 rows each: groups 0 and 1 (the block starting at row 0 runs to the next
    # group start past row 3), then group 2, then group 3
    assert group_blocks(group, rows=3) == [slice(0, 5), slice(5, 6), slice(6, 8)]
    assert group_blocks(group, rows=100) == [slice(0, 8)]
    assert group_blocks(np.array([], dtype=np.int64)) == []


def test_polygons_built_in_many_blocks_equal_those_built_in_one(monkeypatch):
    net = grid_net(5, 5)
    s = snap(net, (0, 0), (300, 300), (150, 0), (400, 100), (200, 400))
    iv = reached_intervals(net, network_reach(net, s, limit_m=250.0, access_leg=False))
    whole = service_area_polygons(net, iv, n_groups=5, buffer_m=20.0)
    monkeypatch.setattr(_bands, "BLOCK_ROWS", 5)
    assert len(group_blocks(iv.group)) == 5  # one group per block
    blocks = service_area_polygons(net, iv, n_groups=5, buffer_m=20.0)
    assert shapely.equals(whole, blocks).all()
    assert not shapely.is_empty(blocks).any()


def test_same_groups_finds_groups_with_exactly_the_same_rows():
    group = np.array([0, 0, 1, 1, 2, 2, 4, 4])
    edge = np.array([3, 1, 1, 3, 1, 3, 1, 3])
    start = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    end = np.array([5.0, 2.0, 2.0, 5.0, 2.0, 5.0 + 1e-9, 2.0, 5.0])
    rep = same_groups(group, 6, edge, start, end)
    # 1 and 4 are 0 in another row order; 2 differs by 1e-9 m; 3 and 5 are both empty
    assert rep.tolist() == [0, 0, 2, 3, 0, 3]
    # rows already in order (as reached_intervals gives them) take the path without a sort
    order = np.lexsort((end, start, edge, group))
    sorted_rep = same_groups(group[order], 6, edge[order], start[order], end[order])
    assert sorted_rep.tolist() == [0, 0, 2, 3, 0, 3]


def test_facilities_on_one_spot_get_the_same_band_built_once():
    net = grid_net(4, 4)
    s = snap(net, (0, 0), (300, 300), (0, 0), (150, 0), (300, 300), (2000, 2000))
    reach = network_reach(net, s, limit_m=350.0, access_leg=False)
    iv = reached_intervals(net, reach)
    chains = service_area_polygons(net, iv, n_groups=6, buffer_m=20.0)
    lines = service_area_polygons(net, iv, n_groups=6, buffer_m=20.0, method="lines")
    assert_same_band(chains, lines, arc_rounding(20.0, 4) + 1e-6)
    assert chains[2] is chains[0]
    assert chains[4] is chains[1]
    assert chains[5].is_empty
    assert not chains[3].is_empty


def test_lines_shared_by_groups_are_buffered_once_with_the_same_result():
    a = shapely.LineString([(0, 0), (100, 0), (100, 80)])
    b = shapely.LineString([(100, 0), (200, 0)])
    c = shapely.LineString([(0, 0), (0, 90)])
    lines = np.array([a, b, shapely.LineString(a.coords), c, b], dtype=object)
    group = np.array([0, 0, 1, 1, 2])
    got = bands_by_group(lines, group, 4, buffer_m=10.0, quad_segs=4, threads=2)
    for g in range(3):
        want = shapely.union_all(shapely.buffer(lines[group == g], 10.0, quad_segs=4))
        assert shapely.equals(got[g], want)
    assert got[3] is None


def test_bands_of_lines_in_several_parts_are_united_too():
    # a MultiLineString buffers to a MultiPolygon, an empty line to nothing; the group's
    # union takes the parts of the one and skips the other
    apart = shapely.MultiLineString([[(0, 0), (10, 0)], [(100, 0), (110, 0)]])
    cross = shapely.LineString([(5, -20), (5, 20)])
    lines = np.array([apart, cross, shapely.LineString()], dtype=object)
    got = bands_by_group(lines, np.array([0, 0, 0]), 1, buffer_m=5.0, quad_segs=4, threads=1)
    want = shapely.union_all(shapely.buffer(lines[:2], 5.0, quad_segs=4))
    assert shapely.equals(got[0], want)
    assert len(shapely.get_parts(got[0])) == 2


def test_stretches_ending_at_a_node_end_exactly_on_its_vertex(l_net):
    iv = Intervals(group=np.array([0, 0]), edge=np.array([0, 0]),
                   start_m=np.array([0.0, 123.456]), end_m=np.array([77.7, 700.0]))
    lines = interval_lines(l_net, iv)
    first, last = shapely.get_coordinates(l_net.edge_geometry[0])[[0, -1]]
    assert tuple(shapely.get_coordinates(lines[0])[0]) == tuple(first)
    assert tuple(shapely.get_coordinates(lines[1])[-1]) == tuple(last)


def test_unknown_polygon_method_is_refused():
    net = path_net()
    iv = reached_intervals(net, network_reach(net, snap(net, (0, 0)), limit_m=100.0))
    with pytest.raises(ValueError, match="method"):
        service_area_polygons(net, iv, n_groups=1, method="hull")  # type: ignore[arg-type]


def test_union_areas_skips_empties_and_matches_union_all():
    net = path_net()
    reach = network_reach(net, snap(net, (0, 0), (1000, 0), (500, 0)), limit_m=200.0)
    polys = service_area_polygons(net, reached_intervals(net, reach), n_groups=5)
    got = union_areas(np.append(polys, [None]))
    want = shapely.union_all(polys[~shapely.is_empty(polys)])
    assert shapely.symmetric_difference(got, want).area == pytest.approx(0.0, abs=1e-6)
    assert union_areas(np.array([shapely.Polygon(), None], dtype=object)).is_empty


def test_snapping_many_points_matches_a_brute_force_search():
    # enough points for the vectorised segment grid; some far from every street (> 100 m),
    # some exactly on nodes and on bends, and a small snap limit
    net = make_net({0: (0, 0), 1: (300, 400), 2: (600, 0), 3: (0, -200)},
                   [(0, 1, [(0, 0), (300, 0), (300, 400)]), (1, 2), (2, 0), (0, 3)])
    rng = np.random.default_rng(7)
    xy = np.concatenate([rng.uniform(-300, 900, (400, 2)), [(300, 0), (0, 0), (300, 400)],
                         rng.normal((450, 200), 3, (20, 2))])
    pts = points(*map(tuple, xy))
    for limit in (500.0, 60.0):
        s = snap_points(net, pts, snap_max_m=limit)
        d = shapely.distance(pts.to_numpy()[:, None], net.edge_geometry[None, :])
        best = d.min(axis=1)
        np.testing.assert_array_equal(s.snapped, best <= limit)
        on = s.snapped
        np.testing.assert_allclose(s.snap_m[on], best[on], atol=1e-9)
        np.testing.assert_allclose(d[np.flatnonzero(on), s.edge[on]], best[on], atol=1e-9)
        at = shapely.line_interpolate_point(net.edge_geometry[s.edge[on]], s.offset_m[on])
        np.testing.assert_allclose(shapely.distance(at, pts.to_numpy()[on]), best[on],
                                   atol=1e-6)
        assert (s.offset_m[on] >= 0).all()
        assert (s.offset_m[on] <= net.edge_length[s.edge[on]]).all()


def test_real_central_network_chains_and_nearest(central_config):
    from coverage15.inputs.layers import load_layer
    from coverage15.network.graph import build_walk_network

    net = build_walk_network(central_config.network)
    a = central_config.analysis
    fac = snap_points(net, load_layer(central_config.layers["centre"]).points,
                      snap_max_m=a.snap_max_m)
    dem = snap_points(net, load_layer(central_config.demand).points, snap_max_m=a.snap_max_m)
    reach = network_reach(net, fac, limit_m=a.limit_m)
    iv = reached_intervals(net, reach)
    chains = service_area_polygons(net, iv, n_groups=len(fac), buffer_m=a.buffer_m)
    lines = service_area_polygons(net, iv, n_groups=len(fac), buffer_m=a.buffer_m,
                                  method="lines")
    assert_same_band(chains, lines, arc_rounding(a.buffer_m, 4) + 1e-6)
    ok = ~shapely.is_empty(chains)
    rel = shapely.area(shapely.symmetric_difference(chains[ok], lines[ok])) / shapely.area(
        lines[ok])
    assert rel.max() < 1e-4
    _, target, dist = point_distances(net, reach, dem)
    want = np.full(len(dem), np.inf)
    np.minimum.at(want, target, dist)
    which, got = nearest_facility(net, fac, dem, limit_m=a.limit_m)
    assert np.array_equal(np.isfinite(want), which >= 0)
    np.testing.assert_allclose(got[which >= 0], want[which >= 0], atol=1e-6)

