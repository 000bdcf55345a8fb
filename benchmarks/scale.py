"""Scale cases on networks made from the real one (see ``synthetic.py``).

Each case runs in a fresh Python process (``run.py _case`` / ``run.py _fullrun``) so that its
peak memory (``ru_maxrss``: numpy and GEOS memory included) is its own.

- ``scale_case``: the kernel steps on a tiled network: snapping facilities and demand,
  ``network_reach``, ``reached_intervals``, ``service_area_polygons``, ``union_areas``,
  ``point_distances`` and the per-point coverage (facilities in reach and nearest), timed one
  by one. Facilities and demand are the real points copied into every tile, sampled with a
  fixed seed; demand is one point per five edges.
- ``full_run``: ``coverage15.pipeline.run`` itself (load layers, network, service areas,
  coverage, targets, gap and district reports) on a temporary run config: the tiled network
  is put in coverage15's own network cache under a placeholder file (as a second run on the
  same OSM file would find it), the facilities (split 1:3:1 into ``centre``, ``meal_point``
  and ``canteen``, so the shipped targets apply) and the demand are written as CSV in
  EPSG:32651, and the units are 3 km squares (districts: 4 × 4 blocks of them). Then
  ``write_outputs`` (GeoPackage, CSV and Excel reports; no map) is timed separately.
"""

from __future__ import annotations

import json
import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import synthetic as syn

from coverage15.inputs.config import load_config
from coverage15.inputs.layers import load_layer
from coverage15.network.graph import WalkNetwork, build_walk_network, snap_points
from coverage15.reach import distances
from coverage15.reach import service_areas as sa

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "data" / "shanghai-central.toml"
SEED = 15
LIMIT_M = 1000.0
EDGES_PER_DEMAND = 5


def peak_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _base() -> tuple[WalkNetwork, np.ndarray, np.ndarray]:
    """The real central network, and the real facility and demand points on it (xy)."""
    config = load_config(CONFIG)
    net = build_walk_network(config.network)
    pools = []
    specs = [*config.layers.values(), config.demand]
    for spec in specs:
        assert spec is not None
        points = load_layer(spec).points
        snap = snap_points(net, points, snap_max_m=config.analysis.snap_max_m)
        xy = shapely.get_coordinates(points.geometry.to_crs(net.crs).to_numpy())
        pools.append(xy[snap.snapped])
    return net, np.concatenate(pools[:-1]), pools[-1]


def synthetic_inputs(edges: int, n_fac: int, n_demand: int | None,
                     ) -> tuple[WalkNetwork, np.ndarray, np.ndarray, dict[str, Any]]:
    """A tiled network of about ``edges`` edges and sampled facility and demand points."""
    base, fac_pool, dem_pool = _base()
    nx, ny = syn.grid_for_edges(base, edges)
    start = time.perf_counter()
    net = syn.tiled_network(base, nx, ny)
    made_s = time.perf_counter() - start
    n_demand = n_demand if n_demand is not None else net.n_edges // EDGES_PER_DEMAND
    fac = syn.sample(syn.tiled_points(base, fac_pool, nx, ny), n_fac, seed=SEED)
    dem = syn.sample(syn.tiled_points(base, dem_pool, nx, ny), n_demand, seed=SEED + 1)
    info = {"tiles": f"{nx}x{ny}", "nodes": net.n_nodes, "edges": net.n_edges,
            "facilities": n_fac, "demand": n_demand, "make_network_s": made_s}
    return net, fac, dem, info


def scale_case(edges: int, n_fac: int, n_demand: int | None = None) -> dict[str, Any]:
    """Time the kernel steps on one synthetic size; return the numbers."""
    net, fac_xy, dem_xy, out = synthetic_inputs(edges, n_fac, n_demand)
    out["rss_network_mb"] = peak_mb()
    fac = gpd.GeoSeries(shapely.points(fac_xy), crs=net.crs)
    dem = gpd.GeoSeries(shapely.points(dem_xy), crs=net.crs)
    steps: dict[str, float] = {}

    def step(name: str, fn: Any) -> Any:
        start = time.perf_counter()
        value = fn()
        steps[name] = time.perf_counter() - start
        return value

    total = time.perf_counter()
    step("indexes", lambda: (net.csr, net.incidence))
    fsnap = step("snap facilities", lambda: snap_points(net, fac, snap_max_m=500))
    reach = step("network_reach", lambda: distances.network_reach(net, fsnap, limit_m=LIMIT_M))
    iv = step("reached_intervals", lambda: sa.reached_intervals(net, reach))
    polys = step("service_area_polygons",
                 lambda: sa.service_area_polygons(net, iv, n_groups=len(fac)))
    step("union_areas", lambda: sa.union_areas(polys))
    dsnap = step("snap demand", lambda: snap_points(net, dem, snap_max_m=500))
    pairs = step("point_distances", lambda: distances.point_distances(net, reach, dsnap))

    def cover() -> tuple[np.ndarray, np.ndarray]:
        nearest = np.full(len(dem), np.inf)
        np.minimum.at(nearest, pairs[1], pairs[2])
        return np.bincount(pairs[1], minlength=len(dem)), nearest

    count, _ = step("coverage per point", cover)
    out["total_s"] = time.perf_counter() - total
    out["steps"] = steps
    out["covered_share"] = float((count > 0).mean())
    out["peak_mb"] = peak_mb()
    return out


