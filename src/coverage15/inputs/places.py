"""Where a row says it is, and whether its point agrees: the location check.

A row names its place in a column (``unit_field``: a 街镇 such as 湖南路街道, or a district
such as 嘉定 or 嘉定区) or inside its own name ("上海市徐汇区湖南路街道社区长者食堂" names
湖南路街道; failing a 街镇, a full district name such as 徐汇区). A point that lands more than
the layer's ``location_tolerance_m`` outside the place its row names was geocoded into the
wrong place (or its coordinate system is wrong): :func:`location_mismatches` lists such rows,
:func:`coverage15.inputs.checks.location_problems` reports them, and :func:`set_aside_rows`
moves them to the rejected table when the layer's ``location_check`` is ``"set_aside"``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from coverage15.inputs.layers import Layer
from coverage15.inputs.specs import LayerSpec

__all__ = [
    "MISMATCH_COLUMNS",
    "claimed_places",
    "district_key",
    "location_mismatches",
    "set_aside_rows",
]

_DISTRICT_SUFFIX = re.compile(r"(新区|区|县)$")
MISMATCH_COLUMNS = ["layer", "source_row", "name", "named", "landed", "distance_m", "lon",
                    "lat"]


def district_key(name: str) -> str:
    """A district name without its suffix: 嘉定区 → 嘉定, 浦东新区 → 浦东."""
    return _DISTRICT_SUFFIX.sub("", str(name).strip())


def _pattern(names: Sequence[str]) -> re.Pattern[str] | None:
    return _compiled(frozenset(n for n in names if len(n) >= 3))


@cache
def _compiled(names: frozenset[str]) -> re.Pattern[str] | None:
    """One alternation of ``names``, longest first (a longer name wins over one it contains).

    Compiled once per set of names, not per layer and check: a run asks for the same 街镇
    and district names about ten times.
    """
    usable = sorted(names, key=lambda n: (-len(n), n))
    return re.compile("|".join(re.escape(n) for n in usable)) if usable else None


def claimed_places(
    points: pd.DataFrame, spec: LayerSpec, units: gpd.GeoDataFrame,
    *, aliases: Sequence[tuple[str, str]] = (),
) -> tuple[npt.NDArray[np.object_], npt.NDArray[np.object_]]:
    """The 街镇 and the district each row names (None where it names none).

    Parameters
    ----------
    points
        A layer's rows (``name`` and, when configured, ``spec.unit_field``).
    spec
        The layer's spec.
    units
        街镇 with ``unit`` and ``district`` columns.
    aliases
        Other names of 街镇 (source name, official name), e.g. the units' aliases.

    Returns
    -------
    (unit, district)
        Per row, the official 街镇 name it names, else the district it names.
    """
    unit_names = set(units["unit"].astype(str))
    alias = {a: b for a, b in aliases if b in unit_names}
    districts = sorted({str(d) for d in units["district"] if str(d).strip()})
    by_key = {district_key(d): d for d in districts} | {d: d for d in districts}
    n = len(points)
    unit = np.full(n, None, dtype=object)
    district = np.full(n, None, dtype=object)
    if spec.unit_field and spec.unit_field in points.columns:
        values = points[spec.unit_field].astype("string").str.strip().fillna("")
        for i, value in enumerate(values.to_numpy(dtype=object)):
            if not value:
                continue
            if value in unit_names or value in alias:
                unit[i] = alias.get(value, value)
            elif value in by_key or district_key(value) in by_key:
                district[i] = by_key.get(value) or by_key[district_key(value)]
        return unit, district
    if "name" not in points.columns:
        return unit, district
    unit_pattern = _pattern([*unit_names, *alias])
    district_pattern = _pattern(districts)
    for i, text in enumerate(points["name"].fillna("").astype(str).to_numpy(dtype=object)):
        found = unit_pattern.search(text) if unit_pattern is not None else None
        if found is not None:
            unit[i] = alias.get(found.group(0), found.group(0))
            continue
        found = district_pattern.search(text) if district_pattern is not None else None
        if found is not None:
            district[i] = found.group(0)
    return unit, district


def location_mismatches(
    layer: Layer, units: gpd.GeoDataFrame, *, working_crs: str,
    aliases: Sequence[tuple[str, str]] = (),
) -> pd.DataFrame:
    """Rows whose point lands more than the layer's tolerance outside the place they name.

    Returns
    -------
    pandas.DataFrame
        One row per such point: ``layer``, ``source_row``, ``name``, ``named`` (the place
        the row names), ``landed`` (the 街镇 and district it lands in, or "no 街镇") and
        ``distance_m`` (how far outside the named place), and the point's ``lon``/``lat``
        (EPSG:4326, for maps), indexed by position in ``layer.points``.
    """
    spec = layer.spec
    points = layer.points
    empty = pd.DataFrame(columns=MISMATCH_COLUMNS)
    if spec.location_check == "off" or len(points) == 0 or len(units) == 0:
        return empty
    unit, district = claimed_places(points, spec, units, aliases=aliases)
    named = np.where(pd.notna(unit), unit, district)
    has = pd.notna(named)
    if not has.any():
        return empty
    shapes = units.to_crs(working_crs)
    by_unit = {str(k): shapely.union_all(g.geometry.to_numpy())
               for k, g in shapes.groupby("unit")}
    by_district = {str(k): shapely.union_all(g.geometry.to_numpy())
                   for k, g in shapes.groupby("district") if str(k).strip()}
    targets = np.array([by_unit.get(u) if u is not None else by_district.get(d)
                        for u, d in zip(unit[has], district[has], strict=True)], dtype=object)
    rows = np.flatnonzero(has)
    xy = points.geometry.iloc[rows].to_crs(working_crs).to_numpy()
    distance = shapely.distance(xy, targets)
    far = distance > spec.location_tolerance_m
    if not far.any():
        return empty
    far_rows = rows[far]
    landed_in = _landing(points.geometry.iloc[far_rows].to_numpy(), units)
    at = points.geometry.iloc[far_rows].to_crs("EPSG:4326").to_numpy()
    return pd.DataFrame({
        "layer": spec.key,
        "source_row": points["source_row"].to_numpy()[far_rows],
        "name": points["name"].to_numpy()[far_rows],
        "named": named[far_rows],
        "landed": landed_in,
        "distance_m": np.round(distance[far], 0),
        "lon": np.round(shapely.get_x(at), 6),
        "lat": np.round(shapely.get_y(at), 6),
    }, index=far_rows, columns=MISMATCH_COLUMNS)


def _landing(geometry: npt.NDArray[np.object_], units: gpd.GeoDataFrame) -> list[str]:
    tree = shapely.STRtree(units.geometry.to_numpy())
    src, tgt = tree.query(geometry, predicate="within")
    out = ["no 街镇"] * len(geometry)
    names = units["unit"].astype(str).to_numpy()
    districts = units["district"].astype(str).to_numpy()
    for s, t in zip(src, tgt, strict=True):
        out[int(s)] = f"{districts[t]} {names[t]}".strip()
    return out


def set_aside_rows(layer: Layer, mismatches: pd.DataFrame) -> Layer:
    """``layer`` with the rows of ``mismatches`` moved to its rejected table, with reasons."""
    if mismatches.empty:
        return layer
    positions = mismatches.index.to_numpy()
    keep = np.ones(len(layer.points), dtype=bool)
    keep[positions] = False
    points = layer.points
    reasons = [f"names {r.named} but lands in {r.landed}, {r.distance_m:.0f} m outside it"
               for r in mismatches.itertuples()]
    src_x = (points["src_x"].to_numpy()[positions].astype(str) if "src_x" in points
             else shapely.get_x(points.geometry.to_numpy()[positions]).astype(str))
    src_y = (points["src_y"].to_numpy()[positions].astype(str) if "src_y" in points
             else shapely.get_y(points.geometry.to_numpy()[positions]).astype(str))
    moved = pd.DataFrame({"layer": layer.spec.key, "source_row": mismatches["source_row"],
                          "name": mismatches["name"], "reason": reasons,
                          "src_x": src_x, "src_y": src_y})
    rejected = pd.concat([layer.rejected, moved.reset_index(drop=True)], ignore_index=True)
    kept = points.loc[keep].reset_index(drop=True)
    kept.attrs = dict(points.attrs)
    return Layer(spec=layer.spec, points=kept, rejected=rejected, n_source=layer.n_source)
