"""Where the distance work runs: in this process, or split into partitions on Dask.

:func:`compute_layers` is the one entry point the analysis uses. With one partition it runs
the kernel (:func:`~coverage15.reach.kernel.layer_reach`) on the whole network. With more,
the study area is cut into square tiles over the network's bounds. A tile's task carries a
description of its tile, not a network: the network's tile store (:mod:`.tiles`, written once
per network), the tile's box grown by a halo of ``limit + 3 × snap_max`` (the worker cuts that
sub-network itself), the facilities that could reach into the tile and its own demand points.
A facility's service area (and its share of the layer's union) is computed in the tile holding
the facility, the facilities of the halo give only their distances to the tile's demand, and
a demand point's distances are computed in the tile holding the point, so every answer is
computed once and exactly as a single run would (every path within the walking limit stays
inside the halo).

Tasks run on a ``dask.distributed`` cluster (:mod:`.cluster`): a new ``LocalCluster`` for
``scheduler="local"`` or an existing one at ``tcp://host:port``. A failed partition is
resubmitted up to ``retries`` times and reported; it is never dropped silently.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, partial
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import shapely

from coverage15 import settings
from coverage15._errors import Coverage15Error
from coverage15._types import FloatArray, IntArray
from coverage15.inputs.config import AnalysisSpec
from coverage15.network import _cache
from coverage15.network.graph import Snap, WalkNetwork, snap_points
from coverage15.reach._profile_areas import profile_limits
from coverage15.reach.kernel import LayerAreas, layer_reach
from coverage15.reach.service_areas import union_areas
from coverage15.scale import pieces
from coverage15.scale.cluster import DaskMissingError, default_workers, open_client
from coverage15.scale.tiles import TileStore, load_tile, store_for, subnetwork

__all__ = [
    "DaskMissingError",
    "LayerAreas",
    "PartitionError",
    "RunLog",
    "compute_layers",
    "subnetwork",
    "tile_partitions",
]

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
T = TypeVar("T")
PARTITIONS_PER_WORKER = 4
"""Tiles per worker when ``partitions`` is not given: enough that a worker whose tiles are
denser than others' does not hold up the run, few enough that halos stay a small overhead."""


class PartitionError(RuntimeError, Coverage15Error):
    """A partition failed on every attempt."""


@dataclass
class RunLog:
    """What happened to the partitions of a run."""

    partitions: int = 1
    retried: dict[int, list[str]] = field(default_factory=dict)
    scheduler: str = "in process"
    cached: list[str] = field(default_factory=list)
    unions: dict[str, shapely.Geometry] = field(default_factory=dict)
    """Per layer, the union of its service areas when the tiles computed it (partitioned runs
    unite each tile's on its worker, then the tiles' unions here); empty in process."""
    measured: dict[str, dict[str, FloatArray]] = field(default_factory=dict)
    """Per polygon set asked for (``measure``), per measure (``EXTENT_M2``, ``STREET_M`` of
    :mod:`coverage15.reach.coverage`, a layer key): each polygon's sum over the tiles'
    pieces (:mod:`.pieces`); empty in process."""


@dataclass(frozen=True)
class _Task:
    """The inputs of one partition's work: its tile, not its network (the worker cuts that).

    ``store`` is the network on disk (:mod:`coverage15.scale.tiles`) and ``bounds`` the tile's
    box with its halo; the rest are the tile's points, so a task is a few kilobytes.
    """

    index: int
    store: TileStore
    bounds: tuple[float, float, float, float]
    facility_xy: dict[str, FloatArray]
    facility_ids: dict[str, IntArray]
    core_facility: dict[str, npt.NDArray[np.bool_]]
    demand_xy: FloatArray | None
    demand_ids: IntArray
    analysis: AnalysisSpec


def tile_partitions(bounds: tuple[float, float, float, float], n: int,
                    ) -> tuple[FloatArray, float, tuple[int, int]]:
    """Square tiles covering ``bounds`` (minx, miny, maxx, maxy), at least ``n`` of them.

    Returns
    -------
    tuple
        ``(origin, size, (cols, rows))``: tile ``(i, j)`` spans ``origin + (i, j) * size``.
    """
    lo = np.array(bounds[:2], dtype=float)
    span = np.maximum(np.array(bounds[2:], dtype=float) - lo, 1.0)
    size = float(math.sqrt(span[0] * span[1] / max(n, 1)))
    cols, rows = max(1, math.ceil(span[0] / size)), max(1, math.ceil(span[1] / size))
    while cols * rows < n:
        size *= 0.95
        cols, rows = math.ceil(span[0] / size), math.ceil(span[1] / size)
    return lo, size, (cols, rows)


