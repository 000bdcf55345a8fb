"""Walking distances: hand-computed answers on small networks and properties on random grids."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coverage15.reach.distances import nearest_facility, network_reach, point_distances
from coverage15.reach.service_areas import reached_intervals
from hand_networks import (
    edge_of,
    grid_net,
    oracle_distances,
    path_net,
    point_st,
    snap,
    total_len,
)

# --- point_distances -----------------------------------------------------------------------


def test_point_distances_on_a_path():
    net = path_net()
    fac = snap(net, (350, 0))  # 100 m along edge 1-2
    reach = network_reach(net, fac, limit_m=300.0, access_leg=False)
    targets = snap(
        net,
        (450, 0),    # A: same edge, 200 m along: 100 m straight along the edge
        (600, 0),    # B: edge 2-3, 100 m along: 150 to node 2 + 100
        (1000, 0),   # C: node 4, 650 m: beyond the limit
        (350, 250),  # D: 250 m off the street, beyond snap_max_m: unsnapped
        (450, 10),   # E: like A but 10 m off the street
        snap_max_m=100.0,
    )
    assert targets.edge[3] == -1
    assert targets.edge[0] == targets.edge[4] == edge_of(net, 1, 2)
    src, tgt, dist = point_distances(net, reach, targets, access_leg=False)
    assert list(src) == [0, 0, 0]
    assert list(tgt) == [0, 1, 4]
    np.testing.assert_allclose(dist, [100.0, 250.0, 100.0], atol=1e-6)
    src, tgt, dist = point_distances(net, reach, targets, access_leg=True)
    assert list(tgt) == [0, 1, 4]
    np.testing.assert_allclose(dist, [100.0, 250.0, 110.0], atol=1e-6)


def test_point_distances_limit_is_inclusive_and_strict_beyond():
    net = path_net()
    reach = network_reach(net, snap(net, (0, 0)), limit_m=600.0, access_leg=False)
    targets = snap(net, (600, 0), (600.5, 0), (599.5, 0))
    _, tgt, dist = point_distances(net, reach, targets, access_leg=False)
    assert list(tgt) == [0, 2]
    np.testing.assert_allclose(dist, [600.0, 599.5], atol=1e-6)


def test_unsnapped_targets_are_never_reached_even_with_huge_limit():
    net = path_net()
    reach = network_reach(net, snap(net, (500, 0)), limit_m=1e6, access_leg=True)
    targets = snap(net, (500, 150), (500, 90), snap_max_m=100.0)
    assert list(targets.edge >= 0) == [False, True]
    _, tgt, dist = point_distances(net, reach, targets, access_leg=True)
    assert list(tgt) == [1]
    assert dist[0] == pytest.approx(90.0)


def test_point_distances_several_sources_sorted_and_unique():
    net = path_net()
    fac = snap(net, (1000, 0), (0, 0))
    reach = network_reach(net, fac, limit_m=1000.0, access_leg=False)
    targets = snap(net, (100, 0), (900, 0))
    src, tgt, dist = point_distances(net, reach, targets, access_leg=False)
    assert list(zip(src, tgt, strict=True)) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    np.testing.assert_allclose(dist, [900.0, 100.0, 100.0, 900.0], atol=1e-6)


# --- properties on random grids ---


@settings(max_examples=100, deadline=None)
@given(
    shape=st.tuples(st.integers(2, 5), st.integers(2, 5)),
    all_facs=st.lists(point_st, min_size=2, max_size=5),
    tgts=st.lists(point_st, min_size=1, max_size=8),
    minutes=st.tuples(st.floats(0.5, 10.0), st.floats(0.0, 5.0)),
    access_leg=st.booleans(),
)
def test_property_monotone_and_matches_networkx(shape, all_facs, tgts, minutes, access_leg):
    net = grid_net(*shape)
    facs = all_facs[:-1]  # the last one is added at the end
    fs = snap(net, *facs, snap_max_m=50.0)
    ts = snap(net, *tgts, snap_max_m=50.0)
    short = 4000.0 / 60.0 * minutes[0]
    long = 4000.0 / 60.0 * (minutes[0] + minutes[1])

    def run(limit, fsnap):
        reach = network_reach(net, fsnap, limit_m=limit, access_leg=access_leg)
        return reach, point_distances(net, reach, ts, access_leg=access_leg)

    r1, (s1, t1, d1) = run(short, fs)
    r2, (s2, t2, d2) = run(long, fs)
    # more minutes never reach fewer nodes, nor cover fewer targets, nor change a distance
    nodes1 = dict(zip(zip(r1.source.tolist(), r1.node.tolist(), strict=True),
                      r1.dist_m.tolist(), strict=True))
    nodes2 = dict(zip(zip(r2.source.tolist(), r2.node.tolist(), strict=True),
                      r2.dist_m.tolist(), strict=True))
    assert set(nodes1) <= set(nodes2)
    for key, d in nodes1.items():
        assert nodes2[key] == pytest.approx(d, abs=1e-6)
    assert all(d <= long + 1e-9 for d in nodes2.values())
    covered1 = dict(zip(zip(s1.tolist(), t1.tolist(), strict=True), d1.tolist(), strict=True))
    covered2 = dict(zip(zip(s2.tolist(), t2.tolist(), strict=True), d2.tolist(), strict=True))
    assert set(covered1) <= set(covered2)
    for key, d in covered1.items():
        assert covered2[key] == pytest.approx(d, abs=1e-6)
    assert total_len(reached_intervals(net, r1)) <= total_len(reached_intervals(net, r2)) + 1e-6

    # exact: every pair within the limit, at the networkx distance, and nothing else
    oracle = oracle_distances(net, fs, ts, access_leg)
    want = {k: d for k, d in oracle.items() if d <= long - 1e-6}
    assert set(want) <= set(covered2)
    for key, d in covered2.items():
        assert d == pytest.approx(oracle[key], abs=1e-6)
        assert d <= long + 1e-9
        # never shorter than the straight line between the two points
        if access_leg:
            straight = math.dist(facs[key[0]], tgts[key[1]])
            assert d >= straight - 1e-6

    # adding a facility never removes a covered target
    more = snap(net, *all_facs, snap_max_m=50.0)
    _, (s3, t3, _) = run(long, more)
    assert set(t2.tolist()) <= set(t3.tolist())
    assert set(zip(s2.tolist(), t2.tolist(), strict=True)) <= set(
        zip(s3.tolist(), t3.tolist(), strict=True))


@settings(max_examples=60, deadline=None)
@given(
    shape=st.tuples(st.integers(2, 5), st.integers(2, 5)),
    facs=st.lists(point_st, min_size=1, max_size=6),
    tgts=st.lists(point_st, min_size=1, max_size=10),
    minutes=st.floats(0.3, 12.0),
    access_leg=st.booleans(),
)
def test_property_nearest_facility_is_the_closest_pair(shape, facs, tgts, minutes, access_leg):
    net = grid_net(*shape)
    fs = snap(net, *facs, snap_max_m=60.0)
    ts = snap(net, *tgts, snap_max_m=60.0)
    limit = 4000.0 / 60.0 * minutes
    reach = network_reach(net, fs, limit_m=limit, access_leg=access_leg)
    src, tgt, dist = point_distances(net, reach, ts, access_leg=access_leg)
    want = np.full(len(tgts), np.inf)
    np.minimum.at(want, tgt, dist)
    which, got = nearest_facility(net, fs, ts, limit_m=limit, access_leg=access_leg)
    reached = np.isfinite(want)
    assert np.array_equal(reached, which >= 0)
    assert np.isnan(got[~reached]).all()
    np.testing.assert_allclose(got[reached], want[reached], atol=1e-6)
    pairs = dict(zip(zip(src.tolist(), tgt.tolist(), strict=True), dist.tolist(), strict=True))
    for t in np.flatnonzero(reached):
        assert pairs[(int(which[t]), int(t))] == pytest.approx(got[t], abs=1e-6)


def test_nearest_facility_on_the_same_edge_and_with_nothing_in_reach():
    net = path_net()
    fac = snap(net, (350, 0), (1000, 300), snap_max_m=100.0)  # the second is off the network
    tgt = snap(net, (450, 0), (1000, 0), (600, 0))
    which, dist = nearest_facility(net, fac, tgt, limit_m=300.0, access_leg=False)
    assert list(which) == [0, -1, 0]
    np.testing.assert_allclose(dist, [100.0, np.nan, 250.0])
    none = nearest_facility(net, snap(net, (1000, 300), snap_max_m=10.0), tgt, limit_m=300.0)
    assert list(none[0]) == [-1, -1, -1]


@settings(max_examples=30, deadline=None)
@given(
    shape=st.tuples(st.integers(2, 6), st.integers(2, 6)),
    facs=st.lists(point_st, min_size=1, max_size=8),
    minutes=st.floats(0.3, 12.0),
    tile_m=st.sampled_from([40.0, 130.0, 10_000.0]),
)
def test_property_tiles_do_not_change_the_reach(shape, facs, minutes, tile_m):
    net = grid_net(*shape)
    s = snap(net, *facs, snap_max_m=60.0)
    limit = 4000.0 / 60.0 * minutes
    one = network_reach(net, s, limit_m=limit, tile_m=1e7)
    tiled = network_reach(net, s, limit_m=limit, tile_m=tile_m)
    a = np.lexsort((one.node, one.source))
    b = np.lexsort((tiled.node, tiled.source))
    np.testing.assert_array_equal(one.source[a], tiled.source[b])
    np.testing.assert_array_equal(one.node[a], tiled.node[b])
    np.testing.assert_allclose(one.dist_m[a], tiled.dist_m[b], atol=1e-9)
