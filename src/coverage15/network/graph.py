"""Walking networks: build, project, compact, cache, and snap points to them.

A :class:`WalkNetwork` is an undirected street graph in a metric CRS held as flat arrays
(nodes, edges with their geometry and length) plus a symmetric CSR adjacency matrix for
:mod:`scipy.sparse.csgraph`. Walking ignores one-way rules, so every street is traversable both
ways. Lengths are measured on the projected geometry so that distances along an edge and
the edge's length agree exactly.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import networkx as nx
import numpy as np
import numpy.typing as npt
import pyproj
import scipy.sparse as sp
import shapely

from coverage15 import settings
from coverage15._errors import InputFileError, NetworkError
from coverage15.inputs.config import NetworkSpec
from coverage15.network import _cache, _names, _packed, _streets
from coverage15.network._online import online_graph as _online_graph
from coverage15.network._snap_index import segment_grid, z_order

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "Snap",
    "WalkNetwork",
    "build_walk_network",
    "content_key",
    "network_from_arrays",
    "network_from_graph",
    "snap_points",
]

log = logging.getLogger(__name__)

_CACHE_VERSION = 7  # 7: edge_name
EXTENT_HULL_RATIO = 0.3  # concave hull of all street vertices (0 = tightest, 1 = convex)
EXTENT_MARGIN_M = 250.0  # plus a margin: land this close to the outermost streets is analysable
MIN_COMPONENT_M = 300.0  # drop street fragments shorter than this in total (islands of 1-2 edges)


@dataclass(eq=False)
class WalkNetwork:
    """An undirected walking network in a projected CRS, as arrays.

    Attributes
    ----------
    crs : str
        The metric working CRS of every coordinate here.
    node_ids : numpy.ndarray
        OSM (or user) node ids, shape ``(n,)``.
    node_xy : numpy.ndarray
        Node coordinates, shape ``(n, 2)``.
    edge_u, edge_v : numpy.ndarray
        Node positions (not ids) of each edge's ends; the geometry runs from ``u`` to ``v``.
    edge_length : numpy.ndarray
        Edge lengths in metres.
    edge_geometry : numpy.ndarray
        Shapely LineStrings from ``u`` to ``v``.
    extent : shapely.Geometry
        Where the network is: the area in which an absence of streets means "no access"
        rather than "no data".
    edge_name : numpy.ndarray or None
        Each edge's street name (OSM ``name``; None where the street has none), for telling
        places in a planner's words; None for networks made without names.
    source : str or None
        :func:`content_key` of the network when :func:`build_walk_network` made it (results
        computed on it are cached under this key); None for networks made in memory, whose
        results are not cached.
    """

    crs: str
    node_ids: npt.NDArray[np.int64]
    node_xy: npt.NDArray[np.float64]
    edge_u: npt.NDArray[np.int32]
    edge_v: npt.NDArray[np.int32]
    edge_length: npt.NDArray[np.float64]
    edge_geometry: npt.NDArray[np.object_]
    extent: shapely.Geometry
    edge_name: npt.NDArray[np.object_] | None = field(default=None, repr=False)
    source: str | None = field(default=None, repr=False)
    _csr: sp.csr_matrix | None = field(default=None, repr=False)
    _tree: shapely.STRtree | None = field(default=None, repr=False)
    _incidence: tuple[npt.NDArray[np.int64], npt.NDArray[np.int32]] | None = field(
        default=None, repr=False
    )

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return len(self.node_ids)

    @property
    def n_edges(self) -> int:
        """Number of (undirected) edges."""
        return len(self.edge_u)

    @property
    def csr(self) -> sp.csr_matrix:
        """Symmetric adjacency matrix of edge lengths (parallel edges: the shortest)."""
        if self._csr is None:
            n = self.n_nodes
            rows = np.concatenate([self.edge_u, self.edge_v])
            cols = np.concatenate([self.edge_v, self.edge_u])
            weights = np.concatenate([self.edge_length, self.edge_length])
            # keep the shortest of parallel edges: sort by weight descending, later wins
            order = np.argsort(-weights, kind="stable")
            key = rows[order].astype(np.int64) * n + cols[order]
            _, last = np.unique(key[::-1], return_index=True)
            pick = order[::-1][last]
            # a tiny epsilon keeps zero-length edges as explicit entries
            self._csr = sp.csr_matrix(
                (np.maximum(weights[pick], 1e-9), (rows[pick], cols[pick])), shape=(n, n)
            )
        return self._csr

    @property
    def tree(self) -> shapely.STRtree:
        """Spatial index over edge geometries."""
        if self._tree is None:
            self._tree = shapely.STRtree(self.edge_geometry)
        return self._tree

    @property
    def incidence(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32]]:
        """Edges incident to each node, as CSR arrays ``(indptr, edges)``.

        Node ``i``'s edges are ``edges[indptr[i]:indptr[i + 1]]``.
        """
        if self._incidence is None:
            ends = np.concatenate([self.edge_u, self.edge_v])
            edges = np.concatenate([np.arange(self.n_edges)] * 2).astype(np.int32)
            order = np.argsort(ends, kind="stable")
            counts = np.bincount(ends, minlength=self.n_nodes)
            indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
            self._incidence = (indptr, edges[order])
        return self._incidence

    def edges_gdf(self) -> gpd.GeoDataFrame:
        """The edges as a GeoDataFrame in the working CRS (for inspection and maps)."""
        return gpd.GeoDataFrame(
            {
                "u": self.node_ids[self.edge_u],
                "v": self.node_ids[self.edge_v],
                "length_m": self.edge_length,
            },
            geometry=self.edge_geometry,
            crs=self.crs,
        )

    def __getstate__(self) -> dict[str, Any]:
        return _packed.pack(self)

    def __setstate__(self, state: dict[str, Any]) -> None:
        _packed.unpack(self, state)

    if not TYPE_CHECKING:  # to the type checker, edge_geometry is a plain attribute

        def __getattr__(self, name: str) -> Any:
            return _packed.unpacked(self, name)


@dataclass(frozen=True)
class Snap:
    """Where points meet the network.

    Attributes
    ----------
    edge : numpy.ndarray
        Edge position of each point's nearest edge, or -1 when farther than the snap limit.
    offset_m : numpy.ndarray
        Distance along that edge from its ``u`` end to the snapped position.
    snap_m : numpy.ndarray
        Straight-line distance from the point to the snapped position (NaN if not snapped).
    """

    edge: npt.NDArray[np.int64]
    offset_m: npt.NDArray[np.float64]
    snap_m: npt.NDArray[np.float64]

    @property
    def snapped(self) -> npt.NDArray[np.bool_]:
        """True where the point is on the network."""
        return self.edge >= 0

    def __len__(self) -> int:
        return len(self.edge)


def network_from_graph(
    graph: nx.MultiGraph | nx.MultiDiGraph | nx.Graph,
    *,
    crs: str | None = None,
    extent: shapely.Geometry | None = None,
    min_component_m: float = MIN_COMPONENT_M,
    working_crs: str | None = None,
) -> WalkNetwork:
    """Build a :class:`WalkNetwork` from a networkx graph.

    Parameters
    ----------
    graph
        A graph whose nodes have ``x`` and ``y``; edges may have a LineString ``geometry``
        (straight lines otherwise). Its CRS is ``graph.graph["crs"]`` unless ``crs`` is given;
        a geographic graph is projected to ``working_crs``.
    crs
        Override of the graph's CRS.
    extent
        Analysis extent polygon in the graph's CRS; default: the street vertices' concave hull
        (``EXTENT_HULL_RATIO``) grown by ``EXTENT_MARGIN_M``. The extent only decides which
        units are assessed; service areas never use it.
    min_component_m
        Drop connected pieces whose streets total less than this (mapping fragments).
    working_crs
        Metric CRS of the result (default :data:`settings.working_crs`). A geographic graph
        is projected to it; a projected graph is kept in its own CRS when ``working_crs`` is
        not given, and reprojected when it is and differs.

    Returns
    -------
    WalkNetwork
    """
    graph_crs = crs or graph.graph.get("crs")
    if graph_crs is None:
        msg = "the graph has no CRS: set graph.graph['crs'] (e.g. 'EPSG:4326') or pass crs="
        raise NetworkError(msg)
    if graph.number_of_edges() == 0:
        msg = "the street network has no edges"
        raise NetworkError(msg)
    node_ids = np.fromiter(graph.nodes, dtype=np.int64, count=graph.number_of_nodes())
    pos = {n: i for i, n in enumerate(graph.nodes)}
    xy = np.array([(d["x"], d["y"]) for _, d in graph.nodes(data=True)], dtype=float)
    edges = list(graph.edges(data=True))
    u = np.array([pos[a] for a, _, _ in edges], dtype=np.int32)
    v = np.array([pos[b] for _, b, _ in edges], dtype=np.int32)
    geometry = np.array(
        [d.get("geometry") for _, _, d in edges], dtype=object
    )
    missing = np.array([g is None for g in geometry])
    if missing.any():
        geometry[missing] = shapely.linestrings(
            np.stack([xy[u[missing]], xy[v[missing]]], axis=1)
        )
    return network_from_arrays(node_ids, xy, u, v, geometry, crs=graph_crs, extent=extent,
                               min_component_m=min_component_m, working_crs=working_crs,
                               edge_data=edges)


def network_from_arrays(
    node_ids: npt.NDArray[np.int64],
    xy: npt.NDArray[np.float64],
    u: npt.NDArray[np.int32],
    v: npt.NDArray[np.int32],
    geometry: npt.NDArray[np.object_],
    *,
    crs: str,
    extent: shapely.Geometry | None = None,
    min_component_m: float = MIN_COMPONENT_M,
    working_crs: str | None = None,
    edge_data: Sequence[tuple[Any, Any, dict[str, Any]]] | None = None,
) -> WalkNetwork:
    """Build a :class:`WalkNetwork` from node and edge arrays (see :func:`network_from_graph`).

    ``u``/``v`` index ``node_ids``/``xy``; each edge's LineString runs between them in
    either direction (a two-way street may come twice, once each way: one is kept).
    ``edge_data`` (a graph's ``(a, b, data)`` by node id) gives the streets' names; without
    it the network has none (``edge_name`` is None).
    """
    graph_crs = crs
    target = pyproj.CRS.from_user_input(graph_crs)
    to = working_crs or settings.working_crs
    if target.is_geographic or (working_crs is not None
                                and not target.equals(pyproj.CRS.from_user_input(to))):
        transformer = pyproj.Transformer.from_crs(target, to, always_xy=True)
        xy = np.column_stack(transformer.transform(xy[:, 0], xy[:, 1]))
        geometry = shapely.transform(geometry, lambda c: np.column_stack(
            transformer.transform(c[:, 0], c[:, 1])))
        if extent is not None:
            extent = shapely.transform(extent, lambda c: np.column_stack(
                transformer.transform(c[:, 0], c[:, 1])))
        out_crs = to
    else:
        auth = target.to_authority()
        out_crs = f"{auth[0]}:{auth[1]}" if auth else target.to_wkt()
    u, v, geometry, node_ids, xy, odd_loops = _streets.split_loops(u, v, geometry,
                                                                  node_ids=node_ids, xy=xy)
    if odd_loops:
        log.info("dropped %d loop street(s) shorter than 1 m or not drawn from their node",
                 odd_loops)
    # undirected: drop the reverse twin of each two-way street (and any loop left unsplit)
    keep = u != v
    lo, hi = np.minimum(u, v), np.maximum(u, v)
    lengths = shapely.length(geometry)
    key = lo.astype(np.int64) * len(node_ids) + hi
    # twins share key and (nearly) length; keep one per (key, rounded length)
    twin_key = np.stack([key, np.round(lengths, 1)], axis=1)
    _, first = np.unique(twin_key, axis=0, return_index=True)
    unique = np.zeros(len(u), dtype=bool)
    unique[first] = True
    keep &= unique
    u, v, geometry, lengths = u[keep], v[keep], geometry[keep], lengths[keep]
    geometry = _streets.orient(geometry, xy[u], xy[v])

    u, v, geometry, lengths, node_ids, xy, dropped = _streets.drop_fragments(
        u, v, geometry, lengths, node_ids=node_ids, xy=xy, min_component_m=min_component_m
    )
    if dropped:
        log.info("dropped %d edges in street fragments under %.0f m", dropped, min_component_m)
    if extent is None:
        extent = shapely.buffer(
            shapely.concave_hull(shapely.multipoints(shapely.get_coordinates(geometry)),
                                 ratio=EXTENT_HULL_RATIO),
            EXTENT_MARGIN_M,
        )
    net = WalkNetwork(
        crs=out_crs,
        node_ids=node_ids,
        node_xy=xy,
        edge_u=u,
        edge_v=v,
        edge_length=lengths,
        edge_geometry=geometry,
        extent=extent,
        edge_name=(_names.edge_names(edge_data, node_ids, u, v) if edge_data is not None
                   else None),
    )
    log.info("walk network: %d nodes, %d edges, %.0f km", net.n_nodes, net.n_edges,
             lengths.sum() / 1000)
    return net


def _osm_bounds(path: Path) -> shapely.Geometry | None:
    """The ``<bounds>`` box of an OSM XML file, if it declares one (in EPSG:4326)."""
    try:
        for _, element in ET.iterparse(path, events=("start",)):
            if element.tag == "bounds":
                a = element.attrib
                return shapely.box(float(a["minlon"]), float(a["minlat"]),
                                   float(a["maxlon"]), float(a["maxlat"]))
            if element.tag in ("node", "way"):
                return None
    except (ET.ParseError, KeyError, ValueError):
        return None
    return None


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:24]


def _cache_path(path: Path, working_crs: str, *how: object) -> Path:
    crs = re.sub(r"[^A-Za-z0-9]+", "", working_crs)[:40]
    key = f"{_file_digest(path)}-{crs}-v{_CACHE_VERSION}"
    if how:  # read with pyosmium: which ways, which area
        key = f"{key}-{_cache.key_of(*how)[:16]}"
    if crs != working_crs.replace(":", ""):  # not a plain code: keep the key unique
        key = f"{key}-{_cache.key_of(working_crs)[:12]}"
    return _cache.path_for("networks", key)


def content_key(net: WalkNetwork) -> str:
    """A digest of what the network is: CRS, nodes, edges, their geometry and the extent.

    Results computed on a network are cached under this key, so they are reused only on the
    very same streets (an OSM query answered differently later gets a new key).
    """
    extent = b"" if net.extent is None else shapely.to_wkb(net.extent)
    return "net-" + _cache.key_of(net.crs, net.node_ids, net.node_xy, net.edge_u, net.edge_v,
                                  net.edge_length, _cache.geometry_digest(net.edge_geometry),
                                  extent)


def _read_cache(cache: Path) -> WalkNetwork | None:
    net = _cache.load(cache)
    return net if isinstance(net, WalkNetwork) else None  # its source set by _write_cache


def _write_cache(cache: Path, net: WalkNetwork) -> WalkNetwork:
    net.source = content_key(net)
    _cache.save(cache, net)
    return net


def _graph_from_osm_file(path: Path) -> nx.MultiDiGraph:
    import osmnx as ox

    try:
        return ox.graph_from_xml(path, bidirectional=True, simplify=True, retain_all=True)
    except ET.ParseError as exc:
        msg = f"network {path}: malformed OSM XML ({exc})"
        raise InputFileError(msg) from exc
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        msg = f"network {path}: cannot build a street graph ({first})"
        raise NetworkError(msg) from exc


def _study_area(spec: NetworkSpec, units_area: shapely.Geometry | None,
                working_crs: str) -> shapely.Geometry | None:
    if spec.area is None and spec.area_bbox is None:
        return None
    from coverage15.network.pbf import study_area

    return study_area(spec, units_area, working_crs)


def _network_from_osm_ways(path: Path, spec: NetworkSpec, area: shapely.Geometry | None,
                           crs: str, say: Callable[[str], None]) -> WalkNetwork:
    """A network read with pyosmium (PBF, or OSM XML with the walk filter or a clip area)."""
    from coverage15.network import pbf

    ways = spec.ways if spec.source == "pbf" or spec.ways == "walk" else "every"
    segments = pbf.read_osm_ways(path, ways=ways, area=area, say=say)
    say(f"network: simplifying {len(segments.seg_a):,} segments")
    node_ids, xy, u, v, geometry = pbf.simplify(segments)
    extent = _osm_bounds(path) if spec.source == "osm_file" else None
    if extent is not None and area is not None:
        extent = shapely.intersection(extent, area)
    return network_from_arrays(node_ids, xy, u, v, geometry, crs="EPSG:4326", extent=extent,
                               working_crs=crs)


def build_walk_network(
    spec: NetworkSpec | str | os.PathLike[str],
    *,
    working_crs: str | None = None,
    log_step: Callable[[str], None] | None = None,
    area: shapely.Geometry | None = None,
) -> WalkNetwork:
    """Build (or load from cache) the walking network a run config names.

    Parameters
    ----------
    spec
        ``osm_file`` (OSM XML: every street in it is walkable, or with ``ways = "walk"`` the
        walkable ways), ``pbf`` (an ``.osm.pbf`` extract, read with pyosmium), ``graphml``
        (osmnx GraphML), or online ``place``/``polygon``/``bbox`` queries through osmnx
        (with its HTTP cache); or the path of an OSM XML, PBF or GraphML file (by its
        suffix). A file is clipped to the spec's ``area``/``area_bbox`` (plus its margin).
    working_crs
        Metric CRS to project to (a run's ``[analysis] working_crs``); default
        :data:`settings.working_crs`.
    log_step
        Called with a short message before slow steps (for progress display).
    area
        The union of the unit layer in EPSG:4326, for ``[network] area = "units"``.

    Returns
    -------
    WalkNetwork
        Projected to ``working_crs``.
    """
    if not isinstance(spec, NetworkSpec):
        path = Path(spec)
        suffix = path.suffix.lower()
        source = ("graphml" if suffix == ".graphml" else "pbf" if suffix == ".pbf"
                  else "osm_file")
        spec = NetworkSpec(source=source, path=path)
    say = log_step or log.info
    crs = working_crs or settings.working_crs
    if spec.source in ("osm_file", "pbf", "graphml"):
        assert spec.path is not None
        path = spec.path
        if path.is_dir() or not path.exists():
            what = "is a directory" if path.is_dir() else "file not found"
            msg = f"network {path}: {what}; check [network] path (and COVERAGE15_DATA)"
            raise InputFileError(msg)
        clip = _study_area(spec, area, crs) if spec.source != "graphml" else None
        osmium_read = spec.source == "pbf" or (spec.source == "osm_file"
                                               and (spec.ways == "walk" or clip is not None))
        extra = (spec.ways, b"" if clip is None else shapely.to_wkb(clip)) if osmium_read else ()
        cache = _cache_path(path, crs, *extra)
        cached = _read_cache(cache)
        if cached is not None:
            say(f"network: cached graph of {path.name}")
            return cached
        say(f"network: reading {path.name}")
        if spec.source == "graphml":
            import osmnx as ox

            graph = ox.load_graphml(path)
            extent = None
        elif osmium_read:
            return _write_cache(cache, _network_from_osm_ways(path, spec, clip, crs, say))
        else:
            graph = _graph_from_osm_file(path)
            extent = _osm_bounds(path)
        return _write_cache(cache, network_from_graph(graph, extent=extent, working_crs=crs))
    from coverage15.inputs import osm

    query = {"source": spec.source, "place": spec.place, "bbox": spec.bbox,
             "polygon": _file_digest(spec.path) if spec.path else None,
             "network_type": spec.network_type, "crs": crs,
             **({"ways": "walk"} if spec.ways == "walk" else {}),
             "version": _CACHE_VERSION}
    cache = osm.cache_path("network", query, ".pickle")
    cached = _read_cache(cache)
    if cached is not None:
        say(f"network: cached OpenStreetMap {spec.source} query")
        return cached
    if not settings.online:
        msg = (f"network: the OpenStreetMap {spec.source} query is not cached; run "
               "`coverage15 fetch CONFIG` once with internet access")
        raise NetworkError(msg)
    say(f"network: querying OpenStreetMap ({spec.source})")
    try:
        graph, boundary = _online_graph(spec)
    except NetworkError:
        raise
    except Exception as exc:  # osmnx raises HTTP, geocoding and empty-result errors
        msg = f"network: OpenStreetMap {spec.source} query failed ({exc})"
        raise NetworkError(msg) from exc
    return _write_cache(cache, network_from_graph(graph, extent=boundary, working_crs=crs))


def snap_points(
    net: WalkNetwork, points: gpd.GeoSeries | gpd.GeoDataFrame, *, snap_max_m: float
) -> Snap:
    """Snap points to their nearest edge (anywhere along it, not only at nodes).

    Parameters
    ----------
    net
        The network.
    points
        Point geometries in any CRS (reprojected to the network's).
    snap_max_m
        Points farther than this from every edge are not snapped (``edge == -1``).

    Returns
    -------
    Snap
        Edge, position along it from its ``u`` end, and snap distance, per point.
    """
    geoms = points.geometry.to_crs(net.crs).to_numpy()
    n = len(geoms)
    edge = np.full(n, -1, dtype=np.int64)
    offset = np.full(n, np.nan)
    dist = np.full(n, np.nan)
    if n == 0:
        return Snap(edge, offset, dist)
    valid = ~(shapely.is_empty(geoms) | shapely.is_missing(geoms))
    idx = np.flatnonzero(valid)
    # for many points, first a vectorised search among the street segments near each point
    # (exact within about 100 m of a street); the STRtree answers the rest
    grid = segment_grid(net, net.edge_geometry, len(idx))
    if grid is not None:
        g_edge, g_off, g_dist, sure = grid.nearest(shapely.get_coordinates(geoms[idx]))
        near = sure & (g_dist <= snap_max_m)
        hit = idx[near]
        edge[hit] = g_edge[near]
        dist[hit] = g_dist[near]
        offset[hit] = np.clip(g_off[near], 0.0, net.edge_length[g_edge[near]])
        idx = idx[~sure]
        if len(idx) == 0:
            return Snap(edge, offset, dist)
    # query in Z-order: consecutive searches walk the same branches of the tree (3x faster
    # on a million edges than in file order); the answers do not depend on the order
    idx = idx[z_order(shapely.get_coordinates(geoms[idx]))]
    (src, tgt), d = net.tree.query_nearest(
        geoms[idx], max_distance=snap_max_m, return_distance=True, all_matches=False
    )
    # ties (all_matches=False still returns one per input); be safe and keep the first
    _, first = np.unique(src, return_index=True)
    src, tgt, d = src[first], tgt[first], d[first]
    hit = idx[src]
    edge[hit] = tgt
    dist[hit] = d
    offset[hit] = shapely.line_locate_point(net.edge_geometry[tgt], geoms[hit])
    return Snap(edge, offset, dist)

