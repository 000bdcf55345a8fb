"""Street graphs from OSM files (.osm.pbf, or OSM XML) through pyosmium, without networkx.

:func:`read_osm_ways` streams a file once (pyosmium keeps node locations in its own compact
index) and keeps the ways a tag filter accepts (:mod:`coverage15.network._walk_filter`),
clipped to a study area; :func:`simplify` turns their node chains into the edges between
intersections and dead ends exactly as osmnx's ``simplify_graph`` does (the same endpoint
rules, rings without an endpoint dropped), so a PBF file and osmnx reading the same data as
XML give the same network. Everything after reading works on numpy arrays, which is what
makes a city-sized extract fit in memory.

Needs the optional ``osmium`` package (``pip install coverage15[pbf]``).
"""

from __future__ import annotations

import logging
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import shapely

from coverage15._errors import InputFileError, NetworkError
from coverage15.inputs.specs import NetworkSpec
from coverage15.network._walk_filter import tag_filter

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["OsmWays", "read_osm_ways", "simplify", "study_area"]

log = logging.getLogger(__name__)

PROGRESS_WAYS = 250_000  # a progress message every this many kept ways


@dataclass(frozen=True)
class OsmWays:
    """Kept ways as segments between consecutive nodes, in EPSG:4326.

    ``node_ids``/``xy`` are the distinct nodes used; ``seg_a``/``seg_b`` index them.
    """

    node_ids: npt.NDArray[np.int64]
    xy: npt.NDArray[np.float64]
    seg_a: npt.NDArray[np.int64]
    seg_b: npt.NDArray[np.int64]
    ways: int


def study_area(spec: NetworkSpec, units_area: shapely.Geometry | None,
               working_crs: str) -> shapely.Geometry | None:
    """The ``[network] area``/``area_bbox`` a file is clipped to, with its margin (EPSG:4326).

    ``units_area`` is the union of the unit layer in EPSG:4326, for ``area = "units"``.
    """
    parts = []
    if spec.area == "units":
        if units_area is None:
            msg = "network: area = \"units\" needs the unit layer (pass area= the units' union)"
            raise NetworkError(msg)
        parts.append(units_area)
    elif spec.area is not None:
        path = Path(spec.area)
        if not path.is_file():
            msg = f"network area {path}: file not found"
            raise InputFileError(msg)
        parts.append(gpd.read_file(path).to_crs("EPSG:4326").union_all())
    if spec.area_bbox is not None:
        parts.append(shapely.box(*spec.area_bbox))
    if not parts:
        return None
    area = shapely.intersection_all(parts) if len(parts) > 1 else parts[0]
    if spec.area_margin_m > 0:
        grown = gpd.GeoSeries([area], crs="EPSG:4326").to_crs(working_crs)
        area = grown.buffer(spec.area_margin_m).to_crs("EPSG:4326").iloc[0]
    return shapely.make_valid(area)


def _import_osmium() -> Any:
    try:
        import osmium
    except ImportError as exc:  # pragma: no cover - depends on the environment
        msg = ("reading .osm.pbf files needs the osmium package: pip install 'coverage15[pbf]' "
               "(or pip install osmium)")
        raise NetworkError(msg) from exc
    return osmium


