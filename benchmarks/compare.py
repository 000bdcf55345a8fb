"""coverage15 against the tools people would use instead, on the real central network.

Everything runs in one process on the same inputs:

- the network: coverage15's projected graph of ``central_streets.osm`` (EPSG:32651), handed
  to networkx/osmnx as an osmnx-style MultiDiGraph (both directions of every street, each edge
  with its geometry and ``length`` = the projected geometry's length) and to pandana as node
  and edge tables; so all three walk exactly the same streets with exactly the same lengths;
- the facilities: every facility of the three central layers that is on the network (371),
  each moved onto its nearest node (``osmnx.distance.nearest_nodes``), because the osmnx recipe
  and pandana start from nodes; coverage15 gets the node's coordinates and ``access_leg=False``
  (neither other tool counts the walk to the street);
- the demand: the real residential points, likewise moved onto their nearest nodes.

Timed: (a) the osmnx recipe, per facility ``nx.ego_graph(G, node, radius=limit,
distance="length")`` then either the reached edges buffered and unioned (the same product as
coverage15's bands) or the convex hull of the reached nodes; (b) pandana: building the network
(contraction hierarchy), nearest facility per node (``set_pois`` + ``nearest_pois``) and
facilities within the limit per node (``set`` + ``precompute`` + ``aggregate``); (c) coverage15:
all per-facility service areas (snap, ``network_reach``, ``reached_intervals``,
``service_area_polygons``) and nearest-facility distances for the demand (snap, reach,
``point_distances``, minimum per point).

Checked: node distances from every facility equal networkx's (within 1 m); nearest-facility
distance per demand point equal pandana's (within 1 m); the demand covered (nearest facility
within the limit) and the count of facilities in reach identical in all three.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely

from coverage15.inputs.config import load_config
from coverage15.inputs.layers import load_layer
from coverage15.network.graph import WalkNetwork, build_walk_network, snap_points
from coverage15.reach import distances
from coverage15.reach import service_areas as sa

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "data" / "shanghai-central.toml"
BUFFER_M = 50.0
QUAD_SEGS = 4  # coverage15's default segments per quarter circle


def timed(fn: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    """Median wall time over ``repeat`` calls and the last result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def load_central() -> tuple[WalkNetwork, np.ndarray, np.ndarray, float]:
    """Network, facility xy (on the network), demand xy, and the walking limit."""
    config = load_config(CONFIG)
    net = build_walk_network(config.network)
    limit = config.analysis.limit_m
    fac = []
    for spec in config.layers.values():
        points = load_layer(spec).points
        snap = snap_points(net, points, snap_max_m=config.analysis.snap_max_m)
        on = snap.snapped & (snap.snap_m <= limit)
        fac.append(shapely.get_coordinates(points.geometry.to_crs(net.crs).to_numpy()[on]))
    assert config.demand is not None
    demand = load_layer(config.demand).points
    dsnap = snap_points(net, demand, snap_max_m=config.analysis.snap_max_m)
    dxy = shapely.get_coordinates(demand.geometry.to_crs(net.crs).to_numpy()[dsnap.snapped])
    return net, np.concatenate(fac), dxy, limit


def osmnx_graph(net: WalkNetwork) -> nx.MultiDiGraph:
    """The network as osmnx would hold it: a projected MultiDiGraph, both directions."""
    g = nx.MultiDiGraph(crs=net.crs)
    ids = net.node_ids
    g.add_nodes_from((int(i), {"x": float(x), "y": float(y)})
                     for i, (x, y) in zip(ids, net.node_xy, strict=True))
    reverse = shapely.reverse(net.edge_geometry)
    for e in range(net.n_edges):
        u, v = int(ids[net.edge_u[e]]), int(ids[net.edge_v[e]])
        length = float(net.edge_length[e])
        g.add_edge(u, v, length=length, geometry=net.edge_geometry[e])
        g.add_edge(v, u, length=length, geometry=reverse[e])
    return g


