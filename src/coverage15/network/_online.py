"""Street graphs from online OpenStreetMap queries through osmnx (place, polygon or bbox)."""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import networkx as nx
import shapely

from coverage15.inputs.specs import NetworkSpec

__all__ = ["online_graph"]


def online_graph(spec: NetworkSpec) -> tuple[nx.MultiDiGraph, shapely.Geometry]:
    """The osmnx graph of an online query and the area it covers (EPSG:4326).

    With ``ways = "walk"`` the query uses the walk filter files use
    (:func:`coverage15.network._walk_filter.overpass_filter`), else ``network_type``.
    """
    import osmnx as ox

    if spec.ways == "walk":  # the same filter as for files (osmnx's walk filter)
        from coverage15.network._walk_filter import overpass_filter

        kw: dict[str, Any] = {"custom_filter": overpass_filter()}
    else:
        kw = {"network_type": spec.network_type}

    if spec.source == "place":
        assert spec.place is not None
        boundary = ox.geocode_to_gdf(spec.place).union_all()
        graph = ox.graph_from_polygon(boundary, retain_all=True, **kw)
        return graph, boundary
    if spec.source == "polygon":
        assert spec.path is not None
        boundary = gpd.read_file(spec.path).to_crs("EPSG:4326").union_all()
        graph = ox.graph_from_polygon(boundary, retain_all=True, **kw)
        return graph, boundary
    assert spec.bbox is not None
    graph = ox.graph_from_bbox(spec.bbox, retain_all=True, **kw)
    return graph, shapely.box(*spec.bbox)
