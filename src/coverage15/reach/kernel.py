"""The one reach kernel: snap → network distances → reached stretches → polygons.

Every caller that turns facilities into what they reach goes through :func:`layer_reach`:
the analysis (:func:`coverage15.analysis.analyse`, in this process or per tile through
:mod:`coverage15.scale.partition`), the public :func:`~.service_areas.service_areas`, and the
site candidates of :mod:`coverage15.planning` (without polygons). So a facility's
``snap_m``, ``on_network``, ``reach_m`` and polygon mean the same everywhere.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import shapely

from coverage15._types import FloatArray, IntArray
from coverage15.inputs.config import AnalysisSpec
from coverage15.network.graph import Snap, WalkNetwork, snap_points
from coverage15.reach import distances
from coverage15.reach._profile_areas import profile_limits, profile_unions, within
from coverage15.reach.service_areas import reached_intervals, service_area_polygons

if TYPE_CHECKING:
    from coverage15.reach.targets import Rule

__all__ = ["LayerAreas", "layer_reach", "pairs_within", "reach_analysis", "service_areas"]


@dataclass
class LayerAreas:
    """What one layer's facilities reach, indexed like the layer's points.

    Attributes
    ----------
    snap_m : numpy.ndarray
        Snap distance of each facility (NaN: not on the network).
    on_network : numpy.ndarray
        Whether the facility reaches the network within the walking limit.
    polygons : numpy.ndarray
        Service-area polygon per facility (empty when off the network or when polygons were
        not asked for), in the network's CRS.
    reached_m : numpy.ndarray
        Street metres within the limit per facility.
    pairs : tuple of numpy.ndarray
        ``(facility, demand, dist_m)`` for every facility–demand pair within
        ``analysis.reach_limit_m`` (the largest limit of the run's walking profiles and rules;
        ``limit_m`` when it has none), empty without demand.
    profile_unions : dict
        Walking profile id → the union of the layer's service areas at that profile's
        limit, for every profile other than the verdict's (only when asked for; see
        :mod:`._profile_areas`), in the network's CRS.
    """

    snap_m: FloatArray
    on_network: npt.NDArray[np.bool_]
    polygons: npt.NDArray[np.object_]
    reached_m: FloatArray
    pairs: tuple[IntArray, IntArray, FloatArray]
    profile_unions: dict[str, shapely.Geometry] = field(default_factory=dict)


def layer_reach(
    net: WalkNetwork,
    facilities: Any,
    analysis: AnalysisSpec,
    *,
    demand_snap: Snap | None = None,
    polygons: bool = True,
    profile_areas: bool = False,
    threads: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> LayerAreas:
    """Snap, distances, reached streets, polygons and demand pairs of one layer.

    Parameters
    ----------
    net
        The network.
    facilities
        Points (GeoSeries or GeoDataFrame, any CRS).
    analysis
        The walking limit (``analysis.limit_m``), band width, snap limit and access leg.
    demand_snap
        Demand points snapped to ``net``: their pairs within the limit are returned.
    polygons
        Build the service-area polygons (the expensive part); without them ``polygons`` are
        empty and ``reached_m`` still counts the street metres reached.
    profile_areas
        Also build, with ``polygons``, the layer's union at every walking profile other
        than the verdict's (``profile_unions``), from the same search.
    threads
        Worker threads for the polygons (default: the usable CPUs, at most 4).
    progress
        Called with the number of facilities whose distances are done, as they finish.

    Returns
    -------
    LayerAreas
    """
    limit = analysis.limit_m
    snap = snap_points(net, facilities, snap_max_m=analysis.snap_max_m)
    # one search to the largest limit any walking profile or rule needs (the demand pairs);
    # streets and polygons are those within the run's own limit
    others = profile_limits(analysis) if polygons and profile_areas else {}
    reach = distances.network_reach(net, snap, limit_m=max([analysis.reach_limit_m,
                                                            *others.values()]),
                                    access_leg=analysis.access_leg, progress=progress)
    intervals = reached_intervals(net, within(reach, limit))
    n = len(snap)
    if polygons:
        shapes = service_area_polygons(net, intervals, n_groups=n, buffer_m=analysis.buffer_m,
                                       threads=threads)
    else:
        shapes = np.array([shapely.Polygon()] * n, dtype=object)
    reached = np.bincount(intervals.group, weights=intervals.end_m - intervals.start_m,
                          minlength=n).astype(float)
    if demand_snap is not None:
        pairs = distances.point_distances(net, reach, demand_snap,
                                          access_leg=analysis.access_leg)
    else:
        empty = np.array([], dtype=np.int64)
        pairs = (empty, empty, np.array([]))
    unions = profile_unions(net, reach, analysis, threads=threads) if others else {}
    return LayerAreas(snap_m=snap.snap_m, on_network=snap.snapped & (reach.access_m <= limit),
                      polygons=shapes, reached_m=reached, pairs=pairs, profile_unions=unions)


def service_areas(
    net: WalkNetwork,
    facilities: gpd.GeoDataFrame | gpd.GeoSeries,
    analysis: AnalysisSpec | None = None,
    *,
    minutes: float | None = None,
    walk_speed_kmh: float | None = None,
    buffer_m: float | None = None,
    snap_max_m: float | None = None,
    access_leg: bool | None = None,
) -> gpd.GeoDataFrame:
    """Walking service-area polygons of facilities, one per facility.

    Parameters
    ----------
    net
        The network.
    facilities
        Point facilities in any CRS.
    analysis
        The walking limit and geometry options (default: :class:`AnalysisSpec`'s, 15
        minutes at 4 km/h = 1,000 m).
    minutes, walk_speed_kmh, buffer_m, snap_max_m, access_leg
        Replace that field of ``analysis``.

    Returns
    -------
    geopandas.GeoDataFrame
        Indexed like ``facilities``: ``snap_m``, ``on_network``, ``reach_m`` (street length
        reached) and the polygon, in the network's CRS; the same columns a run's facilities
        carry.

    Examples
    --------
    >>> from coverage15 import AnalysisSpec
    >>> AnalysisSpec(minutes=15, walk_speed_kmh=4).limit_m
    1000.0
    """
    overrides: dict[str, Any] = {name: value for name, value in (
        ("minutes", minutes), ("walk_speed_kmh", walk_speed_kmh), ("buffer_m", buffer_m),
        ("snap_max_m", snap_max_m), ("access_leg", access_leg)) if value is not None}
    spec = dataclasses.replace(analysis or AnalysisSpec(), **overrides)
    areas = layer_reach(net, facilities, spec)
    return gpd.GeoDataFrame(
        {"snap_m": areas.snap_m, "on_network": areas.on_network, "reach_m": areas.reached_m},
        geometry=areas.polygons, crs=net.crs, index=facilities.index)


def reach_analysis(a: AnalysisSpec, rules: Sequence[Rule]) -> AnalysisSpec:
    """``a`` with the pairs' limit: the largest any walking profile or rule needs."""
    return dataclasses.replace(a, pairs_limit_m=max(
        [a.limit_m, *profile_limits(a).values(),  # (the map's areas at each profile)
         *(r.max_limit_m(a.walk_profiles, a.minutes) for r in rules)]))


def pairs_within(pairs: tuple[Any, Any, Any], limit_m: float) -> tuple[Any, Any, Any]:
    """The facility–demand pairs within ``limit_m``."""
    source, target, dist = pairs
    keep = np.asarray(dist) <= limit_m
    if keep.all():
        return pairs
    return source[keep], target[keep], dist[keep]
