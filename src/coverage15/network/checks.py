"""Checks of the inputs against the walk network: snapping, its completeness and its CRS.

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
    "COMPLETENESS_MIN_POINTS",
    "NEAR_STREET_M",
    "SPARSE_DENSITY",
    "SPARSE_SHARE",
    "completeness_problems",
    "completeness_reason",
    "crs_scale_problems",
    "network_completeness",
    "scale_problems",
    "snap_problems",
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


NEAR_STREET_M = 50.0
"""A residential point this close to a street in the network counts as "near a street"."""
SPARSE_SHARE = 0.4
"""Below this share of residential points near a street, a 街镇's streets are thin..."""
SPARSE_DENSITY = 0.4
"""...and below this fraction of the median street density of the 街镇 wholly inside the
network. Both below: ``sparse`` (streets missing from the network: the 街镇 is not judged on
walking rules); one below: ``thin`` (a caution); neither: ``complete``. In the central data
31 of the 32 街镇 wholly inside the network have 50-96 % of their residential points within
50 m of a street and 0.45-1.6 times the median density; 平凉路街道, at the extract's torn
north-east edge, 28 % and 0.31."""
COMPLETENESS_MIN_POINTS = 10
"""Fewer residential points in a 街镇 than this say too little: density alone grades it."""


def network_completeness(units: npt.NDArray[np.object_], net: WalkNetwork,
                         demand_unit: npt.NDArray[np.int64] | None,
                         snap_m: npt.NDArray[np.float64] | None,
                         full_share: float = 0.95, *,
                         measured: tuple[npt.NDArray[np.float64],
                                         npt.NDArray[np.float64]] | None = None,
                         ) -> pd.DataFrame:
    """How well the network covers where people live, per unit.

    Parameters
    ----------
    units
        Unit polygons in the network's CRS.
    net
        The walk network.
    demand_unit, snap_m
        Each residential point's unit position (-1: none) and distance to the nearest
        street (NaN: beyond the snap limit); None without residential points.
    full_share
        Units with this share of their area inside the network's extent set the reference
        street density (:data:`coverage15.reach.coverage.FULL_NETWORK_SHARE`).
    measured
        Each unit's area inside the extent (m²) and street length there (m), when already
        measured (tile by tile on a cluster); otherwise the units are overlaid with the
        extent and every edge here.

    Returns
    -------
    pandas.DataFrame
        One row per unit (positions): ``street_near_share`` (share of its residential points
        within :data:`NEAR_STREET_M` of a street; NaN with fewer than
        :data:`COMPLETENESS_MIN_POINTS` or where the unit is not wholly inside the extent),
        ``street_km_per_km2`` (street length per km² of the unit's part inside the extent),
        ``street_density_ratio`` (that over the median of the units wholly inside) and
        ``network_complete`` (``complete``/``thin``/``sparse``; None where the unit is not
        wholly inside the extent: it is not judged on walking rules anyway).
    """
    n = len(units)
    if measured is None:
        inside = shapely.intersection(units, net.extent)
        inside_km2 = shapely.area(inside) / 1e6
        left, right = net.tree.query(inside, predicate="intersects")
        lengths = shapely.length(shapely.intersection(inside[left], net.edge_geometry[right]))
        km = np.bincount(left, weights=lengths, minlength=n) / 1000.0
    else:
        inside_km2 = np.asarray(measured[0], dtype=float) / 1e6
        km = np.asarray(measured[1], dtype=float) / 1000.0
    share = np.divide(inside_km2, shapely.area(units) / 1e6, out=np.zeros(n),
                      where=shapely.area(units) > 0)
    density = np.where(inside_km2 > 0, km / np.maximum(inside_km2, 1e-12), np.nan)
    reference_units = density[(share >= full_share) & np.isfinite(density)]
    if len(reference_units) == 0:
        reference_units = density[np.isfinite(density)]
    reference = float(np.median(reference_units)) if len(reference_units) else np.nan
    ratio = density / reference if reference > 0 else np.full(n, np.nan)
    near = np.full(n, np.nan)
    if demand_unit is not None and snap_m is not None:
        unit = np.asarray(demand_unit)
        located = unit >= 0
        close = np.nan_to_num(np.asarray(snap_m), nan=np.inf) <= NEAR_STREET_M
        points = np.bincount(unit[located], minlength=n)
        hits = np.bincount(unit[located], weights=close[located], minlength=n)
        enough = points >= COMPLETENESS_MIN_POINTS
        near[enough] = hits[enough] / points[enough]
    # graded where the unit lies wholly inside the network's extent (where it could be judged);
    # elsewhere residents beyond the extent would count as far from every street
    whole = share >= full_share
    near[~whole] = np.nan
    thin_near = near < SPARSE_SHARE  # NaN: not thin
    thin_density = ratio < SPARSE_DENSITY
    grade = np.where(thin_near & thin_density, "sparse",
                     np.where(thin_near | thin_density, "thin", "complete")).astype(object)
    grade[~whole] = None
    return pd.DataFrame({"street_near_share": near, "street_km_per_km2": km / np.where(
        inside_km2 > 0, inside_km2, np.nan), "street_density_ratio": ratio,
        "network_complete": grade})