def read_osm_ways(path: Path, *, ways: str = "walk", area: shapely.Geometry | None = None,
                  say: Callable[[str], None] | None = None) -> OsmWays:
    """The segments of the ways in an OSM file that ``ways`` keeps, inside ``area``.

    Parameters
    ----------
    path
        An ``.osm.pbf`` (or ``.osm`` XML, ``.osm.bz2``...) file.
    ways
        ``"walk"`` or ``"streets"`` (:func:`coverage15.network._walk_filter.tag_filter`).
    area
        Study area in EPSG:4326 (margin included); a segment is kept when both its ends are
        inside (as osmnx truncates a graph to a polygon). None: the whole file.
    say
        Progress messages while reading.
    """
    osmium = _import_osmium()
    keep = tag_filter(ways)
    say = say or log.info
    ids, lon, lat = array("q"), array("d"), array("d")
    starts = array("q")
    kept = 0
    try:
        reader = (osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY)
                  .with_locations().with_filter(osmium.filter.KeyFilter("highway")))
        for obj in reader:
            if not obj.is_way() or not keep(obj.tags):
                continue
            starts.append(len(ids))
            for nd in obj.nodes:
                loc = nd.location
                ids.append(nd.ref)
                if loc.valid():
                    lon.append(loc.lon)
                    lat.append(loc.lat)
                else:  # a node cut off by the extract: its segments are dropped
                    lon.append(np.nan)
                    lat.append(np.nan)
            kept += 1
            if kept % PROGRESS_WAYS == 0:
                say(f"network: {kept:,} ways read from {path.name}")
    except (RuntimeError, OSError) as exc:  # osmium's errors for unreadable files
        msg = f"network {path}: cannot read it as OpenStreetMap data ({exc})"
        raise InputFileError(msg) from exc
    say(f"network: {kept:,} ways, {len(ids):,} node references kept from {path.name}")
    node_ref = np.frombuffer(ids, dtype=np.int64) if len(ids) else np.zeros(0, np.int64)
    x = np.frombuffer(lon, dtype=np.float64) if len(lon) else np.zeros(0)
    y = np.frombuffer(lat, dtype=np.float64) if len(lat) else np.zeros(0)
    way_start = np.frombuffer(starts, dtype=np.int64) if len(starts) else np.zeros(0, np.int64)
    # segments between consecutive references of a way; repeated nodes collapsed (osmnx)
    first = np.zeros(len(node_ref), dtype=bool)
    first[way_start] = True
    same = np.zeros(len(node_ref), dtype=bool)
    same[1:] = (node_ref[1:] == node_ref[:-1]) & ~first[1:]
    node_ref, x, y, first = node_ref[~same], x[~same], y[~same], first[~same]
    seg = np.flatnonzero(~first[1:])  # reference i to i + 1 within one way
    uniq, pos = np.unique(node_ref, return_inverse=True)
    xy = np.full((len(uniq), 2), np.nan)
    xy[pos, 0] = x
    xy[pos, 1] = y
    a, b = pos[seg].astype(np.int64), pos[seg + 1].astype(np.int64)
    ok = np.isfinite(xy[:, 0])
    if area is not None:
        ok &= shapely.contains_xy(area, xy[:, 0], xy[:, 1])
    good = ok[a] & ok[b]
    a, b = a[good], b[good]
    used = np.zeros(len(uniq), dtype=bool)
    used[a] = used[b] = True
    new = np.cumsum(used) - 1
    return OsmWays(node_ids=uniq[used], xy=xy[used], seg_a=new[a], seg_b=new[b], ways=kept)


def simplify(w: OsmWays) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64],
                                  npt.NDArray[np.int32], npt.NDArray[np.int32],
                                  npt.NDArray[np.object_]]:
    """Edges between endpoints, as osmnx's ``simplify_graph`` makes them.

    A node is an endpoint unless it has exactly two segments, to two different neighbours
    (osmnx's rules for a two-way graph); the chain of segments between two endpoints becomes
    one edge whose geometry runs through the nodes between. Rings with no endpoint are
    dropped (osmnx ``remove_rings``).

    Returns
    -------
    node_ids, xy, u, v, geometry
        Endpoint ids and coordinates; edges as positions into them, with LineStrings.
    """
    n = len(w.node_ids)
    a, b = w.seg_a, w.seg_b
    m = len(a)
    if m == 0:
        msg = "the street network has no edges"
        raise NetworkError(msg)
    ends = np.concatenate([a, b])
    incidence = np.bincount(ends, minlength=n)
    # distinct neighbours of each node
    pair = np.unique(np.stack([np.concatenate([a, b]), np.concatenate([b, a])], axis=1), axis=0)
    neighbours = np.bincount(pair[:, 0], minlength=n)
    endpoint = ~((incidence == 2) & (neighbours == 2))
    # incidence lists: node -> its segments
    seg_of = np.concatenate([np.arange(m), np.arange(m)])
    order = np.argsort(ends, kind="stable")
    indptr = np.concatenate([[0], np.cumsum(incidence)])
    inc = seg_of[order].tolist()
    ptr = indptr.tolist()
    a_l, b_l = a.tolist(), b.tolist()
    is_end = endpoint.tolist()
    used = bytearray(m)
    path_nodes: list[int] = []
    path_len: list[int] = []
    eu: list[int] = []
    ev: list[int] = []
    for start in np.flatnonzero(endpoint).tolist():
        for k in range(ptr[start], ptr[start + 1]):
            s = inc[k]
            if used[s]:
                continue
            nodes = [start]
            cur, seg = start, s
            while True:
                used[seg] = 1
                nxt = b_l[seg] if a_l[seg] == cur else a_l[seg]
                nodes.append(nxt)
                if is_end[nxt]:
                    break
                i0 = ptr[nxt]
                seg = inc[i0] if inc[i0] != seg else inc[i0 + 1]
                cur = nxt
            eu.append(start)
            ev.append(nxt)
            path_nodes.extend(nodes)
            path_len.append(len(nodes))
    if not eu:
        msg = "the street network has no edges (only rings without a junction)"
        raise NetworkError(msg)
    coords = w.xy[np.asarray(path_nodes, dtype=np.int64)]
    geometry = shapely.linestrings(coords, indices=np.repeat(np.arange(len(path_len)),
                                                             path_len))
    u_all, v_all = np.asarray(eu, dtype=np.int64), np.asarray(ev, dtype=np.int64)
    keep = np.zeros(n, dtype=bool)
    keep[u_all] = keep[v_all] = True
    new = (np.cumsum(keep) - 1).astype(np.int32)
    return (w.node_ids[keep], w.xy[keep], new[u_all], new[v_all],
            np.asarray(geometry, dtype=object))
