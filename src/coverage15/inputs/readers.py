"""Readers for notebooks and scripts, and every input of a config-driven run.

:func:`read_points` and :func:`read_units` take the same options as a config's
``[layers.KEY]`` and ``[units]`` tables, as keywords, and return GeoDataFrames that
:func:`coverage15.analyse` takes as they are. :func:`load_inputs` reads everything a
:class:`~coverage15.inputs.config.RunConfig` names, collecting every failure into one error.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import geopandas as gpd
import pandas as pd

from coverage15._errors import Coverage15Error, LayerError
from coverage15.inputs._files import check_file
from coverage15.inputs.config import LayerSpec, Role, RunConfig, UnitSpec
from coverage15.inputs.layers import Layer, load_layer, load_units
from coverage15.inputs.specs import PopulationSpec

__all__ = ["FRAME_SOURCE", "Inputs", "layer_of", "load_inputs", "read_points",
           "read_population", "read_units"]

_T = TypeVar("_T")
FRAME_SOURCE = Path("<GeoDataFrame>")
"""The path a unit layer given as a GeoDataFrame reports in its messages."""
_ATTR = "coverage15_layer"  # GeoDataFrame.attrs key: how read_points read the rows


def read_points(
    source: str | os.PathLike[str] | pd.DataFrame,
    *,
    key: str = "points",
    label: str | None = None,
    role: Role = "other",
    x: str | None = None,
    y: str | None = None,
    crs: str = "",
    filter: str | None = None,
    name_field: str | None = None,
    id_field: str | None = None,
    layer: str | None = None,
    exclude_points: Sequence[tuple[float, float]] = (),
    encoding: str = "utf-8",
    unit_field: str | None = None,
) -> gpd.GeoDataFrame:
    """Read a facility or demand point layer as a GeoDataFrame in EPSG:4326.

    The options are those of a config's ``[layers.KEY]`` table. Rows that cannot be used
    (no coordinates, on a geocoding-fallback point, repeating an earlier row) are set aside
    with a reason, as in a run; the GeoDataFrame remembers them, and the layer's ``label``
    and ``role``, for :func:`coverage15.analyse`.

    Parameters
    ----------
    source
        A file (CSV, JSON records, GeoJSON, GeoPackage, Shapefile, GeoParquet...) or a
        DataFrame with ``x``/``y`` columns or a GeoDataFrame.
    key, label, role
        The layer's short name, its label in reports and its part in "1+N"
        (``"centre"``, ``"station"`` or ``"other"``).
    x, y, crs
        Coordinate columns and their system: ``"gcj02"``, ``"bd09"`` or an EPSG code.
    filter
        A row filter in the filter language, e.g. ``"agencyType == 6"``.
    name_field, id_field, layer, exclude_points, encoding, unit_field
        As in the config (see the configuration reference).

    Returns
    -------
    geopandas.GeoDataFrame
        ``facility_id``, ``name``, ``layer``, ``source_row``, the source's other columns,
        and point geometry in EPSG:4326.
    """
    frame = source if isinstance(source, pd.DataFrame) else None
    spec = LayerSpec(
        key=key, label=label or key, path=None if frame is not None else Path(source),
        role=role, crs=crs, x=x, y=y, filter=filter, name_field=name_field,
        id_field=id_field, layer=layer,
        exclude_points=tuple((float(a), float(b)) for a, b in exclude_points),
        encoding=encoding, unit_field=unit_field)
    loaded = load_layer(spec, frame=frame)
    points = loaded.points
    points.attrs[_ATTR] = {"spec": spec, "rejected": loaded.rejected,
                           "n_source": loaded.n_source}
    return points


def read_units(
    source: str | os.PathLike[str] | gpd.GeoDataFrame,
    *,
    name_field: str = "name",
    district_field: str | None = None,
    crs: str = "",
    layer: str | None = None,
    encoding: str = "utf-8",
    aliases: Mapping[str, str] | None = None,
    what: str = "units",
) -> gpd.GeoDataFrame:
    """Read analysis units (街镇 or districts) as a GeoDataFrame in EPSG:4326.

    Returns
    -------
    geopandas.GeoDataFrame
        ``unit`` (the name, after ``aliases``), ``district`` (empty without
        ``district_field``), ``repaired`` and polygon geometry; invalid polygons repaired.
    """
    frame = source if isinstance(source, gpd.GeoDataFrame) else None
    spec = UnitSpec(path=FRAME_SOURCE if frame is not None else Path(source),
                    name_field=name_field, district_field=district_field, crs=crs,
                    layer=layer, encoding=encoding,
                    aliases=tuple((aliases or {}).items()))
    return load_units(spec, what=what, frame=frame)


def layer_of(key: str, points: gpd.GeoDataFrame | gpd.GeoSeries | Layer) -> Layer:
    """``points`` as the :class:`Layer` ``key`` of an analysis.

    A :class:`Layer`, or a GeoDataFrame from :func:`read_points`, keeps its rows, label and
    rows set aside (under the new key); any other GeoDataFrame or GeoSeries of points is read
    as a layer of its own (its ``name`` column, if any, naming the facilities).
    """
    if isinstance(points, Layer):
        if points.spec.key == key:
            return points
        spec, frame, rejected, n_source = (points.spec, points.points, points.rejected,
                                           points.n_source)
    elif _ATTR in points.attrs:
        read = points.attrs[_ATTR]
        spec, frame, rejected, n_source = (read["spec"], points, read["rejected"],
                                           read["n_source"])
    else:
        frame = points.to_frame() if isinstance(points, gpd.GeoSeries) else points
        spec = LayerSpec(key=key, label=key, path=None,
                         name_field="name" if "name" in frame.columns else None)
        return load_layer(spec, frame=frame)
    if spec.key != key:
        spec = LayerSpec(**{**spec.__dict__, "key": key,
                            "label": key if spec.label == spec.key else spec.label})
        frame = frame.assign(layer=key)
        rejected = rejected.assign(layer=key)
    frame = frame.copy()
    frame.attrs.pop(_ATTR, None)
    return Layer(spec=spec, points=frame, rejected=rejected, n_source=n_source)


@dataclass(frozen=True)
class Inputs:
    """Everything a config names, loaded: units, districts, facility layers, demand."""

    units: gpd.GeoDataFrame
    districts: gpd.GeoDataFrame | None
    layers: dict[str, Layer]
    demand: Layer | None
    population: pd.DataFrame | None = None


def load_inputs(config: RunConfig) -> Inputs:
    """Read every input of ``config``, collecting all failures into one :class:`LayerError`.

    A layer with no usable row is an error too (its filter or coordinate columns are wrong),
    and so is a ``[demand]`` layer with none (the shares of residents would be judged on
    nobody).
    """
    errors: list[str] = []

    def attempt(what: str, load: Callable[[], _T]) -> _T | None:
        try:
            return load()
        except Coverage15Error as exc:
            text = str(exc)
            errors.append(text if what.rsplit(maxsplit=1)[-1] in text else f"{what}: {text}")
            return None

    network_path = config.network.path
    if network_path is not None:  # read later, but a missing file is named with the rest
        attempt("network", lambda: check_file(network_path, "network"))
    units = attempt("units", lambda: load_units(config.units, what="units"))
    district_spec = config.districts
    districts = (attempt("districts", lambda: load_units(district_spec, what="districts"))
                 if district_spec is not None else None)
    layers: dict[str, Layer] = {}
    for key, spec in config.layers.items():
        layer = attempt(f"layer {key}", lambda spec=spec: load_layer(spec))  # type: ignore[misc]
        if layer is None:
            continue
        if len(layer.points) == 0:
            reasons = layer.set_aside_counts().head(3).to_dict()
            errors.append(f"layer {key!r} ({spec.source_name}): no usable rows of "
                          f"{layer.n_source} (set aside: {reasons}); check filter and "
                          "coordinate columns")
            continue
        layers[key] = layer
    demand_spec = config.demand
    demand = (attempt("demand", lambda: load_layer(demand_spec))
              if demand_spec is not None else None)
    if demand is not None and len(demand.points) == 0:
        # no resident to count: every 街镇 would pass its residents' shares unjudged
        reasons = demand.set_aside_counts().head(3).to_dict()
        errors.append(f"demand ({demand.spec.source_name}): no usable rows of "
                      f"{demand.n_source} (set aside: {reasons}); without residents no "
                      "share can be judged: check the x/y columns (longitude is x) and the "
                      "file, or remove [demand] to run without residents")
        demand = None
    population_spec = config.population
    population = (attempt("population", lambda: read_population(population_spec))
                  if population_spec is not None else None)
    if errors or units is None:
        listing = "\n  ".join(errors)
        msg = errors[0] if len(errors) == 1 else (
            f"{len(errors)} input(s) cannot be used:\n  {listing}")
        raise LayerError(msg)
    return Inputs(units=units, districts=districts, layers=layers, demand=demand,
                  population=population)


def read_population(spec: PopulationSpec) -> pd.DataFrame:
    """A population table per unit: numeric columns indexed by the unit name.

    Raises
    ------
    LayerError
        When the file, its name column or its ``column`` is missing.
    """
    check_file(spec.path, "population")
    table = pd.read_csv(spec.path, encoding=spec.encoding)
    wanted = [spec.name_field] + ([spec.column] if spec.column else [])
    missing = [c for c in wanted if c not in table.columns]
    if missing:
        msg = (f"population {spec.path.name}: no column(s) {missing} (columns: "
               f"{', '.join(map(str, table.columns))}); check [population] name_field/column")
        raise LayerError(msg)
    names = table[spec.name_field].astype(str).str.strip()
    numbers = table.drop(columns=[spec.name_field]).apply(pd.to_numeric, errors="coerce")
    numbers = numbers.loc[:, numbers.notna().any()]
    numbers.index = pd.Index(names, name="unit")
    numbers.attrs["unit"] = spec.unit
    numbers.attrs["column"] = spec.column
    return numbers