def completeness_problems(names: Sequence[str], table: pd.DataFrame,
                          was_full: npt.NDArray[np.bool_]) -> list[Problem]:
    """Warnings naming the 街镇 (wholly inside the network) whose streets are sparse or thin.

    ``table`` is :func:`network_completeness`'s, ``was_full`` whether each unit lies wholly
    inside the network's extent (before its completeness is taken into account).
    """
    out = []
    grade = table["network_complete"].to_numpy()
    for level, says in (
        ("sparse", "streets are missing from the network there (fewer than {s:.0%} of "
                   "residential points within {m:.0f} m of a street and under {d:.0%} of the "
                   "median street density), so {it} not judged on walking rules, only on "
                   "counts"),
        ("thin", "the network is thinner there than elsewhere (under {s:.0%} of residential "
                 "points within {m:.0f} m of a street, or under {d:.0%} of the median street "
                 "density), so {its} walking shares may be too low; check the network there"),
    ):
        hit = np.flatnonzero(was_full & (grade == level))
        if len(hit) == 0:
            continue
        one = len(hit) == 1
        listed = ", ".join(f"{names[int(u)]} {_figures(table.iloc[int(u)])}" for u in hit)
        text = says.format(s=SPARSE_SHARE, m=NEAR_STREET_M, d=SPARSE_DENSITY,
                           it="it is" if one else "they are", its="its" if one else "their")
        out.append(Problem("warning", "network",
                           f"{len(hit)} 街镇 inside the network: {text}: {listed}", len(hit)))
    return out


def _figures(row: pd.Series) -> str:
    near = row["street_near_share"]
    near_text = f"{near:.0%} near a street, " if np.isfinite(near) else ""
    return f"({near_text}density {row['street_density_ratio']:.2f} of the median)"


def completeness_reason(row: pd.Series) -> tuple[str, str] | None:
    """The caution added to a 街镇's reason in the gap report, (English, Chinese), or None."""
    grade = row["network_complete"]
    near = row["street_near_share"]
    ratio = row["street_density_ratio"]
    near_en = f"{near:.0%} of residents within {NEAR_STREET_M:.0f} m of a street, " \
        if np.isfinite(near) else ""
    near_zh = f"居民点 {near:.0%} 距道路 {NEAR_STREET_M:.0f} 米内，" if np.isfinite(near) else ""
    figures_en = f"{near_en}street density {ratio:.2f} of the median"
    figures_zh = f"{near_zh}道路密度为中位数的 {ratio:.2f} 倍"
    if grade == "sparse":
        return (f"because streets are missing from the network here ({figures_en}); check "
                "the network before acting",
                f"因路网此处缺少道路（{figures_zh}），请先核实路网")
    if grade == "thin":
        return (f"network thinner here than elsewhere ({figures_en}): walking shares may be "
                "too low; check before acting",
                f"路网此处偏稀（{figures_zh}），步行覆盖率可能偏低，请先核实")
    return None


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
