"""Hand-made street networks whose answers can be computed by hand, shared by the tests.

Offsets in metres from a point in central Shanghai, in EPSG:32651.
"""

from __future__ import annotations

import itertools
import math

import geopandas as gpd
import networkx as nx
import numpy as np
import shapely
from hypothesis import strategies as st

from coverage15.network.graph import WalkNetwork, network_from_graph, snap_points

CRS = "EPSG:32651"
X0, Y0 = 350_000.0, 3_450_000.0


def make_net(nodes: dict[int, tuple[float, float]], edges: list) -> WalkNetwork:
    """A WalkNetwork from ``{id: (dx, dy)}`` offsets and ``(u, v)`` or ``(u, v, [(dx, dy)..])``
    edges (the list gives the full geometry from u to v)."""
    g = nx.MultiGraph(crs=CRS)
    for n, (dx, dy) in nodes.items():
        g.add_node(n, x=X0 + dx, y=Y0 + dy)
    for e in edges:
        if len(e) == 3:
            g.add_edge(e[0], e[1], geometry=shapely.LineString([(X0 + a, Y0 + b) for a, b in e[2]]))
        else:
            g.add_edge(e[0], e[1])
    return network_from_graph(g, min_component_m=0)


def path_net(n_edges: int = 4, step: float = 250.0) -> WalkNetwork:
    return make_net({i: (step * i, 0.0) for i in range(n_edges + 1)},
                    [(i, i + 1) for i in range(n_edges)])


def square_net() -> WalkNetwork:
    return make_net({0: (0, 0), 1: (250, 0), 2: (250, 250), 3: (0, 250)},
                    [(0, 1), (1, 2), (2, 3), (3, 0)])


def points(*offsets: tuple[float, float]) -> gpd.GeoSeries:
    return gpd.GeoSeries([shapely.Point(X0 + dx, Y0 + dy) for dx, dy in offsets], crs=CRS)


def snap(net: WalkNetwork, *offsets: tuple[float, float], snap_max_m: float = 100.0):
    return snap_points(net, points(*offsets), snap_max_m=snap_max_m)


def node_dist(net: WalkNetwork, reach, source: int = 0) -> dict[int, float]:
    """``{node id: metres}`` reached from one source."""
    mine = reach.source == source
    return {int(net.node_ids[n]): float(d)
            for n, d in zip(reach.node[mine], reach.dist_m[mine], strict=True)}


def edge_of(net: WalkNetwork, a: int, b: int) -> int:
    ids_u, ids_v = net.node_ids[net.edge_u], net.node_ids[net.edge_v]
    hit = np.flatnonzero(((ids_u == a) & (ids_v == b)) | ((ids_u == b) & (ids_v == a)))
    assert len(hit) == 1
    return int(hit[0])


def grid_net(nx_: int, ny: int, step: float = 100.0) -> WalkNetwork:
    nodes = {i * ny + j: (i * step, j * step) for i in range(nx_) for j in range(ny)}
    edges = [(i * ny + j, (i + 1) * ny + j) for i in range(nx_ - 1) for j in range(ny)]
    edges += [(i * ny + j, i * ny + j + 1) for i in range(nx_) for j in range(ny - 1)]
    return make_net(nodes, edges)


def oracle_distances(net: WalkNetwork, fac_snap, tgt_snap, access_leg: bool):
    """Independent answer: networkx Dijkstra on the graph with every point spliced in."""
    g = nx.Graph()
    on_edge: dict[int, list[tuple[float, str]]] = {}
    for kind, sn in (("f", fac_snap), ("t", tgt_snap)):
        for i in np.flatnonzero(sn.snapped):
            on_edge.setdefault(int(sn.edge[i]), []).append((float(sn.offset_m[i]), f"{kind}{i}"))
    for e in range(net.n_edges):
        stops = [(0.0, int(net.edge_u[e]))]
        stops += sorted(on_edge.get(e, []))
        stops.append((float(net.edge_length[e]), int(net.edge_v[e])))
        for (a, na), (b, nb) in itertools.pairwise(stops):
            w = b - a
            if g.has_edge(na, nb):
                w = min(w, g.edges[na, nb]["w"])
            g.add_edge(na, nb, w=w)
    out = {}
    for i in np.flatnonzero(fac_snap.snapped):
        lengths = nx.single_source_dijkstra_path_length(g, f"f{i}", weight="w")
        for j in np.flatnonzero(tgt_snap.snapped):
            d = lengths.get(f"t{j}", math.inf)
            if access_leg:
                d += fac_snap.snap_m[i] + tgt_snap.snap_m[j]
            out[(int(i), int(j))] = d
    return out


coord = st.floats(-60.0, 460.0, allow_nan=False)
point_st = st.tuples(coord, coord)


def total_len(intervals) -> float:
    """Metres of street in all the stretches of ``Intervals``."""
    return float((intervals.end_m - intervals.start_m).sum())


TOWN_X0, TOWN_Y0 = 350_000.0, 3_450_000.0
"""Origin (EPSG:32651) of the hand-made towns of the recommend tests: streets along y = Y0."""
_TOWN_LAYER = 'x = "x"\ny = "y"\ncrs = "EPSG:32651"\nname_field = "name"\n'


def write_points_csv(path, xs, prefix):
    """Points at ``x = TOWN_X0 + xs`` on the town's street, named ``"{prefix} {x}"``."""
    import pandas as pd

    pd.DataFrame({"x": [TOWN_X0 + x for x in xs], "y": [TOWN_Y0] * len(xs),
                  "name": [f"{prefix} {x}" for x in xs]}).to_csv(path, index=False)
    return path


def write_town_units(folder, half_height_m):
    """``units.gpkg``: A街道 and B街道 of 测试区 side by side along the town's street.

    A spans x = TOWN_X0 - 100 … TOWN_X0 + 2,000, B from there to TOWN_X0 + 4,100, both
    ``half_height_m`` either side of the street.
    """
    x0, y0, h = TOWN_X0, TOWN_Y0, half_height_m
    gpd.GeoDataFrame(
        {"name": ["A街道", "B街道"], "district": ["测试区", "测试区"]},
        geometry=[shapely.box(x0 - 100, y0 - h, x0 + 2000, y0 + h),
                  shapely.box(x0 + 2000, y0 - h, x0 + 4100, y0 + h)], crs=CRS,
    ).to_file(folder / "units.gpkg", driver="GPKG")


def write_town_config(folder, *, name, rules, layers):
    """``town.toml`` (and its targets) for a hand-made town whose files lie in ``folder``.

    ``units.gpkg`` and ``demand.csv`` are expected there; ``layers`` maps each layer key to
    its ``(label, role or None, csv file)``. The network is handed to the runs directly, so
    its file only has to exist.
    """
    (folder / "targets.toml").write_text(rules, encoding="utf-8")
    (folder / "unused.osm").write_text("<osm/>\n", encoding="utf-8")
    tables = "".join(
        f'[layers.{key}]\nlabel = "{label}"\n' + (f'role = "{role}"\n' if role else "")
        + f'path = "{path}"\n{_TOWN_LAYER}' for key, (label, role, path) in layers.items())
    (folder / "town.toml").write_text(f"""
name = "{name}"
data_dir = "{folder}"
targets = "targets.toml"
[analysis]
walk_speed_kmh = 4.0
minutes = 15
[network]
source = "osm_file"
path = "unused.osm"
[units]
path = "units.gpkg"
name_field = "name"
district_field = "district"
[demand]
path = "demand.csv"
{_TOWN_LAYER}{tables}""", encoding="utf-8")
    return folder / "town.toml"
