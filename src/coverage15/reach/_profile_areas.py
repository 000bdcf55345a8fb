"""A layer's service area at each other walking profile, for the map's profile switch.

The facilities' own polygons are drawn at the verdict profile (:mod:`.kernel`). For every
other profile a layer gets one union polygon: the streets its facilities reach within the
run's ``minutes`` at that profile's speed, buffered by the band width, built from the same
network search (no second search: the search already goes at least that far). No hull and no
hole filling, as for every service area.

The union is built in square cells of :data:`CELL_M` (each cell's reached stretches are one
group of :func:`~.service_areas.service_area_polygons`, on worker threads), then the cells'
polygons are united: one group for a whole city would be one long GEOS pass on one thread.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import shapely

from coverage15.inputs.specs import AnalysisSpec
from coverage15.network.graph import WalkNetwork
from coverage15.reach.distances import Reach
from coverage15.reach.service_areas import (
    Intervals,
    reached_intervals,
    service_area_polygons,
    union_areas,
)

__all__ = ["CELL_M", "QUAD_SEGS", "profile_limits", "profile_unions", "within"]

CELL_M = 2_000.0
"""Side of the square cells a profile's union is built in, in metres."""
QUAD_SEGS = 2
"""Segments per quarter circle of the bands' rounded ends: display polygons, within
``buffer_m * (1 - cos(pi / 8))`` (4 m for a 50 m band) of the facilities' own (4 segments),
below the map's 10 m simplification, and about a third cheaper to unite."""


def profile_limits(a: AnalysisSpec) -> dict[str, float]:
    """Per walking profile other than the verdict's: the metres walked in ``a.minutes``.

    The verdict profile's is ``a.limit_m`` (its facilities' own polygons). Empty with one
    profile.
    """
    return {p.id: p.limit_m(a.minutes) for p in a.walk_profiles[1:]}


def within(reach: Reach, limit_m: float) -> Reach:
    """The part of ``reach`` within a smaller ``limit_m``."""
    if limit_m >= reach.limit_m:
        return reach
    keep = reach.dist_m <= limit_m
    return dataclasses.replace(reach, limit_m=limit_m, source=reach.source[keep],
                               node=reach.node[keep], dist_m=reach.dist_m[keep])


def profile_unions(net: WalkNetwork, reach: Reach, a: AnalysisSpec, *,
                   threads: int | None = None) -> dict[str, shapely.Geometry]:
    """Profile id → the union of the layer's service areas at that profile's limit.

    Parameters
    ----------
    net
        The network.
    reach
        The layer's network search, to at least every profile's limit.
    a
        The analysis: its profiles, ``minutes`` and ``buffer_m``.
    threads
        Worker threads for the polygons.

    Returns
    -------
    dict
        One (Multi)Polygon per profile other than the verdict's, in the network's CRS (empty
        when nothing is reached).
    """
    limits = profile_limits(a)
    if not limits:
        return {}
    nearest = _nearest(net, within(reach, max(limits.values())))
    # every profile's cells are groups of one polygon build: a chain the profiles share (a
    # street reached whole at each) is buffered once, and the work spreads over the threads
    parts, spans, n_groups = [], {}, 0
    for pid, limit in limits.items():
        cells = _cell_groups(net, reached_intervals(
            net, within(nearest, limit), group=np.zeros(reach.n_sources, dtype=np.int64)))
        parts.append(dataclasses.replace(cells, group=cells.group + n_groups))
        spans[pid] = (n_groups, n_groups + int(cells.group.max(initial=-1)) + 1)
        n_groups = spans[pid][1]
    every = Intervals(*(np.concatenate([getattr(p, f) for p in parts])
                        for f in ("group", "edge", "start_m", "end_m")))
    polygons = service_area_polygons(net, every, n_groups=n_groups, buffer_m=a.buffer_m,
                                     quad_segs=QUAD_SEGS, threads=threads)
    return {pid: union_areas(polygons[lo:hi]) for pid, (lo, hi) in spans.items()}


def _nearest(net: WalkNetwork, reach: Reach) -> Reach:
    """``reach`` as one multi-source search: each node once, at its nearest source's distance.

    A union needs no more: a stretch reached from a farther source is reached from the
    nearest one too. (The pairs' ``source`` becomes 0; the sources' own edges are kept.)
    """
    if len(reach.node) == 0:
        return reach
    nearest = np.full(net.n_nodes, np.inf)
    np.minimum.at(nearest, reach.node, reach.dist_m)
    node = np.flatnonzero(np.isfinite(nearest))
    return dataclasses.replace(reach, source=np.zeros(len(node), dtype=np.int64), node=node,
                               dist_m=nearest[node])


def _cell_groups(net: WalkNetwork, intervals: Intervals) -> Intervals:
    """The stretches regrouped by the square cell of their edge's ``u`` node."""
    if len(intervals.edge) == 0:
        return intervals
    xy = net.node_xy[net.edge_u[intervals.edge]]
    cell = np.floor((xy - xy.min(axis=0)) / CELL_M).astype(np.int64)
    _, group = np.unique(cell[:, 0] * (int(cell[:, 1].max()) + 1) + cell[:, 1],
                         return_inverse=True)
    return dataclasses.replace(intervals, group=group.ravel().astype(np.int64))