def _units(net: WalkNetwork, size_m: float = 3000.0, block: int = 4,
           ) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Square units over the network's extent, and districts of ``block`` × ``block`` units."""
    x0, y0, x1, y1 = shapely.bounds(net.extent)
    nx, ny = int(np.ceil((x1 - x0) / size_m)), int(np.ceil((y1 - y0) / size_m))
    i, j = np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij")
    i, j = i.ravel(), j.ravel()
    boxes = shapely.box(x0 + i * size_m, y0 + j * size_m, x0 + (i + 1) * size_m,
                        y0 + (j + 1) * size_m)
    district = [f"D{a:02d}-{b:02d}" for a, b in zip(i // block, j // block, strict=True)]
    units = gpd.GeoDataFrame({"name": [f"U{a:03d}-{b:03d}" for a, b in zip(i, j, strict=True)],
                              "district": district}, geometry=boxes, crs=net.crs)
    districts = units.dissolve("district").reset_index()[["district", "geometry"]]
    return units, districts


def full_run(edges: int, n_fac: int, n_demand: int | None = None) -> dict[str, Any]:
    """``pipeline.run`` on a synthetic city (see the module docstring); return the numbers."""
    from coverage15.network import _cache
    from coverage15.pipeline import run, write_outputs

    with tempfile.TemporaryDirectory(prefix="c15-fullrun-") as tmp_name:
        tmp = Path(tmp_name)
        config, out = synthetic_city(edges, n_fac, n_demand, tmp)
        start = time.perf_counter()
        result = run(config)
        out["run_s"] = time.perf_counter() - start
        out["run_steps"] = dict(result.timings)
        out["units"] = len(result.units)
        out["uncovered_units"] = int(result.gap_report["uncovered"].fillna(False)
                                     .astype(bool).sum())
        out["peak_run_mb"] = peak_mb()
        start = time.perf_counter()
        write_outputs(result, tmp / "out", map_html=False, map_png=False)
        out["write_s"] = time.perf_counter() - start
        out["peak_mb"] = peak_mb()
        # the same run again: every layer's distance work and the demand snaps come from
        # the cache the first run wrote
        del result
        start = time.perf_counter()
        again = run(config)
        out["rerun_s"] = time.perf_counter() - start
        out["rerun_steps"] = dict(again.timings)
        out["rerun_reused"] = list(again.reused)
        usage = _cache.usage()  # settings.cache_folder is tmp / "cache" (synthetic_city)
        out["cache_mb"] = sum(usage.get(kind, (0, 0))[1] for kind in _cache.RESULT_KINDS) / 1e6
    return out


def synthetic_city(edges: int, n_fac: int, n_demand: int | None, tmp: Path,
                   ) -> tuple[Any, dict[str, Any]]:
    """Write a synthetic city's inputs and run config into ``tmp``; return (config, facts).

    The tiled network goes into coverage15's network cache (in ``tmp``) under a placeholder
    OSM file, as a second run on the same file would find it.
    """
    from coverage15 import settings
    from coverage15.network import graph as network

    net, fac_xy, dem_xy, out = synthetic_inputs(edges, n_fac, n_demand)
    settings.cache_folder = str(tmp / "cache")
    placeholder = tmp / "synthetic.osm"
    placeholder.write_text(f"<!-- coverage15 benchmark: tiled network {out['tiles']} of "
                           "central_streets.osm (see benchmarks/synthetic.py) -->\n")
    network._write_cache(network._cache_path(placeholder, net.crs), net)
    keys = np.array(["centre", "meal_point", "meal_point", "meal_point", "canteen"])
    layer = keys[np.arange(len(fac_xy)) % 5]
    for key in ("centre", "meal_point", "canteen"):
        xy = fac_xy[layer == key]
        pd.DataFrame({"name": [f"{key} {i}" for i in range(len(xy))], "x": xy[:, 0],
                      "y": xy[:, 1]}).to_csv(tmp / f"{key}.csv", index=False)
    pd.DataFrame({"name": [f"home {i}" for i in range(len(dem_xy))], "x": dem_xy[:, 0],
                  "y": dem_xy[:, 1]}).to_csv(tmp / "demand.csv", index=False)
    units, districts = _units(net)
    units.to_file(tmp / "units.gpkg", driver="GPKG", engine="pyogrio")
    districts.to_file(tmp / "districts.gpkg", driver="GPKG", engine="pyogrio")
    layers = "\n".join(
        f'[layers.{key}]\nlabel = "{key}"\nrole = "{role}"\npath = "{key}.csv"\n'
        f'x = "x"\ny = "y"\ncrs = "EPSG:32651"\nname_field = "name"\n'
        for key, role in (("centre", "centre"), ("meal_point", "station"),
                          ("canteen", "station")))
    (tmp / "run.toml").write_text(f'''name = "synthetic city {out["tiles"]}"
data_dir = "{tmp}"
targets = "{ROOT / "data" / "targets" / "shanghai-2025.toml"}"

[analysis]
walk_speed_kmh = 4.0
minutes = 15
buffer_m = 50
snap_max_m = 500
access_leg = true
working_crs = "EPSG:32651"

[network]
source = "osm_file"
path = "synthetic.osm"

[units]
path = "units.gpkg"
name_field = "name"
district_field = "district"

[districts]
path = "districts.gpkg"
name_field = "district"

[demand]
path = "demand.csv"
x = "x"
y = "y"
crs = "EPSG:32651"
name_field = "name"

{layers}''', encoding="utf-8")
    del net
    return load_config(tmp / "run.toml"), out


def main_case(argv: list[str]) -> None:
    """Entry point of the child process: ``_case EDGES FACILITIES [DEMAND]``."""
    kind, edges, n_fac = argv[0], int(argv[1]), int(argv[2])
    n_demand = int(argv[3]) if len(argv) > 3 else None
    os.environ.setdefault("PYTHONHASHSEED", "0")
    result = (scale_case if kind == "_case" else full_run)(edges, n_fac, n_demand)
    print("RESULT " + json.dumps(result))