def _layer_kernel(net: WalkNetwork, facilities: Any, demand_snap: Any,
                  analysis: AnalysisSpec, tick: Callable[[int], None] | None = None,
                  *, threads: int | None = None, polygons: bool = True) -> LayerAreas:
    """The reach kernel for one layer on one network (a seam for the tests)."""
    return layer_reach(net, facilities, analysis, demand_snap=demand_snap, threads=threads,
                       progress=tick, polygons=polygons, profile_areas=polygons)


def _points(xy: FloatArray, crs: str) -> Any:
    import geopandas as gpd

    return gpd.GeoSeries(shapely.points(xy), crs=crs)


_TileResult = tuple[dict[str, LayerAreas], FloatArray, npt.NDArray[np.bool_],
                    dict[str, shapely.Geometry]]


def _run_task(task: _Task) -> _TileResult:
    """One partition: its core facilities' areas and its core demand's distances.

    Runs on a worker: the tile's network is cut there from the stored network.
    """
    net = load_tile(task.store, shapely.box(*task.bounds))
    if net.n_edges == 0:  # no street near the tile: its points reach nothing
        return _unreached(task)
    demand_snap = None
    if task.demand_xy is not None:
        demand_snap = snap_points(net, _points(task.demand_xy, net.crs),
                                  snap_max_m=task.analysis.snap_max_m)
    out = {}
    for key, xy in task.facility_xy.items():
        core = task.core_facility[key]
        # one thread per task: the cluster already runs one task per core. Areas only for
        # the tile's own facilities; the others (in the halo) only for the distances to the
        # tile's demand, without polygons (their areas are done in their own tiles)
        mine = np.flatnonzero(core)
        result = (_layer_kernel(net, _points(xy[mine], net.crs), demand_snap, task.analysis,
                                threads=1) if len(mine) else _nothing())
        others = np.flatnonzero(~core)
        if demand_snap is None or len(others) == 0:
            out[key] = _spread(result, mine, None, None, len(xy))
            continue
        halo = _layer_kernel(net, _points(xy[others], net.crs), demand_snap, task.analysis,
                             threads=1, polygons=False)
        out[key] = _spread(result, mine, halo, others, len(xy))
    # the union of the tile's own areas, here on the worker: the main process only unites
    # the tiles' unions, which overlap along the tiles' borders only
    unions = {key: union_areas(areas.polygons) for key, areas in out.items()}
    if demand_snap is None:
        return out, np.array([]), np.array([], dtype=bool), unions
    return out, demand_snap.snap_m, demand_snap.snapped, unions


def _nothing() -> LayerAreas:
    empty = np.array([], dtype=np.int64)
    return LayerAreas(snap_m=np.array([]), on_network=np.array([], dtype=bool),
                      polygons=np.array([], dtype=object), reached_m=np.array([]),
                      pairs=(empty, empty, np.array([])))


def _spread(core: LayerAreas, mine: IntArray, halo: LayerAreas | None,
            others: IntArray | None, n: int) -> LayerAreas:
    """The tile's core and halo results as one, indexed like the task's facilities."""
    out = LayerAreas(snap_m=np.full(n, np.nan), on_network=np.zeros(n, dtype=bool),
                     polygons=np.array([shapely.Polygon()] * n, dtype=object),
                     reached_m=np.zeros(n), pairs=core.pairs,
                     profile_unions=core.profile_unions)
    out.snap_m[mine] = core.snap_m
    out.on_network[mine] = core.on_network
    out.polygons[mine] = core.polygons
    out.reached_m[mine] = core.reached_m
    source, target, dist = core.pairs
    source = mine[source]
    if halo is not None and others is not None:
        s, t, d = halo.pairs
        source = np.concatenate([source, others[s]])
        target = np.concatenate([target, t])
        dist = np.concatenate([dist, d])
    out.pairs = (source, target, dist)
    return out