def osmnx_recipe(g: nx.MultiDiGraph, nodes: np.ndarray, limit: float, *, hull: bool,
                 quad_segs: int | None = None) -> list[shapely.Geometry]:
    """The usual per-facility recipe: ego graph, then edge buffer (or node hull).

    ``quad_segs=None`` buffers as the recipe is usually written, ``gdf.buffer(50)``:
    geopandas' default of 16 segments per quarter circle. A number buffers with that many,
    e.g. coverage15's 4, for the same arc rounding as coverage15's polygons.
    """
    import osmnx as ox

    out = []
    for node in nodes:
        sub = nx.ego_graph(g, node, radius=limit, distance="length")
        if sub.number_of_edges() == 0:  # every street from here is longer than the limit
            out.append(shapely.Point(g.nodes[node]["x"], g.nodes[node]["y"]))
        elif hull:
            node_gdf = ox.graph_to_gdfs(sub, edges=False)
            out.append(node_gdf.union_all().convex_hull)
        else:
            edge_gdf = ox.graph_to_gdfs(sub, nodes=False)
            bands = (edge_gdf.buffer(BUFFER_M) if quad_segs is None
                     else edge_gdf.buffer(BUFFER_M, quad_segs=quad_segs))
            out.append(bands.union_all())
    return out


def coverage15_areas(net: WalkNetwork, fac: gpd.GeoSeries, limit: float, *,
                     method: str = "chains", quad_segs: int = QUAD_SEGS,
                     ) -> tuple[Any, np.ndarray]:
    """All per-facility service areas with coverage15 (no access leg)."""
    snap = snap_points(net, fac, snap_max_m=500)
    reach = distances.network_reach(net, snap, limit_m=limit, access_leg=False)
    iv = sa.reached_intervals(net, reach)
    polygons = sa.service_area_polygons(net, iv, n_groups=len(fac), buffer_m=BUFFER_M,
                                        quad_segs=quad_segs,
                                        method=method)  # type: ignore[arg-type]
    return reach, polygons


def coverage15_nearest(net: WalkNetwork, fac: gpd.GeoSeries, dem: gpd.GeoSeries, limit: float,
                       ) -> np.ndarray:
    """Nearest-facility distance per demand point (NaN: none in reach), from the points."""
    fsnap = snap_points(net, fac, snap_max_m=500)
    dsnap = snap_points(net, dem, snap_max_m=500)
    _, dist = distances.nearest_facility(net, fsnap, dsnap, limit_m=limit, access_leg=False)
    return dist


def coverage15_counts(net: WalkNetwork, fac: gpd.GeoSeries, dem: gpd.GeoSeries, limit: float,
                      ) -> np.ndarray:
    """Facilities within the limit per demand point (every pair, as the pipeline does)."""
    fsnap = snap_points(net, fac, snap_max_m=500)
    dsnap = snap_points(net, dem, snap_max_m=500)
    reach = distances.network_reach(net, fsnap, limit_m=limit, access_leg=False)
    _, target, _ = distances.point_distances(net, reach, dsnap, access_leg=False)
    return np.bincount(target, minlength=len(dem))


def pandana_run(net: WalkNetwork, fac_xy: np.ndarray, dem_xy: np.ndarray, fac_nodes: np.ndarray,
                limit: float) -> dict[str, Any] | None:
    """pandana timings and answers, or None when pandana is not installed."""
    try:
        import pandana
    except ImportError:
        return None
    ids = net.node_ids
    node_x = pd.Series(net.node_xy[:, 0], index=ids)
    node_y = pd.Series(net.node_xy[:, 1], index=ids)
    weights = pd.DataFrame({"length": net.edge_length})
    t_build, pnet = timed(lambda: pandana.Network(
        node_x, node_y, pd.Series(ids[net.edge_u]), pd.Series(ids[net.edge_v]), weights,
        twoway=True))
    # per-network preparation for aggregations within the limit (once: calling it again
    # makes pandana count every facility again)
    t_pre, _ = timed(lambda: pnet.precompute(limit))

    def nearest() -> np.ndarray:
        pnet.set_pois("fac", limit, 1, pd.Series(fac_xy[:, 0]), pd.Series(fac_xy[:, 1]))
        per_node = pnet.nearest_pois(limit, "fac", num_pois=1, max_distance=np.inf)[1]
        at = pnet.get_node_ids(pd.Series(dem_xy[:, 0]), pd.Series(dem_xy[:, 1]))
        return per_node.reindex(at.to_numpy()).to_numpy(dtype=float)

    def counts() -> np.ndarray:
        pnet.set(pd.Series(fac_nodes), variable=pd.Series(np.ones(len(fac_nodes))), name="f")
        per_node = pnet.aggregate(limit, type="sum", decay="flat", name="f")
        at = pnet.get_node_ids(pd.Series(dem_xy[:, 0]), pd.Series(dem_xy[:, 1]))
        return per_node.reindex(at.to_numpy()).to_numpy(dtype=float)

    t_near, near = timed(nearest, repeat=5)
    t_count, count = timed(counts, repeat=5)
    return {"build_s": t_build, "precompute_s": t_pre, "nearest_s": t_near,
            "aggregate_s": t_count,
            "nearest_m": near, "count": count, "version": pandana.__version__}


