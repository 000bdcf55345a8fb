"""A large PBF case: the synthetic city (``synthetic.py``) written as .osm.pbf, then read.

``python benchmarks/pbf.py [EDGES]`` (default 1,000,000; needs COVERAGE15_DATA and the
``osmium`` package):

1. tiles the real central network to about ``EDGES`` edges (``synthetic.tiled_network``) and
   writes it with pyosmium as an OpenStreetMap PBF in EPSG:4326: every street vertex a node,
   every edge a way, tagged ``highway=residential`` except every 10th ``footway`` and every
   50th ``motorway`` (which the walk filter drops);
2. in a fresh Python process (so that the peak memory is its own), reads it as
   ``coverage15.build_walk_network`` does for ``source = "pbf"``, ``ways = "walk"`` and an
   ``area_bbox`` holding the middle 80 % of it (plus the 1 km margin): read and filter
   (pyosmium), clip, simplify (numpy), and build the WalkNetwork (project, drop fragments,
   extent); each step timed, and ``ru_maxrss`` at the end.

Prints one JSON line per stage.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyproj
import shapely
import synthetic as syn

from coverage15.inputs.config import load_config
from coverage15.network.graph import build_walk_network

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "data" / "shanghai-central.toml"


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_pbf(edges: int, path: Path) -> dict[str, float]:
    """The synthetic city of about ``edges`` edges as a PBF file; its sizes and the time."""
    import osmium

    start = time.perf_counter()
    base = build_walk_network(load_config(CONFIG).network)
    net = syn.tiled_network(base, *syn.grid_for_edges(base, edges))
    coords, index = shapely.get_coordinates(net.edge_geometry, return_index=True)
    counts = np.bincount(index, minlength=net.n_edges)
    ends = np.cumsum(counts)
    firsts = ends - counts
    ids = np.arange(len(coords), dtype=np.int64) + net.n_nodes + 1  # inner vertices
    ids[firsts] = net.edge_u + 1  # the geometry runs from u to v
    ids[ends - 1] = net.edge_v + 1
    to_ll = pyproj.Transformer.from_crs(net.crs, "EPSG:4326", always_xy=True)
    node_lon, node_lat = to_ll.transform(*net.node_xy.T)
    lon, lat = to_ll.transform(*coords.T)
    inner = np.ones(len(coords), dtype=bool)
    inner[firsts] = inner[ends - 1] = False
    with osmium.SimpleWriter(str(path), overwrite=True) as writer:
        for i in range(net.n_nodes):
            writer.add_node(osmium.osm.mutable.Node(id=i + 1, location=(node_lon[i],
                                                                         node_lat[i])))
        for i in np.flatnonzero(inner).tolist():
            writer.add_node(osmium.osm.mutable.Node(id=int(ids[i]), location=(lon[i], lat[i])))
        id_list = ids.tolist()
        for e in range(net.n_edges):
            kind = ("motorway" if e % 50 == 7 else "footway" if e % 10 == 0
                    else "residential")
            writer.add_way(osmium.osm.mutable.Way(
                id=e + 1, nodes=id_list[firsts[e]:ends[e]], tags={"highway": kind}))
    box = (float(node_lon.min()), float(node_lat.min()), float(node_lon.max()),
           float(node_lat.max()))
    return {"edges": net.n_edges, "nodes": net.n_nodes + int(inner.sum()),
            "ways": net.n_edges, "mb": path.stat().st_size / 1e6,
            "write_s": time.perf_counter() - start, "bbox": box}


def read_case(path: Path, box: tuple[float, float, float, float]) -> dict[str, float]:
    """Read, filter, clip, simplify and build, as ``build_walk_network`` does; timed."""
    from coverage15 import settings
    from coverage15.inputs.specs import NetworkSpec
    from coverage15.network import pbf
    from coverage15.network.graph import network_from_arrays

    w, s, e, n = box
    dx, dy = (e - w) * 0.1, (n - s) * 0.1
    spec = NetworkSpec("pbf", path, ways="walk", area_bbox=(w + dx, s + dy, e - dx, n - dy))
    out: dict[str, float] = {}
    t = time.perf_counter()
    area = pbf.study_area(spec, None, settings.working_crs)
    segments = pbf.read_osm_ways(path, ways="walk", area=area)
    out["read_clip_s"] = time.perf_counter() - t
    out["segments"] = len(segments.seg_a)
    t = time.perf_counter()
    arrays = pbf.simplify(segments)
    out["simplify_s"] = time.perf_counter() - t
    t = time.perf_counter()
    net = network_from_arrays(*arrays, crs="EPSG:4326")
    out["build_s"] = time.perf_counter() - t
    out["total_s"] = out["read_clip_s"] + out["simplify_s"] + out["build_s"]
    out["edges"], out["nodes"] = net.n_edges, net.n_nodes
    out["peak_mb"] = peak_mb()
    return out


def main(argv: list[str]) -> int:
    if argv and argv[0] == "_read":
        box = tuple(json.loads(argv[2]))
        print(json.dumps({"stage": "read", **read_case(Path(argv[1]), box)}))  # type: ignore[arg-type]
        return 0
    edges = int(argv[0]) if argv else 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"synthetic-{edges}.osm.pbf"
        made = write_pbf(edges, path)
        print(json.dumps({"stage": "write", **made}), flush=True)
        env = {**os.environ, "COVERAGE15_CACHE": str(Path(tmp) / "cache")}
        subprocess.run([sys.executable, __file__, "_read", str(path), json.dumps(made["bbox"])],
                       check=True, env=env)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