def _unreached(task: _Task) -> _TileResult:
    empty = np.array([], dtype=np.int64)
    out = {key: LayerAreas(snap_m=np.full(len(xy), np.nan), on_network=np.zeros(len(xy), bool),
                           polygons=np.array([shapely.Polygon()] * len(xy), dtype=object),
                           reached_m=np.zeros(len(xy)), pairs=(empty, empty, np.array([])))
           for key, xy in task.facility_xy.items()}
    n = 0 if task.demand_xy is None else len(task.demand_xy)
    nothing = {key: shapely.Polygon() for key in out}
    if task.demand_xy is None:
        return out, np.array([]), np.array([], dtype=bool), nothing
    return out, np.full(n, np.nan), np.zeros(n, dtype=bool), nothing


def _make_tasks(net: WalkNetwork, store: TileStore, facility_xy: dict[str, FloatArray],
                demand_xy: FloatArray | None, *, analysis: AnalysisSpec, n: int,
                ) -> tuple[list[_Task], tuple[FloatArray, float, tuple[int, int]]]:
    # node bounds: cheaper than the edges' (any tiling gives the same answer)
    (x0, y0), (x1, y1) = net.node_xy.min(axis=0), net.node_xy.max(axis=0)
    bounds = (float(x0), float(y0), float(x1), float(y1))
    origin, size, (cols, rows) = tile_partitions(bounds, n)

    def tile_of(xy: FloatArray) -> npt.NDArray[np.int64]:
        # points beyond the network's bounds go to the nearest edge tile
        ij = np.floor((xy - origin) / size).astype(np.int64).reshape(-1, 2)
        return np.column_stack([np.clip(ij[:, 0], 0, cols - 1), np.clip(ij[:, 1], 0, rows - 1)])

    fac_tile = {k: tile_of(xy) for k, xy in facility_xy.items()}
    dem_tile = (tile_of(demand_xy) if demand_xy is not None
                else np.zeros((0, 2), dtype=np.int64))
    tiles = np.unique(np.concatenate([*fac_tile.values(), dem_tile]), axis=0)
    limit, snap = analysis.reach_limit_m, analysis.snap_max_m
    tasks = []
    for index, tile in enumerate(tiles):
        x0, y0 = origin + tile * size
        core = shapely.box(x0, y0, x0 + size, y0 + size)
        # a tile's demand lies in its core or (edge tiles) beyond the network's bounds, where
        # only points within `snap` of a street matter; every path within the limit from
        # such a point, and every facility that can reach it, lies inside these margins
        net_box = core.buffer(limit + 3 * snap + 1.0, join_style="mitre")
        fac_box = core.buffer(limit + 2 * snap + 1.0, join_style="mitre")
        xy_k, ids_k, core_k = {}, {}, {}
        for key, xy in facility_xy.items():
            near = shapely.contains_xy(fac_box, xy[:, 0], xy[:, 1])
            xy_k[key] = xy[near]
            ids_k[key] = np.flatnonzero(near)
            core_k[key] = np.all(fac_tile[key][near] == tile, axis=1)
        if demand_xy is not None:
            mine = np.flatnonzero(np.all(dem_tile == tile, axis=1))
            d_xy = demand_xy[mine]
        else:
            mine, d_xy = np.array([], dtype=np.int64), None
        bx0, by0, bx1, by1 = (float(b) for b in net_box.bounds)
        tasks.append(_Task(index, store, (bx0, by0, bx1, by1), xy_k, ids_k, core_k, d_xy, mine,
                           analysis))
    return tasks, (origin, size, (cols, rows))