def run_compare(*, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the comparison, print it, and return the numbers."""
    import osmnx as ox

    say(f"machine: {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}")
    net, fac_xy, dem_xy, limit = load_central()
    net.csr, net.tree, net.incidence  # noqa: B018 - build the lazy indexes before timing
    g = osmnx_graph(net)
    say(f"central network: {net.n_nodes} nodes, {net.n_edges} edges "
        f"({g.number_of_edges()} directed in networkx); {len(fac_xy)} facilities, "
        f"{len(dem_xy)} demand points on the network; limit {limit:.0f} m")
    t_snap, fac_nodes = timed(lambda: np.asarray(
        ox.distance.nearest_nodes(g, fac_xy[:, 0], fac_xy[:, 1])))
    dem_nodes = np.asarray(ox.distance.nearest_nodes(g, dem_xy[:, 0], dem_xy[:, 1]))
    pos = {int(n): i for i, n in enumerate(net.node_ids)}
    fac = gpd.GeoSeries(shapely.points(net.node_xy[[pos[int(n)] for n in fac_nodes]]),
                        crs=net.crs)
    dem = gpd.GeoSeries(shapely.points(net.node_xy[[pos[int(n)] for n in dem_nodes]]),
                        crs=net.crs)
    res: dict[str, Any] = {"n_facilities": len(fac), "n_demand": len(dem),
                           "n_edges": net.n_edges}

    # (a) osmnx recipe
    t_edges, recipe_polys = timed(lambda: osmnx_recipe(g, fac_nodes, limit, hull=False))
    t_edges4, _ = timed(lambda: osmnx_recipe(g, fac_nodes, limit, hull=False,
                                             quad_segs=QUAD_SEGS))
    t_hull, _ = timed(lambda: osmnx_recipe(g, fac_nodes, limit, hull=True))
    res["osmnx_edge_buffer_s"] = t_snap + t_edges
    res["osmnx_edge_buffer_q4_s"] = t_snap + t_edges4
    res["osmnx_hull_s"] = t_snap + t_hull
    # (c) coverage15
    t_c15, (reach, polys) = timed(lambda: coverage15_areas(net, fac, limit), repeat=5)
    t_lines, (_, polys_lines) = timed(lambda: coverage15_areas(net, fac, limit,
                                                               method="lines"))
    t_c15_16, _ = timed(lambda: coverage15_areas(net, fac, limit, quad_segs=16), repeat=5)
    res["c15_areas_s"] = t_c15
    res["c15_areas_q16_s"] = t_c15_16
    res["c15_areas_lines_s"] = t_lines
    t_near, nearest = timed(lambda: coverage15_nearest(net, fac, dem, limit), repeat=5)
    t_count, count = timed(lambda: coverage15_counts(net, fac, dem, limit), repeat=5)
    nearest = np.where(np.isnan(nearest), np.inf, nearest)
    res["c15_nearest_s"] = t_near
    res["c15_counts_s"] = t_count
    # (b) pandana, on the same (node) coordinates
    pdn = pandana_run(net, shapely.get_coordinates(fac.to_numpy()),
                      shapely.get_coordinates(dem.to_numpy()), fac_nodes, limit)

    say("")
    say("all per-facility service areas (central network):")
    say(f"  osmnx recipe, ego_graph + edge buffer : {res['osmnx_edge_buffer_s']:8.2f} s"
        "  (gdf.buffer(50), as usually written: 16 segments per quarter circle)")
    say(f"  the same recipe, buffer quad_segs={QUAD_SEGS}  : "
        f"{res['osmnx_edge_buffer_q4_s']:8.2f} s  (coverage15's arc rounding)")
    say(f"  osmnx recipe, ego_graph + convex hull : {res['osmnx_hull_s']:8.2f} s")
    say(f"  coverage15, method='lines'            : {t_lines:8.2f} s")
    say(f"  coverage15 (median of 5)              : {t_c15:8.2f} s  "
        f"(quad_segs={QUAD_SEGS})")
    say(f"  ratio osmnx edge-buffer / coverage15  : {res['osmnx_edge_buffer_s'] / t_c15:8.1f}x")
    say(f"  ratio, same arc rounding (quad_segs={QUAD_SEGS}): "
        f"{res['osmnx_edge_buffer_q4_s'] / t_c15:6.1f}x")
    say(f"  coverage15 with quad_segs=16          : {t_c15_16:8.2f} s  (the recipe's arcs)")
    say(f"  ratio, same arc rounding (quad_segs=16): "
        f"{res['osmnx_edge_buffer_s'] / t_c15_16:5.1f}x")
    say(f"  ratio osmnx hull / coverage15         : {res['osmnx_hull_s'] / t_c15:8.1f}x")
    say("nearest-facility distances and facilities in reach, for every demand point:")
    say(f"  coverage15 nearest_facility (+ snaps) : {t_near:8.3f} s")
    say(f"  coverage15 point_distances (+ snaps)  : {t_count:8.3f} s")
    if pdn is None:
        say("  pandana: not installed (pip install -e '.[bench]')")
    else:
        res.update({f"pandana_{k}": v for k, v in pdn.items() if k.endswith("_s")})
        say(f"  pandana {pdn['version']} network build (CH)     : {pdn['build_s']:8.3f} s")
        say(f"  pandana precompute({limit:.0f} m)           : {pdn['precompute_s']:8.3f} s")
        say(f"  pandana nearest_pois (+ node lookups) : {pdn['nearest_s']:8.3f} s")
        say(f"  pandana set + aggregate (+ lookups)   : {pdn['aggregate_s']:8.3f} s")
        say(f"  ratio pandana / coverage15, nearest   : {pdn['nearest_s'] / t_near:8.2f}x "
            f"(with pandana's build: {(pdn['build_s'] + pdn['nearest_s']) / t_near:.1f}x)")
        say(f"  ratio pandana / coverage15, in reach  : {pdn['aggregate_s'] / t_count:8.2f}x")

    say("targets (issue #6):")
    targets = {
        "service areas >= 30x the osmnx edge-buffer recipe, as each is usually run":
            res["osmnx_edge_buffer_s"] / t_c15 >= 30,
        f"  the same, like for like at quad_segs={QUAD_SEGS}":
            res["osmnx_edge_buffer_q4_s"] / t_c15 >= 30,
        "  the same, like for like at quad_segs=16": res["osmnx_edge_buffer_s"] / t_c15_16 >= 30,
    }
    if pdn is not None:
        targets["nearest-facility distances not slower than pandana"] = (
            t_near <= pdn["nearest_s"])
    res["targets"] = targets
    for name, met in targets.items():
        say(f"  {'met    ' if met else 'NOT MET'} {name}")
    say("answers:")
    res["checks"] = checks = check_answers(
        g, net, fac_nodes=fac_nodes, dem_nodes=dem_nodes, reach=reach, nearest=nearest,
        count=count, limit=limit, pdn=pdn, polys=(polys, polys_lines, recipe_polys))
    for name, (ok, detail) in checks.items():
        say(f"  {'ok  ' if ok else 'FAIL'} {name}: {detail}")
    return res


def check_answers(g: nx.MultiDiGraph, net: WalkNetwork, *, fac_nodes: np.ndarray,
                  dem_nodes: np.ndarray, reach: Any, nearest: np.ndarray, count: np.ndarray,
                  limit: float, pdn: dict[str, Any] | None,
                  polys: tuple[np.ndarray, np.ndarray, list[shapely.Geometry]],
                  ) -> dict[str, tuple[bool, str]]:
    """Compare the three tools' answers."""
    out: dict[str, tuple[bool, str]] = {}
    worst, missing, extra = 0.0, 0, 0
    in_reach: dict[int, int] = {}
    for i, node in enumerate(fac_nodes):
        want = nx.single_source_dijkstra_path_length(g, node, cutoff=limit, weight="length")
        for n in want:
            in_reach[n] = in_reach.get(n, 0) + 1
        mine = reach.source == i
        got = dict(zip(net.node_ids[reach.node[mine]].tolist(), reach.dist_m[mine].tolist(),
                       strict=True))
        for n, d in want.items():
            if n in got:
                worst = max(worst, abs(got[n] - d))
            elif d < limit - 1e-6:
                missing += 1
        extra += sum(1 for n, d in got.items() if n not in want and d < limit - 1e-6)
    out["node distances vs networkx"] = (
        worst <= 1.0 and missing == 0 and extra == 0,
        f"max difference {worst:.1e} m, {missing} missing and {extra} extra nodes")
    cov_c15 = np.isfinite(nearest)
    cov_nx = np.array([int(n) in in_reach for n in dem_nodes])
    out["covered demand vs osmnx recipe"] = (
        bool(np.array_equal(cov_c15, cov_nx)),
        f"coverage15 {cov_c15.sum()}, networkx ego graphs {cov_nx.sum()} of {len(dem_nodes)}")
    count_nx = np.array([in_reach.get(int(n), 0) for n in dem_nodes])
    out["facilities in reach vs osmnx recipe"] = (
        bool(np.array_equal(count, count_nx)), f"{int((count != count_nx).sum())} points differ")
    if pdn is not None:
        p_near = pdn["nearest_m"]
        both = np.isfinite(nearest) & np.isfinite(p_near) & (p_near <= limit)
        diff = np.abs(nearest[both] - p_near[both])
        out["nearest distance vs pandana"] = (
            bool(len(diff) == 0 or diff.max() <= 1.0),
            f"max difference {diff.max() if len(diff) else 0:.3f} m over {both.sum()} points")
        cov_pdn = np.isfinite(p_near) & (p_near <= limit)
        out["covered demand vs pandana"] = (
            bool(np.array_equal(cov_c15, cov_pdn)),
            f"coverage15 {cov_c15.sum()}, pandana {cov_pdn.sum()} of {len(nearest)}")
        p_count = np.rint(pdn["count"]).astype(int)
        out["facilities in reach vs pandana aggregate"] = (
            bool(np.array_equal(count, p_count)), f"{int((count != p_count).sum())} points differ")
    chains, lines, recipe = polys
    out["polygons: chains vs lines builder"] = _polygon_check(chains, lines)
    c15_area = shapely.area(chains).sum() / 1e6
    recipe_area = sum(p.area for p in recipe) / 1e6
    out["area (info): coverage15 vs osmnx edge buffer"] = (
        True, f"{c15_area:.1f} vs {recipe_area:.1f} km2 summed over facilities (the recipe "
        "keeps whole edges between reached nodes and drops partly reached ones)")
    return out


def _polygon_check(a: np.ndarray, b: np.ndarray) -> tuple[bool, str]:
    sagitta = BUFFER_M * (1 - np.cos(np.pi / (4 * QUAD_SEGS)))
    ok = ~shapely.is_empty(a)
    hd = float(np.max(shapely.hausdorff_distance(a[ok], b[ok]), initial=0.0))
    rel = float(np.max(shapely.area(shapely.symmetric_difference(a[ok], b[ok]))
                       / shapely.area(b[ok]), initial=0.0))
    return (hd <= sagitta + 1e-6,
            f"Hausdorff {hd:.3f} m (arc rounding {sagitta:.3f} m), area difference {rel:.1e}")
