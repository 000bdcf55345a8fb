"""How a :class:`~coverage15.network.graph.WalkNetwork` pickles: its LineStrings packed.

A million edge geometries pickled one by one take seconds to load; packed as one coordinate
array and a count per edge they take a fraction of a second, and they are made again only on
first use (:func:`unpacked`): a partitioned run's main process, whose workers cut their tiles
from the tile store and measure the streets per tile, never needs them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely

__all__ = ["pack", "unpack", "unpacked"]


def pack(net: Any) -> dict[str, Any]:
    """``net``'s state, its LineStrings as ``(coordinates, counts)``."""
    state: dict[str, Any] = net.__dict__.copy()
    state["_tree"] = None  # STRtrees do not pickle; rebuilt on demand
    if "_edge_coords" in state:  # read from a pickle and its LineStrings never made
        state["edge_geometry"] = state.pop("_edge_coords")
        return state
    coords, index = shapely.get_coordinates(net.edge_geometry, return_index=True)
    state["edge_geometry"] = (coords, np.bincount(index, minlength=net.n_edges))
    return state


def unpack(net: Any, state: dict[str, Any]) -> None:
    """Restore ``net`` from :func:`pack`'s state, its LineStrings left packed."""
    if isinstance(state["edge_geometry"], tuple):
        state["_edge_coords"] = state.pop("edge_geometry")
    net.__dict__.update(state)


def unpacked(net: Any, name: str) -> Any:
    """``net.edge_geometry`` made from the packed coordinates, on first use."""
    packed = net.__dict__.get("_edge_coords")
    if name != "edge_geometry" or packed is None:
        raise AttributeError(name)
    coords, counts = packed
    geometry = shapely.linestrings(coords, indices=np.repeat(np.arange(len(counts)), counts))
    net.__dict__["edge_geometry"] = geometry
    net.__dict__.pop("_edge_coords", None)
    return geometry