def compute_layers(
    net: WalkNetwork,
    facility_points: dict[str, Any],
    demand_points: Any | None,
    analysis: AnalysisSpec,
    *,
    partitions: int | None = 1,
    scheduler: str | Any | None = None,
    workers: int | None = None,
    retries: int = 2,
    progress: Progress | None = None,
    measure: Mapping[str, npt.NDArray[np.object_]] | None = None,
    streets: Sequence[str] = (),
) -> tuple[dict[str, LayerAreas], FloatArray, npt.NDArray[np.bool_], RunLog]:
    """Run the distance work for every layer, here or on a Dask cluster.

    Parameters
    ----------
    net
        The network.
    facility_points
        Layer key → point GeoSeries/GeoDataFrame (any CRS).
    demand_points
        Demand points or None.
    analysis
        Walking budget and geometry options.
    partitions
        Number of tiles; 1 runs in this process without Dask; None (with a scheduler):
        :data:`PARTITIONS_PER_WORKER` per worker.
    scheduler
        ``"local"`` (a new ``LocalCluster`` of ``workers`` processes), a ``tcp://host:port``
        address, or a ``dask.distributed.Client``. None runs in this process.
    workers
        Worker processes of a ``"local"`` cluster (default: the usable CPUs).
    retries
        Times a failed partition is resubmitted before the run fails.
    progress
        ``progress(step, done, total)`` callback.
    measure
        Polygon sets (name → polygons in the network's CRS, e.g. the 街镇) whose areas inside
        the network's extent and inside each layer's union of service areas the tiles
        measure (:mod:`.pieces`) when the run is partitioned: the coverage step's overlays,
        done on the workers (``RunLog.measured``). Ignored in process.
    streets
        The sets of ``measure`` whose street length inside the extent is wanted too.

    Returns
    -------
    tuple
        Per-layer :class:`LayerAreas`, demand snap distances, demand on-network flags, and a
        :class:`RunLog`.
    """
    if scheduler is None or (partitions is not None and partitions <= 1):
        return _in_process(net, facility_points, demand_points, analysis, progress)
    own_client = isinstance(scheduler, str)
    client = open_client(scheduler, workers) if isinstance(scheduler, str) else scheduler
    if partitions is None:
        n_workers = len(client.scheduler_info().get("workers", {})) or default_workers()
        partitions = PARTITIONS_PER_WORKER * n_workers
    try:
        return _on_cluster(client, net, facility_points, demand_points, analysis=analysis,
                           partitions=partitions, retries=retries, progress=progress,
                           measure=measure or {}, streets=streets)
    finally:
        if own_client:
            cluster = getattr(client, "cluster", None)
            client.close()
            if cluster is not None:
                cluster.close()


def _on_cluster(client: Any, net: WalkNetwork, facility_points: dict[str, Any],
                demand_points: Any | None, *, analysis: AnalysisSpec, partitions: int,
                retries: int, progress: Progress | None,
                measure: Mapping[str, npt.NDArray[np.object_]] | None = None,
                streets: Sequence[str] = (),
                ) -> tuple[dict[str, LayerAreas], FloatArray, npt.NDArray[np.bool_], RunLog]:
    crs = net.crs
    facility_xy = {k: shapely.get_coordinates(p.geometry.to_crs(crs).to_numpy())
                   for k, p in facility_points.items()}
    demand_xy = (shapely.get_coordinates(demand_points.geometry.to_crs(crs).to_numpy())
                 if demand_points is not None else None)
    store, temporary = store_for(net)
    try:
        tasks, grid = _make_tasks(net, store, facility_xy, demand_xy, analysis=analysis,
                                  n=partitions)
        runlog = RunLog(partitions=len(tasks), scheduler=str(getattr(client, "scheduler", "")))
        results, done = _gather_with_retries(client, tasks, retries, runlog, progress)
        if measure:
            runlog.measured = _measure(client, store, grid, measure, streets=streets,
                                       results=results, done=done, extent=net.extent,
                                       retries=retries, runlog=runlog, progress=progress)
        del done  # the tiles' results on the workers are no longer needed
    finally:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
    runlog.unions = {key: union_areas(np.array([r[3][key] for r in results], dtype=object))
                     for key in facility_xy}
    return (*_stitch(tasks, results, facility_xy, demand_xy), runlog)


def _measure(client: Any, store: TileStore, grid: tuple[FloatArray, float, tuple[int, int]],
             measure: Mapping[str, npt.NDArray[np.object_]], *, streets: Sequence[str],
             results: list[Any], done: list[Any], extent: shapely.Geometry, retries: int,
             runlog: RunLog, progress: Progress | None) -> dict[str, dict[str, FloatArray]]:
    """The coverage overlays of ``measure`` per tile on the workers, summed here."""
    union_bounds = [{key: (None if shapely.is_empty(u) else tuple(shapely.bounds(u)))
                     for key, u in r[3].items()} for r in results]
    boxes = [shapely.bounds(extent), *(b for u in union_bounds for b in u.values() if b)]
    for polygons in measure.values():
        if len(polygons):
            boxes.append(shapely.total_bounds(polygons))
    stack = np.array(boxes, dtype=float).reshape(-1, 4)
    outer = (float(np.nanmin(stack[:, 0])) - 1.0, float(np.nanmin(stack[:, 1])) - 1.0,
             float(np.nanmax(stack[:, 2])) + 1.0, float(np.nanmax(stack[:, 3])) + 1.0)
    origin, size, shape = grid
    made = pieces.piece_tasks(store, pieces.core_boxes(origin, size, shape, outer), measure,
                              streets=streets, union_bounds=union_bounds)
    # the tiles' unions stay on the workers: a piece's task names the results it needs
    first = runlog.partitions
    tasks = [dataclasses.replace(task, index=first + task.index) for task, _ in made]
    # each tile's unions picked out where its result lies: only they travel, not its polygons
    unions = {n: client.submit(_unions_of, done[n], pure=False)
              for n in sorted({n for _, near in made for n in near})}
    args = {t.index: [unions[n] for n in near]
            for t, (_, near) in zip(tasks, made, strict=True)}
    found, _ = _gather_with_retries(client, tasks, retries, runlog, progress, fn=_run_pieces,
                                    args=args, step="area shares")
    return pieces.sum_pieces(found, {name: len(p) for name, p in measure.items()})


