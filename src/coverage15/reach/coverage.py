"""Who and what each service area covers, per demand point and per unit (街镇, district).

Point coverage comes from network distances (:func:`coverage15.reach.distances.point_distances`),
never from polygons; polygons only give the share of a unit's land inside the union of
service areas. Units are classified by how much of them lies inside the network's extent, so
that a unit without streets in the data is reported as "no network", not as uncovered.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Final, Literal

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from coverage15.reach._bands import on_threads

__all__ = [
    "EXTENT_M2",
    "FULL_NETWORK_SHARE",
    "STREET_M",
    "WITHIN",
    "NetworkStatus",
    "assign_units",
    "count_by_unit",
    "coverage_by_unit",
    "demand_coverage",
    "extent_areas",
    "network_status",
]

NetworkStatus = Literal["full", "partial", "none"]
EXTENT_M2: Final = "@extent"
"""In ``measured`` tables (:func:`coverage_by_unit`): a unit's area inside the network's
extent, m² (beside each layer key's area inside the layer's union)."""
STREET_M: Final = "@street_m"
"""In ``measured`` tables: the street length inside a unit's part within the extent, m."""
WITHIN: Final = "@within"
"""In ``measured`` tables: 1 where a unit lies wholly within the network's extent."""


def extent_areas(inside: npt.ArrayLike, area: npt.NDArray[np.float64],
                 within: npt.NDArray[np.bool_]) -> npt.NDArray[np.float64]:
    """Each unit's area inside the extent: its own area where it lies wholly within.

    Elsewhere the measured ``inside``, kept below the unit's area, so that a unit shows
    100 % of its area inside the network exactly when it lies wholly within the extent: in
    one overlay or summed over tiles' pieces (whose last bits differ), the same verdict.
    """
    values = np.asarray(inside, dtype=float)
    below = np.minimum(values, np.nextafter(area, -np.inf))
    return np.where(within, area, np.maximum(below, 0.0))
FULL_NETWORK_SHARE: Final = 0.95
"""A unit counts as inside the network when this share of its area is (boundaries are
simplified by ~60 m, so exact containment is too strict)."""


def assign_units(points: gpd.GeoDataFrame, units: gpd.GeoDataFrame) -> pd.Series:
    """The unit each point lies in.

    Parameters
    ----------
    points
        Points in any CRS.
    units
        Polygons with a ``unit`` column.

    Returns
    -------
    pandas.Series
        Position of the containing unit in ``units`` (``-1`` when in none), indexed like
        ``points``. A point on a shared border goes to the first unit.
    """
    out = pd.Series(-1, index=points.index, dtype="int64")
    if len(points) == 0:
        return out
    pts = points.geometry.to_crs(units.crs).to_numpy()
    tree = shapely.STRtree(units.geometry.to_numpy())
    pt_idx, unit_idx = tree.query(pts, predicate="within")
    order = np.lexsort((unit_idx, pt_idx))
    pt_idx, unit_idx = pt_idx[order], unit_idx[order]
    first = np.ones(len(pt_idx), dtype=bool)
    first[1:] = pt_idx[1:] != pt_idx[:-1]
    values = out.to_numpy().copy()
    values[pt_idx[first]] = unit_idx[first]
    return pd.Series(values, index=points.index, dtype="int64")


def demand_coverage(
    n_demand: int,
    pairs: Mapping[str, tuple[npt.NDArray[np.int64], npt.NDArray[np.int64],
                              npt.NDArray[np.float64]]],
) -> pd.DataFrame:
    """Per demand point and layer: facilities within the limit and the nearest distance.

    Parameters
    ----------
    n_demand
        Number of demand points.
    pairs
        For each layer key, ``(facility, demand, dist_m)`` arrays within the limit.

    Returns
    -------
    pandas.DataFrame
        One row per demand point, columns ``{key}_n`` (count) and ``{key}_m`` (metres to the
        nearest, NaN when none is within reach).
    """
    columns: dict[str, npt.NDArray[np.generic]] = {}
    for key, (_, target, dist) in pairs.items():
        columns[f"{key}_n"] = np.bincount(target, minlength=n_demand).astype(np.int64)
        nearest = np.full(n_demand, np.inf)
        np.minimum.at(nearest, target, dist)
        nearest[np.isinf(nearest)] = np.nan
        columns[f"{key}_m"] = nearest
    return pd.DataFrame(columns, index=pd.RangeIndex(n_demand))


def network_status(share: pd.Series) -> pd.Series:
    """Classify units by the share of their area inside the network extent."""
    status = np.where(share >= FULL_NETWORK_SHARE, "full",
                      np.where(share > 0.0, "partial", "none"))
    return pd.Series(status, index=share.index, dtype="object")


