"""Candidate sites for new facilities, and the demand each would bring within reach.

Used by :mod:`coverage15.planning.recommend`. Candidates are snapped to street edges exactly like
facilities; :func:`coverage15.reach.distances.point_distances` gives each one's demand points.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np

from coverage15._errors import ConfigError
from coverage15.inputs.layers import load_layer
from coverage15.planning._reach_sets import coverage_sets
from coverage15.planning.scenarios import load_sites

if TYPE_CHECKING:
    from coverage15.result import Result

__all__ = ["candidate_sites", "coverage_sets"]


def candidate_sites(result: Result, source: str = "nodes", *, spacing_m: float = 0.0,
                    **file_options: Any) -> gpd.GeoDataFrame:
    """Candidate sites for new facilities, in EPSG:4326.

    Parameters
    ----------
    result
        The baseline run.
    source
        ``"nodes"``: the street nodes; ``"layer:KEY"``: a layer of the config (e.g. day-care
        centres that could host a service centre); otherwise a site file
        (:func:`coverage15.planning.scenarios.load_sites`, with ``file_options``).
    spacing_m
        For nodes: keep one node (the best connected) per square of this size; 0 keeps all.

    Returns
    -------
    geopandas.GeoDataFrame
        ``facility_id``, ``name``, ``source`` and the point.
    """
    if source == "nodes":
        net = result.network
        xy = net.node_xy
        pick = np.arange(net.n_nodes)
        if spacing_m > 0:
            degree = np.diff(net.incidence[0])
            cell = np.floor(xy / spacing_m).astype(np.int64)
            order = np.lexsort((pick, -degree, cell[:, 1], cell[:, 0]))
            new = np.ones(len(order), dtype=bool)
            new[1:] = np.any(np.diff(cell[order], axis=0) != 0, axis=1)
            pick = np.sort(order[new])
        ids = net.node_ids[pick]
        out = gpd.GeoDataFrame({"facility_id": [f"node-{i}" for i in ids],
                                "name": [f"路网节点 {i}" for i in ids]},
                               geometry=gpd.points_from_xy(xy[pick, 0], xy[pick, 1]),
                               crs=net.crs).to_crs("EPSG:4326")
    elif source.startswith("layer:"):
        key = source.removeprefix("layer:")
        if key in result.layers:
            out = result.layers[key].points
        elif key in result.config.layers:
            out = load_layer(result.config.layers[key]).points
        else:
            msg = (f"candidates {source!r}: no layer {key!r} in {result.config.source}; "
                   f"layers: {', '.join(result.config.layers)}")
            raise ConfigError(msg)
    else:
        out = load_sites(source, key="candidates", **file_options)
    out = out[["facility_id", "name", "geometry"]].reset_index(drop=True)
    out["source"] = source
    return out
