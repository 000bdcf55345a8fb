"""The walking network: the real central-Shanghai OSM file, and hand-made graphs for the
conversion rules of :func:`network_from_graph` (twins, loops, orientation, fragments, CRS).

The real network is built once per session into a temporary cache folder, so the tests
neither read nor write the user's cache.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pyproj
import pytest
import shapely
from scipy.sparse import csgraph

from coverage15 import settings
from coverage15._errors import Coverage15Error, InputFileError, NetworkError
from coverage15.inputs.config import NetworkSpec
from coverage15.network.graph import (
    WalkNetwork,
    build_walk_network,
    network_from_graph,
    snap_points,
)

UTM = "EPSG:32651"
X0, Y0 = 350_000.0, 3_450_000.0

# central_streets.osm (Overpass, 2025-08-09) through osmnx 2.x, simplified, undirected
N_NODES = 3796  # with 10 nodes cutting the 5 loop streets (each into three edges)
N_EDGES = 6291
DROPPED_FRAGMENT_EDGES = 6
TOTAL_LENGTH_M = 974_233.7  # 1,171.5 m of it on the 5 loop streets
README_BBOX = (121.409, 31.179, 121.552, 31.279)  # lon/lat range stated in the data README


@dataclass
class Built:
    net: WalkNetwork
    again: WalkNetwork
    cache_dir: Path
    log: list[str]
    steps: list[str]
    steps_again: list[str]


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(scope="session")
def built(streets_file: Path, tmp_path_factory: pytest.TempPathFactory):
    cache_dir = tmp_path_factory.mktemp("coverage15-cache")
    saved = settings.cache_folder, settings.use_cache
    settings.cache_folder = str(cache_dir)
    settings.use_cache = True
    logger = logging.getLogger("coverage15.network.graph")
    handler = _ListHandler()
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        steps: list[str] = []
        net = build_walk_network(NetworkSpec("osm_file", streets_file), log_step=steps.append)
        steps_again: list[str] = []
        again = build_walk_network(NetworkSpec("osm_file", streets_file),
                                   log_step=steps_again.append)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    yield Built(net, again, cache_dir, handler.messages, steps, steps_again)
    settings.cache_folder, settings.use_cache = saved


@pytest.fixture(scope="session")
def net(built: Built) -> WalkNetwork:
    return built.net


# --- the real network ----------------------------------------------------------------------


def test_counts_and_total_length(built: Built):
    net = built.net
    assert net.n_nodes == N_NODES
    assert net.n_edges == N_EDGES
    assert net.edge_length.sum() == pytest.approx(TOTAL_LENGTH_M, abs=5.0)
    assert f"dropped {DROPPED_FRAGMENT_EDGES} edges in street fragments under 300 m" in built.log
    assert any(m.startswith(f"walk network: {N_NODES} nodes, {N_EDGES} edges, 974 km")
               for m in built.log)


def test_arrays_are_consistent(net: WalkNetwork):
    assert net.crs == UTM
    assert net.node_ids.shape == (N_NODES,)
    assert net.node_xy.shape == (N_NODES, 2)
    assert len(np.unique(net.node_ids)) == N_NODES
    for arr in (net.edge_u, net.edge_v, net.edge_length, net.edge_geometry):
        assert arr.shape == (N_EDGES,)
    assert net.edge_u.min() >= 0
    assert net.edge_v.max() < N_NODES
    assert (net.edge_u != net.edge_v).all()  # no self-loops
    assert (net.edge_length > 0).all()
    # every node is used by some edge
    assert len(np.union1d(net.edge_u, net.edge_v)) == N_NODES
    # one edge per two-way street: no (u, v) pair twice with the same length
    lo, hi = np.minimum(net.edge_u, net.edge_v), np.maximum(net.edge_u, net.edge_v)
    keys = np.stack([lo, hi, np.round(net.edge_length, 1)], axis=1)
    assert len(np.unique(keys, axis=0)) == N_EDGES


def test_nodes_lie_in_the_readme_bbox(net: WalkNetwork):
    to_wgs = pyproj.Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)
    lon, lat = to_wgs.transform(net.node_xy[:, 0], net.node_xy[:, 1])
    west, south, east, north = README_BBOX
    tol = 1e-3  # ~100 m
    assert west - tol < lon.min() < west + 0.01
    assert east - 0.01 < lon.max() < east + tol
    assert south - tol < lat.min() < south + 0.01
    assert north - 0.01 < lat.max() < north + tol


def test_geometries_run_from_u_to_v(net: WalkNetwork):
    first = shapely.get_coordinates(shapely.get_point(net.edge_geometry, 0))
    last = shapely.get_coordinates(shapely.get_point(net.edge_geometry, -1))
    assert np.abs(first - net.node_xy[net.edge_u]).max() < 1e-6
    assert np.abs(last - net.node_xy[net.edge_v]).max() < 1e-6
    assert (shapely.get_type_id(net.edge_geometry) == 1).all()  # LineStrings


def test_edge_length_is_geometry_length(net: WalkNetwork):
    np.testing.assert_allclose(net.edge_length, shapely.length(net.edge_geometry),
                               rtol=0, atol=1e-9)
    # and never shorter than the straight line between the ends
    chord = np.hypot(*(net.node_xy[net.edge_u] - net.node_xy[net.edge_v]).T)
    assert (net.edge_length >= chord - 1e-9).all()


def test_csr_is_symmetric_with_the_shortest_parallel_edge(net: WalkNetwork):
    csr = net.csr
    assert csr.shape == (N_NODES, N_NODES)
    assert abs(csr - csr.T).max() == 0
    lo, hi = np.minimum(net.edge_u, net.edge_v), np.maximum(net.edge_u, net.edge_v)
    key = lo.astype(np.int64) * N_NODES + hi
    order = np.lexsort((net.edge_length, key))
    first = np.ones(len(key), dtype=bool)
    first[1:] = np.diff(key[order]) != 0
    shortest = order[first]  # the shortest edge of each node pair
    assert csr.nnz == 2 * len(shortest)
    got = np.asarray(csr[lo[shortest], hi[shortest]]).ravel()
    np.testing.assert_array_equal(got, net.edge_length[shortest])
    assert len(shortest) < N_EDGES  # the file does have parallel streets


def test_dropped_fragments_leave_no_short_component(net: WalkNetwork):
    n, labels = csgraph.connected_components(net.csr, directed=False)
    per_component = np.bincount(labels[net.edge_u], weights=net.edge_length, minlength=n)
    assert per_component.min() >= 300.0
    # the streets are mostly one connected network
    assert per_component.max() > 0.95 * net.edge_length.sum()


def test_incidence_lists_each_edge_at_both_ends(net: WalkNetwork):
    indptr, edges = net.incidence
    assert indptr[-1] == 2 * N_EDGES
    node = np.repeat(np.arange(N_NODES), np.diff(indptr))
    assert ((net.edge_u[edges] == node) | (net.edge_v[edges] == node)).all()


def test_extent_covers_every_node_and_street(net: WalkNetwork):
    ext = net.extent
    assert ext.geom_type in ("Polygon", "MultiPolygon")
    assert shapely.covers(ext, shapely.points(net.node_xy)).all()
    # the extent is built from nodes, so a few long curving streets bulge out of it
    # (3 edges, ~1.9 km of 974 km, when written); nearly all street length is inside
    outside = shapely.length(shapely.difference(net.edge_geometry, ext)).sum()
    assert outside < 0.005 * net.edge_length.sum()
    # but not much more than the streets' bounding box
    x0, y0 = net.node_xy.min(axis=0)
    x1, y1 = net.node_xy.max(axis=0)
    assert ext.area < (x1 - x0 + 1000) * (y1 - y0 + 1000)
    assert ext.area > 0.5 * (x1 - x0) * (y1 - y0)


def test_second_build_hits_the_cache(built: Built):
    assert built.steps == ["network: reading central_streets.osm"]
    assert built.steps_again == ["network: cached graph of central_streets.osm"]
    assert len(list((built.cache_dir / "networks").glob("*.pickle"))) == 1
    a, b = built.net, built.again
    assert b is not a
    assert b.crs == a.crs
    for name in ("node_ids", "node_xy", "edge_u", "edge_v", "edge_length"):
        np.testing.assert_array_equal(getattr(b, name), getattr(a, name))
    assert shapely.equals_exact(b.edge_geometry, a.edge_geometry, tolerance=0).all()
    assert shapely.equals(b.extent, a.extent)
    # the spatial index is rebuilt after unpickling and answers like the original
    pts = gpd.GeoSeries(shapely.points(a.node_xy[::97] + 7.0), crs=UTM)
    sa, sb = snap_points(a, pts, snap_max_m=300), snap_points(b, pts, snap_max_m=300)
    np.testing.assert_array_equal(sa.edge, sb.edge)
    np.testing.assert_array_equal(sa.snap_m, sb.snap_m)


def test_disabled_cache_is_neither_read_nor_written(
    streets_file: Path, built: Built, monkeypatch: pytest.MonkeyPatch
):
    # the session cache holds this file's network; with use_cache off it must be rebuilt
    monkeypatch.setattr(settings, "cache_folder", str(built.cache_dir))
    monkeypatch.setattr(settings, "use_cache", False)
    before = {f: f.stat().st_mtime_ns for f in built.cache_dir.rglob("*") if f.is_file()}
    steps: list[str] = []
    net = build_walk_network(NetworkSpec("osm_file", streets_file), log_step=steps.append)
    assert steps == ["network: reading central_streets.osm"]
    after = {f: f.stat().st_mtime_ns for f in built.cache_dir.rglob("*") if f.is_file()}
    assert after == before
    # and the rebuild is deterministic
    np.testing.assert_array_equal(net.node_ids, built.net.node_ids)
    np.testing.assert_array_equal(net.edge_u, built.net.edge_u)
    np.testing.assert_array_equal(net.edge_length, built.net.edge_length)


def test_snap_20_m_off_the_middle_of_a_long_straight_edge(net: WalkNetwork):
    straight = np.flatnonzero((shapely.get_num_coordinates(net.edge_geometry) == 2)
                              & (net.edge_length > 150))
    assert len(straight) > 20
    best = None
    for e in straight[np.argsort(-net.edge_length[straight])]:
        a, b = net.node_xy[net.edge_u[e]], net.node_xy[net.edge_v[e]]
        direction = (b - a) / np.linalg.norm(b - a)
        normal = np.array([-direction[1], direction[0]])
        for side in (1.0, -1.0):
            p = shapely.Point((a + b) / 2 + side * 20.0 * normal)
            near = net.tree.query(p, predicate="dwithin", distance=35.0)
            if list(near) == [e]:  # no other street within 35 m: an unambiguous snap
                best = (int(e), p)
                break
        if best:
            break
    assert best is not None
    e, p = best
    half = net.edge_length[e] / 2
    snap = snap_points(net, gpd.GeoSeries([p], crs=UTM), snap_max_m=500)
    assert snap.edge[0] == e
    assert snap.snap_m[0] == pytest.approx(20.0, abs=1e-6)
    assert snap.offset_m[0] == pytest.approx(half, abs=1e-6)
    # the same point given in WGS84 snaps to the same place
    wgs = gpd.GeoSeries([p], crs=UTM).to_crs("EPSG:4326")
    snap = snap_points(net, wgs, snap_max_m=500)
    assert snap.edge[0] == e
    assert snap.snap_m[0] == pytest.approx(20.0, abs=1e-4)
    assert snap.offset_m[0] == pytest.approx(half, abs=1e-4)
    # with a 15 m limit it is not snapped at all
    snap = snap_points(net, gpd.GeoSeries([p], crs=UTM), snap_max_m=15)
    assert snap.edge[0] == -1
    assert np.isnan(snap.snap_m[0])
    assert np.isnan(snap.offset_m[0])


def test_snap_nodes_land_on_an_incident_edge_end(net: WalkNetwork):
    pts = gpd.GeoSeries(shapely.points(net.node_xy), crs=UTM)
    snap = snap_points(net, pts, snap_max_m=1)
    assert snap.snapped.all()
    assert snap.snap_m.max() < 1e-6
    node = np.arange(N_NODES)
    at_u = net.edge_u[snap.edge] == node
    at_v = net.edge_v[snap.edge] == node
    # a node can sit exactly on a street it does not belong to (crossings without a shared
    # node); allow a handful of those, and check the rest end up at an end of their edge
    incident = at_u | at_v
    assert incident.mean() > 0.99
    np.testing.assert_allclose(snap.offset_m[at_u], 0.0, atol=1e-6)
    np.testing.assert_allclose(snap.offset_m[at_v], net.edge_length[snap.edge[at_v]], atol=1e-6)


def test_snap_far_empty_and_missing_points(net: WalkNetwork):
    x1, y1 = net.node_xy.max(axis=0)
    pts = gpd.GeoSeries(
        [shapely.Point(x1 + 5000, y1 + 5000), None, shapely.Point(),
         shapely.Point(*net.node_xy[0])],
        crs=UTM,
    )
    snap = snap_points(net, pts, snap_max_m=500)
    assert list(snap.snapped) == [False, False, False, True]
    assert len(snap) == 4
    empty = snap_points(net, gpd.GeoSeries([], crs=UTM), snap_max_m=500)
    assert len(empty) == 0


def test_edges_gdf(net: WalkNetwork):
    gdf = net.edges_gdf()
    assert len(gdf) == N_EDGES
    assert gdf.crs == UTM
    assert list(gdf.columns) == ["u", "v", "length_m", "geometry"]
    np.testing.assert_array_equal(gdf["u"].to_numpy(), net.node_ids[net.edge_u])


# --- errors --------------------------------------------------------------------------------


def test_missing_file_and_directory(tmp_path: Path):
    with pytest.raises(InputFileError, match="file not found"):
        build_walk_network(NetworkSpec("osm_file", tmp_path / "nope.osm"))
    with pytest.raises(InputFileError, match="is a directory"):
        build_walk_network(NetworkSpec("osm_file", tmp_path))
    assert issubclass(InputFileError, OSError)
    assert issubclass(InputFileError, Coverage15Error)


def test_malformed_and_empty_osm_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(settings, "cache_folder", str(tmp_path / "cache"))
    bad = tmp_path / "bad.osm"
    bad.write_text('<?xml version="1.0"?><osm version="0.6"><node id="1" lat="31.2" lon="121.4')
    with pytest.raises(InputFileError, match="malformed OSM XML"):
        build_walk_network(NetworkSpec("osm_file", bad))
    noway = tmp_path / "noway.osm"
    noway.write_text('<?xml version="1.0"?><osm version="0.6">'
                     '<node id="1" lat="31.2" lon="121.4"/></osm>')
    with pytest.raises(NetworkError):
        build_walk_network(NetworkSpec("osm_file", noway))
    assert not (tmp_path / "cache").exists()  # nothing cached for a failed build


# --- network_from_graph on hand-made graphs -------------------------------------------------


def line(*xy: tuple[float, float]) -> shapely.LineString:
    return shapely.LineString([(X0 + x, Y0 + y) for x, y in xy])


def add_nodes(g: nx.Graph, nodes: dict[int, tuple[float, float]]) -> None:
    for n, (x, y) in nodes.items():
        g.add_node(n, x=X0 + x, y=Y0 + y)


def test_graph_without_crs_is_an_error():
    g = nx.MultiGraph()
    add_nodes(g, {1: (0, 0), 2: (100, 0)})
    g.add_edge(1, 2)
    with pytest.raises(NetworkError, match="no CRS"):
        network_from_graph(g, min_component_m=0)
    assert issubclass(NetworkError, ValueError)
    # an explicit crs= makes it fine
    net = network_from_graph(g, crs=UTM, min_component_m=0)
    assert net.crs == UTM
    assert net.edge_length.tolist() == [100.0]


def test_graph_without_edges_is_an_error():
    g = nx.MultiGraph(crs=UTM)
    add_nodes(g, {1: (0, 0), 2: (100, 0)})
    with pytest.raises(NetworkError, match="no edges"):
        network_from_graph(g)


def test_reverse_twins_are_dropped_loops_kept_and_geometry_oriented():
    g = nx.MultiDiGraph(crs=UTM)
    add_nodes(g, {10: (0, 0), 20: (300, 0), 30: (300, 400)})
    bent = line((0, 0), (0, 100), (300, 100), (300, 0))  # 500 m, 10 -> 20
    g.add_edge(10, 20, geometry=bent)
    g.add_edge(20, 10, geometry=shapely.reverse(bent))  # its two-way twin
    g.add_edge(20, 30)  # straight, 400 m, no geometry
    g.add_edge(30, 20)  # twin without geometry
    # a loop street from 30 back to 30 (50√2 + 100 + 50√2 = 241.42 m), in both directions
    loop = line((300, 400), (350, 450), (250, 450), (300, 400))
    g.add_edge(30, 30, geometry=loop)
    g.add_edge(30, 30, geometry=shapely.reverse(loop))
    g.add_edge(10, 20)  # a second, different street between 10 and 20: the straight 300 m
    net = network_from_graph(g, min_component_m=0)
    third = (100 + 100 * 2**0.5) / 3  # 80.47 m
    assert net.n_edges == 6  # the loop is cut into three edges at two new nodes
    assert sorted(net.edge_length.round(6).tolist()) == pytest.approx(
        [third, third, third, 300.0, 400.0, 500.0])
    assert net.node_ids.tolist() == [10, 20, 30, -1, -2]
    origin = net.node_xy[0]  # node 10, at (0, 0) of the drawing
    np.testing.assert_allclose(net.node_xy[3:] - origin, [[350 - (third - 50 * 2**0.5), 450],
                                                          [250 + (third - 50 * 2**0.5), 450]])
    first = shapely.get_coordinates(shapely.get_point(net.edge_geometry, 0))
    last = shapely.get_coordinates(shapely.get_point(net.edge_geometry, -1))
    np.testing.assert_allclose(first, net.node_xy[net.edge_u], atol=1e-9)
    np.testing.assert_allclose(last, net.node_xy[net.edge_v], atol=1e-9)
    # the parallel streets between 10 and 20: the csr keeps the shorter
    i, j = (int(np.flatnonzero(net.node_ids == k)[0]) for k in (10, 20))
    assert net.csr[i, j] == pytest.approx(300.0)
    assert net.csr[j, i] == pytest.approx(300.0)
    # every metre of the loop is walkable: its two cut points are a third of it from 30
    dist = csgraph.dijkstra(net.csr, indices=2)
    assert dist[3:] == pytest.approx([third, third])


def test_two_different_loops_of_the_same_length_at_one_node_are_both_kept():
    g = nx.MultiDiGraph(crs=UTM)
    add_nodes(g, {1: (0, 0), 2: (300, 0)})
    g.add_edge(1, 2)
    above = line((0, 0), (50, 50), (-50, 50), (0, 0))  # 241.42 m each, mirror images
    below = line((0, 0), (50, -50), (-50, -50), (0, 0))
    for loop in (above, below):
        g.add_edge(1, 1, geometry=loop)
        g.add_edge(1, 1, geometry=shapely.reverse(loop))  # each in both directions
    g.add_edge(2, 2, geometry=line((300, 0), (300.2, 0.2), (300, 0)))  # 0.57 m: dropped
    net = network_from_graph(g, min_component_m=0)
    assert net.n_edges == 1 + 2 * 3
    assert net.edge_length.sum() == pytest.approx(300 + 2 * (100 + 100 * 2**0.5))


def test_geometry_stored_from_v_to_u_is_reversed():
    g = nx.MultiGraph(crs=UTM)
    add_nodes(g, {1: (0, 0), 2: (200, 0)})
    g.add_edge(1, 2, geometry=line((200, 0), (100, 50), (0, 0)))  # runs 2 -> 1
    net = network_from_graph(g, min_component_m=0)
    u = net.node_xy[net.edge_u[0]]
    xy = shapely.get_coordinates(net.edge_geometry[0])
    np.testing.assert_allclose(xy[0], u)
    np.testing.assert_allclose(xy[1], (X0 + 100, Y0 + 50))
    assert net.edge_length[0] == pytest.approx(2 * math.hypot(100, 50))
    # snapping measures offsets from u along the stored geometry
    snap = snap_points(net, gpd.GeoSeries([shapely.Point(X0 + 100, Y0 + 60)], crs=UTM),
                       snap_max_m=50)
    assert snap.offset_m[0] == pytest.approx(math.hypot(100, 50))
    assert snap.snap_m[0] == pytest.approx(10.0)


def test_short_fragments_are_dropped_and_nodes_renumbered():
    g = nx.MultiGraph(crs=UTM)
    add_nodes(g, {1: (0, 0), 2: (200, 0), 3: (400, 0), 7: (0, 500), 8: (50, 500), 9: (999, 999)})
    g.add_edges_from([(1, 2), (2, 3), (7, 8)])  # a 400 m street and a 50 m island
    net = network_from_graph(g)  # default: fragments under 300 m go
    assert net.n_edges == 2
    assert sorted(net.node_ids.tolist()) == [1, 2, 3]  # island and isolated node 9 gone
    np.testing.assert_allclose(
        shapely.get_coordinates(shapely.get_point(net.edge_geometry, 0)),
        net.node_xy[net.edge_u])
    kept = network_from_graph(g, min_component_m=0)
    assert kept.n_edges == 3
    assert sorted(kept.node_ids.tolist()) == [1, 2, 3, 7, 8]
    with pytest.raises(NetworkError, match="shorter than 1000 m"):
        network_from_graph(g, min_component_m=1000)


def test_geographic_graph_is_projected_to_the_working_crs():
    g = nx.MultiGraph(crs="EPSG:4326")
    g.add_node(1, x=121.47, y=31.23)
    g.add_node(2, x=121.47, y=31.231)  # 0.001 degree north: ~110.9 m
    g.add_node(3, x=121.471, y=31.231)  # 0.001 degree east: ~95.3 m
    g.add_edges_from([(1, 2), (2, 3)])
    net = network_from_graph(g, min_component_m=0)
    assert net.crs == settings.working_crs == UTM
    geod = pyproj.Geod(ellps="WGS84")
    north = geod.inv(121.47, 31.23, 121.47, 31.231)[2]
    east = geod.inv(121.47, 31.231, 121.471, 31.231)[2]
    assert north == pytest.approx(110.9, abs=0.1)
    assert east == pytest.approx(95.3, abs=0.1)
    # UTM 51N is 1.5 degree west of its central meridian here: scale factor ~0.99985
    assert sorted(net.edge_length) == pytest.approx(sorted([north, east]), rel=5e-4)
    to_utm = pyproj.Transformer.from_crs("EPSG:4326", UTM, always_xy=True)
    np.testing.assert_allclose(net.node_xy[net.node_ids == 1][0],
                               to_utm.transform(121.47, 31.23), atol=1e-6)
