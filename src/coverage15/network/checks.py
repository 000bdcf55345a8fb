"""Checks of the inputs against the walk network: snapping, missing streets and its CRS.

Each check returns :class:`~coverage15.inputs.checks.Problem` rows, as the input checks do;
the analysis adds them to the run's ``problems.csv``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from coverage15 import settings
from coverage15.inputs.checks import Problem

if TYPE_CHECKING:
    from coverage15.network.graph import WalkNetwork

__all__ = [
    "SPARSE_STREETS_MEDIAN_M",
    "SPARSE_STREETS_MIN_POINTS",
    "crs_scale_problems",
    "scale_problems",
    "snap_problems",
    "sparse_street_problems",
    "sparse_street_reason",
    "sparse_street_units",
]


def snap_problems(key: str, points: gpd.GeoDataFrame, snap_m: npt.NDArray[np.float64],
                  extent: shapely.Geometry, working_crs: str,
                  *, snap_max_m: float = settings.snap_max_m) -> list[Problem]:
    """Facilities inside the network's extent but farther than the snap limit from a street.

    Such a point is a bad geocode or a street missing from the data; it is reported, and
    counts for the 街镇 it lies in, but reaches nobody on foot.
    """
    inside = shapely.contains_xy(extent, *shapely.get_coordinates(
        points.geometry.to_crs(working_crs).to_numpy()).T)
    far = inside & np.isnan(snap_m)
    if not far.any():
        return []
    names = points.loc[far, "name"].astype(str).head(5).tolist()
    return [Problem(
        "warning", key,
        f"{int(far.sum())} point(s) inside the network's extent are more than {snap_max_m:.0f} m "
        f"from any street and are not used for walking (e.g. {', '.join(names)})",
        int(far.sum()),
    )]


SPARSE_STREETS_MEDIAN_M = 100.0
"""A judged 街镇 whose residential points lie a median of more than this from the nearest
street is warned about: streets are probably missing from the network there. (In the central
data the other judged 街镇 have medians of 11-49 m; 平凉路街道, at the extract's north-east
edge where it lacks many streets, 138 m.)"""
SPARSE_STREETS_MIN_POINTS = 10
"""Fewer residential points in a 街镇 than this say too little to warn about."""


def sparse_street_units(judged: npt.NDArray[np.bool_], demand_unit: npt.NDArray[np.int64],
                        snap_m: npt.NDArray[np.float64]) -> tuple[pd.Series, float]:
    """Judged 街镇 whose residents are unusually far from any street in the network.

    A resident's walk starts with the leg to the nearest street, so where streets are missing
    from the data residents are reported uncovered for want of streets, not of services.

    Parameters
    ----------
    judged
        Per unit, whether its walking rules are judged (wholly inside the network).
    demand_unit
        Each demand point's unit position (-1: none).
    snap_m
        Each demand point's distance to the nearest street (NaN: beyond the snap limit,
        counted here as farther than any).

    Returns
    -------
    flagged : pandas.Series
        Unit position → its points' median distance to a street (inf: half or more beyond
        the snap limit), for units with at least ``SPARSE_STREETS_MIN_POINTS`` points and a
        median above ``SPARSE_STREETS_MEDIAN_M``; largest first.
    overall : float
        The median over every point in a judged unit (NaN if there is none).
    """
    unit = np.asarray(demand_unit)
    inside = unit >= 0
    inside[inside] = np.asarray(judged)[unit[inside]]
    far = pd.Series(np.nan_to_num(np.asarray(snap_m)[inside], nan=np.inf))
    by_unit = far.groupby(unit[inside])
    median = by_unit.median()[by_unit.size() >= SPARSE_STREETS_MIN_POINTS]
    flagged = median[median > SPARSE_STREETS_MEDIAN_M].sort_values(ascending=False)
    return flagged, float(far.median()) if len(far) else float("nan")


def _metres(value: float) -> str:
    return f"{value:.0f} m" if np.isfinite(value) else "half or more beyond the snap limit"


def sparse_street_problems(names: Sequence[str], flagged: pd.Series,
                           overall: float) -> list[Problem]:
    """One warning naming the :func:`sparse_street_units` (``names``: unit names by position).

    The results stand; the warning says which 街镇 to check before acting on them.
    """
    if flagged.empty:
        return []
    one = len(flagged) == 1
    listed = ", ".join(f"{names[int(u)]} {_metres(m)}" for u, m in flagged.items())
    return [Problem(
        "warning", "network",
        f"{len(flagged)} 街镇 inside the network {'has its' if one else 'have their'} "
        f"residential points a median of more than {SPARSE_STREETS_MEDIAN_M:.0f} m from the "
        f"nearest street (all 街镇 inside the network: {_metres(overall)}), so streets are "
        f"probably missing from the network there and {'its' if one else 'their'} walking "
        f"shares may be too low: {listed}; check the network there before acting on "
        f"{'its' if one else 'their'} results", len(flagged))]


def sparse_street_reason(median_m: float) -> tuple[str, str]:
    """The caution added to such a 街镇's reason in the gap report: (English, Chinese)."""
    if np.isfinite(median_m):
        return (f"streets probably missing from the network here (residents a median "
                f"{median_m:.0f} m from a street): check before acting",
                f"路网此处可能缺少道路（居民点距最近道路中位数 {median_m:.0f} 米），请先核实")
    return ("streets probably missing from the network here (half or more of the residents "
            "beyond the snap limit): check before acting",
            "路网此处可能缺少道路（半数以上居民点离道路过远），请先核实")


def scale_problems(net: WalkNetwork, tolerance: float = 0.005) -> list[Problem]:
    """Stop when the working CRS stretches lengths here (e.g. Web Mercator: +17 % in Shanghai).

    Every walking distance is measured in the working CRS, so its scale error shifts the 15
    minutes; a UTM zone is within 0.1 % near its centre. An error (id ``working-crs``): the
    run stops unless it is accepted.
    """
    import pyproj

    centre = shapely.centroid(net.extent)
    to_lonlat = pyproj.Transformer.from_crs(net.crs, "EPSG:4326", always_xy=True)
    lon, lat = to_lonlat.transform(centre.x, centre.y)
    return crs_scale_problems(net.crs, lon, lat, tolerance=tolerance)


def crs_scale_problems(crs: str, lon: float, lat: float,
                       *, tolerance: float = 0.005) -> list[Problem]:
    """:func:`scale_problems` for a working CRS at a place (before any network is built)."""
    import pyproj

    factors = pyproj.Proj(pyproj.CRS.from_user_input(crs)).get_factors(lon, lat)
    error = max(abs(factors.meridional_scale - 1), abs(factors.parallel_scale - 1))
    if error <= tolerance:
        return []
    return [Problem("error", "analysis", f"working_crs {crs} stretches lengths by "
                    f"{error:.1%} here, so the walking limit is off by as much; use the local "
                    "UTM zone (EPSG:32651 for Shanghai)", 1, id="working-crs")]