def _unions_of(result: _TileResult) -> dict[str, shapely.Geometry]:
    """On a worker: a tile result's unions, per layer."""
    return result[3]


def _run_pieces(task: pieces.PieceTask, *unions: dict[str, shapely.Geometry],
                ) -> pieces.Pieces:
    """On a worker: a piece task, given the neighbouring tiles' unions."""
    return pieces.run_pieces(task, *unions)


def _gather_with_retries(client: Any, tasks: Sequence[Any], retries: int, runlog: RunLog,
                         progress: Progress | None, *, fn: Callable[..., Any] | None = None,
                         args: Mapping[int, list[Any]] | None = None,
                         step: str = "service areas") -> tuple[list[Any], list[Any]]:
    """Run ``fn(task, *args[task.index])`` for every task, resubmitting failures.

    Returns the results in the tasks' order and their finished futures (whose results stay
    on the workers while they are referenced).
    """
    from dask.distributed import as_completed

    run = fn or _run_task  # looked up now: tests replace _run_task
    args = args or {}
    prefix = "c15-part" if fn is None else "c15-cover"
    futures = {client.submit(run, t, *args.get(t.index, []), pure=False,
                             key=f"{prefix}-{t.index}-0"): t for t in tasks}
    attempts = dict.fromkeys(range(len(tasks)), 0)
    results: dict[int, Any] = {}
    finished: dict[int, Any] = {}
    position = {t.index: i for i, t in enumerate(tasks)}
    queue = as_completed(list(futures))
    for future in queue:
        task = futures.pop(future)
        i = position[task.index]
        if future.status == "finished":
            results[i] = future.result()
            finished[i] = future
            if progress is not None:
                progress(step, len(results), len(tasks))
            continue
        error = repr(future.exception())
        runlog.retried.setdefault(task.index, []).append(error)
        attempts[i] += 1
        log.warning("partition %d failed (%s); attempt %d of %d", task.index, error,
                    attempts[i] + 1, retries + 1)
        if attempts[i] > retries:
            msg = (f"partition {task.index} failed {attempts[i]} times; last error: {error}")
            raise PartitionError(msg)
        again = client.submit(run, task, *args.get(task.index, []), pure=False,
                              key=f"{prefix}-{task.index}-{attempts[i]}")
        futures[again] = task
        queue.add(again)
    order = range(len(tasks))
    return [results[i] for i in order], [finished[i] for i in order]