def coverage_by_unit(
    units: gpd.GeoDataFrame,
    *,
    facility_units: Mapping[str, npt.NDArray[np.int64]],
    demand_unit: npt.NDArray[np.int64] | None,
    demand_cover: pd.DataFrame | None,
    unions: Mapping[str, shapely.Geometry],
    extent: shapely.Geometry,
    working_crs: str,
    measured: Mapping[str, npt.NDArray[np.float64]] | None = None,
) -> pd.DataFrame:
    """Counts and coverage shares for every unit.

    Parameters
    ----------
    units
        Polygons with ``unit`` and ``district`` columns.
    facility_units
        Per layer key, the :func:`assign_units` position of each of its facilities (all of
        them, on the network or not: the count of facilities in a unit needs no network).
    demand_unit
        :func:`assign_units` position of each demand point, or None.
    demand_cover
        :func:`demand_coverage` of the demand points (same row order), or None.
    unions
        Union of service areas per layer key, in ``working_crs``.
    extent
        The network's extent, in ``working_crs``.
    working_crs
        Metric CRS for areas.
    measured
        The units' areas inside the extent (:data:`EXTENT_M2`) and inside each layer's union
        (the layer key), m², already measured (tile by tile on a cluster: the sums of
        :mod:`coverage15.scale.pieces`); a layer missing from it covers nothing. None:
        overlay the units with ``extent`` and ``unions`` here.

    Returns
    -------
    pandas.DataFrame
        Indexed like ``units``: ``area_km2``, ``network_share``, ``network``
        (full/partial/none), ``demand_points``, and per layer ``{key}_count``,
        ``{key}_demand_share`` (share of the unit's demand points within reach of at least
        one facility; NaN without demand) and ``{key}_area_share``.
    """
    metric = units.geometry.to_crs(working_crs).to_numpy()
    area = shapely.area(metric)
    if measured is not None:
        inside = extent_areas(measured.get(EXTENT_M2, np.zeros(len(metric))), area,
                              measured.get(WITHIN, np.zeros(len(metric))) > 0)
    else:
        inside = extent_areas(
            _intersection_areas(metric, np.array([extent], dtype=object)[[0] * len(metric)]),
            area, shapely.within(metric, extent))
    table = pd.DataFrame(index=units.index)
    table["area_km2"] = area / 1e6
    table["network_share"] = np.clip(np.divide(inside, area, out=np.zeros_like(area),
                                               where=area > 0), 0.0, 1.0)
    table["network"] = network_status(table["network_share"])
    counts = count_by_unit(len(units), facility_units, demand_unit, demand_cover)
    table["demand_points"] = counts.pop("demand_points")
    for key in facility_units:
        for column in (f"{key}_count", f"{key}_demand_share"):
            if column in counts:
                table[column] = counts[column]
        union = unions.get(key)
        if measured is not None:
            covered_area = np.asarray(measured.get(key, np.zeros(len(metric))), dtype=float)
            table[f"{key}_area_share"] = np.clip(
                np.divide(covered_area, area, out=np.zeros_like(area), where=area > 0), 0.0, 1.0
            )
        elif union is None or union.is_empty:
            table[f"{key}_area_share"] = 0.0
        else:
            covered_area = _area_inside(metric, union)
            table[f"{key}_area_share"] = np.clip(
                np.divide(covered_area, area, out=np.zeros_like(area), where=area > 0), 0.0, 1.0
            )
    return table


def count_by_unit(n_units: int, facility_units: Mapping[str, npt.NDArray[np.int64]],
                  demand_unit: npt.NDArray[np.int64] | None,
                  demand_cover: pd.DataFrame | None) -> dict[str, npt.NDArray[Any]]:
    """Per unit: ``demand_points``, and per layer ``{key}_count`` and ``{key}_demand_share``.

    Positions ``-1`` (in no unit) count nowhere; the share is NaN for a unit without points.
    """
    if demand_unit is not None and demand_cover is not None:
        where = np.asarray(demand_unit)
        located = where >= 0
        n_points = np.bincount(where[located], minlength=n_units)
    else:
        located = np.array([], dtype=bool)
        where = np.array([], dtype=np.int64)
        n_points = np.zeros(n_units, dtype=np.int64)
    out: dict[str, npt.NDArray[Any]] = {"demand_points": n_points}
    for key, inside_unit in facility_units.items():
        out[f"{key}_count"] = np.bincount(inside_unit[inside_unit >= 0], minlength=n_units)
        if demand_cover is not None and f"{key}_n" in demand_cover:
            covered = demand_cover[f"{key}_n"].to_numpy() > 0
            n_cov = np.bincount(where[located], weights=covered[located], minlength=n_units)
            out[f"{key}_demand_share"] = np.where(n_points > 0, n_cov / np.maximum(n_points, 1),
                                                  np.nan)
    return out


def _area_inside(polygons: npt.NDArray[np.object_], cover: shapely.Geometry,
                 ) -> npt.NDArray[np.float64]:
    """Area of each polygon inside ``cover``.

    ``cover`` is intersected part by part, each part only with the polygons it touches: one
    overlay of every unit with a city-wide union is far slower. The parts of a union are
    disjoint, so their areas add up.
    """
    parts = shapely.get_parts(cover)
    left, right = shapely.STRtree(parts).query(polygons, predicate="intersects")
    inside = _intersection_areas(polygons[left], parts[right])
    return np.bincount(left, weights=inside, minlength=len(polygons)).astype(np.float64)


OVERLAY_BLOCK = 64
"""Polygon pairs per block of :func:`_intersection_areas` (the blocks, and so the answer, do
not depend on the number of threads)."""


def _cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _intersection_areas(a: npt.NDArray[np.object_], b: npt.NDArray[np.object_],
                        ) -> npt.NDArray[np.float64]:
    """``area(intersection(a, b))`` pair by pair, in blocks spread over the CPUs.

    The overlays of units with the service areas' union are the costly part of the coverage
    step; GEOS releases the GIL, so threads share them out. Each pair's area is computed
    alone, so the result is the same on any number of threads.
    """
    blocks = [slice(i, i + OVERLAY_BLOCK) for i in range(0, len(a), OVERLAY_BLOCK)]

    def one(block: slice) -> npt.NDArray[np.float64]:
        return np.asarray(shapely.area(shapely.intersection(a[block], b[block])), dtype=float)

    if not blocks:
        return np.zeros(0)
    return np.concatenate(on_threads(one, blocks, _cpus()))
