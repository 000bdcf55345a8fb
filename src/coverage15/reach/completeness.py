"""How completely the walk network covers each 街镇: the columns and cautions of the report.

:func:`completeness_table` measures it (street length and residents near a street, per
街镇), :func:`apply_completeness` writes it into the coverage table (a ``sparse`` 街镇 is not
judged on walking rules) and :func:`completeness_cautions` says it in the gap report's
reasons. Shared by the analysis and the live app's engine.
"""

from __future__ import annotations

from collections.abc import Mapping

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from coverage15.network.checks import completeness_reason, network_completeness
from coverage15.network.graph import WalkNetwork
from coverage15.reach.coverage import EXTENT_M2, STREET_M, WITHIN, extent_areas

__all__ = ["apply_completeness", "completeness_cautions", "completeness_table"]


def completeness_table(units: gpd.GeoDataFrame, net: WalkNetwork,
                       demand_unit: npt.NDArray[np.int64] | None,
                       snap_m: npt.NDArray[np.float64] | None, *,
                       measured: Mapping[str, npt.NDArray[np.float64]] | None = None,
                       ) -> pd.DataFrame:
    """Per 街镇 (in ``units``' order): how completely the network covers where people live.

    ``measured``: each 街镇's area inside the network's extent and street length there,
    already measured tile by tile (:mod:`coverage15.scale.pieces`), instead of overlaying
    the 街镇 with the whole network here.
    """
    metric = units.geometry.to_crs(net.crs).to_numpy()
    found = None
    if measured is not None:
        n = len(metric)
        found = (extent_areas(measured.get(EXTENT_M2, np.zeros(n)), shapely.area(metric),
                              measured.get(WITHIN, np.zeros(n)) > 0),
                 measured.get(STREET_M, np.zeros(n)))
    complete: pd.DataFrame = network_completeness(metric, net, demand_unit, snap_m,
                                                  measured=found)
    return complete.reset_index(drop=True)


def apply_completeness(table: pd.DataFrame, complete: pd.DataFrame) -> npt.NDArray[np.bool_]:
    """Write the completeness columns into ``table``; ``sparse`` 街镇 become ``partial``.

    Returns which 街镇 were ``full`` before (judged on the network's extent alone).
    """
    for column in complete.columns:
        table[column] = complete[column].to_numpy()
    was_full: npt.NDArray[np.bool_] = (table["network"] == "full").to_numpy()
    table.loc[was_full & (complete["network_complete"] == "sparse").to_numpy(),
              "network"] = "partial"
    return was_full


def completeness_cautions(names: list[str], complete: pd.DataFrame,
                          was_full: npt.NDArray[np.bool_]) -> dict[str, tuple[str, str]]:
    """The caution (English, Chinese) of each 街镇 whose network is not complete."""
    cautions = {}
    # only sparse and thin networks have one (a row at a time is slow over 3,000 街镇)
    worth = np.isin(complete["network_complete"].to_numpy(dtype=object), ("sparse", "thin"))
    for u in np.flatnonzero(was_full & worth):
        reason = completeness_reason(complete.iloc[u])
        if reason is not None:
            cautions[names[u]] = reason
    return cautions