def _stitch(tasks: list[_Task], results: list[Any], facility_xy: dict[str, FloatArray],
            demand_xy: FloatArray | None) -> tuple[dict[str, LayerAreas], FloatArray,
                                                    npt.NDArray[np.bool_]]:
    n_dem = 0 if demand_xy is None else len(demand_xy)
    demand_snap_m = np.full(n_dem, np.nan)
    demand_on = np.zeros(n_dem, dtype=bool)
    out: dict[str, LayerAreas] = {}
    for key, xy in facility_xy.items():
        n = len(xy)
        areas = LayerAreas(snap_m=np.full(n, np.nan), on_network=np.zeros(n, dtype=bool),
                           polygons=np.array([shapely.Polygon()] * n, dtype=object),
                           reached_m=np.zeros(n), pairs=(np.array([], dtype=np.int64),
                                                         np.array([], dtype=np.int64),
                                                         np.array([])))
        src, tgt, dist = [], [], []
        profiles: dict[str, list[shapely.Geometry]] = {}
        for task, (layers, *_) in zip(tasks, results, strict=True):
            part = layers[key]
            for pid, union in part.profile_unions.items():
                profiles.setdefault(pid, []).append(union)
            ids = task.facility_ids[key]
            core = task.core_facility[key]
            areas.snap_m[ids[core]] = part.snap_m[core]
            areas.on_network[ids[core]] = part.on_network[core]
            areas.polygons[ids[core]] = part.polygons[core]
            areas.reached_m[ids[core]] = part.reached_m[core]
            s, t, d = part.pairs
            src.append(ids[s])
            tgt.append(task.demand_ids[t])
            dist.append(d)
        if src:
            source = np.concatenate(src)
            target = np.concatenate(tgt)
            order = np.lexsort((target, source))
            areas.pairs = (source[order], target[order], np.concatenate(dist)[order])
        # each tile's union at every other walking profile, its own facilities' areas
        areas.profile_unions = {pid: union_areas(np.array(parts, dtype=object))
                                for pid, parts in profiles.items()}
        out[key] = areas
    for task, (_, snap_m, snapped, _) in zip(tasks, results, strict=True):
        if len(task.demand_ids):
            demand_snap_m[task.demand_ids] = snap_m
            demand_on[task.demand_ids] = snapped
    return out, demand_snap_m, demand_on


def _cached(kind: str, net: WalkNetwork, parts: Callable[[], tuple[Any, ...]],
            expected: type[T], compute: Callable[[], T]) -> tuple[T, bool]:
    """``compute()``, or its result from an earlier run on the same network and inputs.

    Only for networks that :func:`coverage15.network.graph.build_walk_network` made (their
    ``source`` is a digest of their content) and while ``settings.reuse_results`` and
    ``settings.use_cache`` are on. The key is ``parts()`` (everything else the result depends
    on) and the package's code digest, so a result is never reused across code changes.
    Returns the result and whether it came from the cache.
    """
    if net.source is None or not (settings.reuse_results and settings.use_cache):
        return compute(), False
    path = _cache.path_for(kind, _cache.key_of(net.source, _cache.code_digest(), *parts()))
    hit = _cache.load(path)
    if isinstance(hit, expected):
        return hit, True
    value = compute()
    _cache.save(path, value)
    _cache.prune(keep=path)  # within settings.results_cache_mb, least recently used first
    return value, False


def _points_key(points: Any) -> tuple[str, str]:
    return _cache.geometry_digest(points.geometry.to_numpy()), str(points.crs)


def _layer_key(points: Any, demand_key: Callable[[], tuple[str, str]] | None,
               settings_key: tuple[Any, ...]) -> tuple[Any, ...]:
    return (*_points_key(points), demand_key() if demand_key else None, *settings_key)


def _in_process(net: WalkNetwork, facility_points: dict[str, Any], demand_points: Any | None,
                analysis: AnalysisSpec, progress: Progress | None,
                ) -> tuple[dict[str, LayerAreas], FloatArray, npt.NDArray[np.bool_], RunLog]:
    runlog = RunLog()
    demand_snap = None
    demand_key = None
    if demand_points is not None:
        demand_key = cache(partial(_points_key, demand_points))  # digested once, if at all
        demand_snap, hit = _cached(
            "snaps", net, lambda: (*demand_key(), analysis.snap_max_m), Snap,
            lambda: snap_points(net, demand_points, snap_max_m=analysis.snap_max_m))
        if hit:
            runlog.cached.append("demand snaps")
    total = sum(len(p) for p in facility_points.values())
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress("service areas", done, total)

    out = {}
    finished = 0
    settings_key = (analysis.limit_m, analysis.reach_limit_m, analysis.buffer_m,
                    analysis.snap_max_m, analysis.access_leg,
                    tuple(sorted(profile_limits(analysis).items())))
    for key, points in facility_points.items():
        out[key], hit = _cached(
            "layers", net,
            partial(_layer_key, points, demand_key, settings_key), LayerAreas,
            partial(_layer_kernel, net, points, demand_snap, analysis, tick))
        if hit:
            runlog.cached.append(key)
            log.info("service areas: layer %s reused from the cache", key)
        # the kernel ticks only facilities on the network: count the layer's others too
        finished += len(points)
        tick(finished - done)
    if demand_snap is None:
        return out, np.array([]), np.array([], dtype=bool), runlog
    return out, demand_snap.snap_m, demand_snap.snapped, runlog
