"""Which demand points each site would bring within the walking limit.

:func:`coverage_sets` is shared by the covering models (:mod:`coverage15.planning.recommend`)
and the what-if's account of each added site (:mod:`coverage15.planning._words`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import scipy.sparse as sp
import shapely

from coverage15._types import IntArray
from coverage15.network.graph import snap_points
from coverage15.reach.kernel import layer_reach

if TYPE_CHECKING:
    from coverage15.result import Result

__all__ = ["coverage_sets"]


def coverage_sets(result: Result, candidates: gpd.GeoDataFrame,
              rows: IntArray) -> sp.csr_matrix:
    """Boolean matrix: candidate x demand row (of ``rows``) within the walking limit."""
    a, net = result.config.analysis, result.network
    assert result.demand is not None
    out = sp.csr_matrix((len(candidates), len(rows)), dtype=bool)
    if len(rows) == 0 or len(candidates) == 0:
        return out
    demand = result.demand.iloc[rows]
    # a walk is never shorter than the straight line (plus the snaps when they are not walked)
    reach_m = a.limit_m + (0.0 if a.access_leg else 2 * a.snap_max_m)
    tree = shapely.STRtree(demand.geometry.to_crs(net.crs).to_numpy())
    near = np.unique(tree.query(candidates.geometry.to_crs(net.crs).to_numpy(),
                                predicate="dwithin", distance=reach_m)[0])
    areas = layer_reach(net, candidates.iloc[near], a, polygons=False,
                        demand_snap=snap_points(net, demand, snap_max_m=a.snap_max_m))
    source, target, _ = areas.pairs
    return sp.csr_matrix((np.ones(len(source), bool), (near[source], target)),
                         shape=out.shape)
