"""Checks of a run's inputs that look across layers, collected rather than raised.

Row-level problems (missing or swapped coordinates, duplicates) are handled where rows are
read, in :mod:`.layers`, and end up in the rejected table. The checks here need more
than one input: unit names against the official list, whether a layer's declared coordinate
system fits the 街镇 its rows name, and facilities that fall inside the network's extent but
too far from any street. Each returns :class:`Problem` records for the run's report.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from coverage15._errors import CheckError
from coverage15.inputs import coords
from coverage15.inputs._palette import layer_colours
from coverage15.inputs.layers import Layer, read_table
from coverage15.inputs.places import (
    MISMATCH_COLUMNS,
    claimed_places,
    location_mismatches,
    set_aside_rows,
)

if TYPE_CHECKING:
    from coverage15.inputs.config import RunConfig

__all__ = [
    "SET_ASIDE_STOP_MIN_ROWS",
    "SET_ASIDE_STOP_SHARE",
    "Problem",
    "check_locations",
    "crs_fit_problems",
    "enforce",
    "input_problems",
    "location_problems",
    "official_name_problems",
    "outside_problems",
    "overlap_problems",
    "problems_frame",
    "set_aside_problems",
    "shared_point_problems",
]

Severity = Literal["error", "warning", "info"]
CRS_FIT_MIN_ROWS = 20
CRS_FIT_MARGIN = 0.05
CRS_FIT_SAMPLE = 5_000  # rows of a larger layer checked, evenly spread
_SUFFIX = re.compile(r"(街道|镇|乡|新区|地区办事处|办事处)$")


@dataclass(frozen=True)
class Problem:
    """One finding about the inputs.

    Attributes
    ----------
    severity : {"error", "warning", "info"}
    input : str
        The layer key or input name (``units``, ``demand``...).
    message : str
        What is wrong and what to do.
    count : int
        Rows concerned.
    id : str
        For a problem that would change a verdict (severity ``"error"``): the id that accepts
        it (``crs-fit:centre``), in ``[accept] warnings`` or ``--accept``. Empty otherwise.
    """

    severity: Severity
    input: str
    message: str
    count: int = 0
    id: str = ""


def problems_frame(problems: list[Problem]) -> pd.DataFrame:
    """Problems as a table (``severity``, ``input``, ``count``, ``message``, ``id``)."""
    return pd.DataFrame(
        [(p.severity, p.input, p.count, p.message, p.id) for p in problems],
        columns=["severity", "input", "count", "message", "id"],
    )


def enforce(problems: list[Problem], accept: Sequence[str]) -> list[Problem]:
    """Stop on a problem that would change a verdict, unless it is accepted.

    A problem of severity ``"error"`` stops the run with one :class:`CheckError` naming every
    such problem and its id. An accepted one (its id, or ``input:*``/``*`` in ``accept``)
    stays in the list as a warning that says it was accepted, so the outputs record it.

    Returns
    -------
    list of Problem
        ``problems`` with the accepted ones marked.

    Raises
    ------
    CheckError
        When a problem of severity ``"error"`` is not accepted.
    """
    accepted = set(accept)
    out: list[Problem] = []
    stops: list[Problem] = []
    for problem in problems:
        if problem.severity != "error":
            out.append(problem)
            continue
        kind = problem.id.split(":", 1)[0]
        if problem.id and (problem.id in accepted or f"{kind}:*" in accepted
                           or "*" in accepted):
            out.append(dataclasses.replace(
                problem, severity="warning",
                message=f"ACCEPTED ({problem.id}): {problem.message}"))
        else:
            stops.append(problem)
    if stops:
        listing = "\n  ".join(f"[{p.id or 'must be fixed'}] {p.input}: {p.message}"
                              for p in stops)
        ids = [p.id for p in stops if p.id]
        quoted = ", ".join('"' + i + '"' for i in ids)
        hint = ("fix the input, or to go ahead anyway accept explicitly: [accept] warnings = "
                f"[{quoted}] in the config, or --accept " + " --accept ".join(ids)
                if ids else "fix the input")
        msg = (f"run stopped: {len(stops)} problem(s) would change verdicts:\n  {listing}\n"
               f"{hint}")
        raise CheckError(msg)
    return out


SET_ASIDE_STOP_SHARE = 0.2
"""A layer losing more than this share of its rows (set aside one by one) stops the run..."""
SET_ASIDE_STOP_MIN_ROWS = 10
"""...when it loses at least this many (a hand-made list of three losing two is a note)."""


def set_aside_problems(layer: Layer) -> list[Problem]:
    """A layer that lost more than :data:`SET_ASIDE_STOP_SHARE` of its rows: a stop.

    Rows set aside one by one are normal; most of a layer set aside means its columns, its
    coordinate order or its file is wrong, and the figures built on the rest would mislead.
    """
    lost = len(layer.rejected)
    if (layer.n_source == 0 or lost <= SET_ASIDE_STOP_SHARE * layer.n_source
            or lost < SET_ASIDE_STOP_MIN_ROWS):
        return []
    reasons = "; ".join(f"{n} {r}" for r, n in layer.set_aside_counts().head(3).items())
    key = layer.spec.key
    return [Problem(
        "error", key, f"{lost} of {layer.n_source} rows ({lost / layer.n_source:.0%}) set "
        f"aside, more than {SET_ASIDE_STOP_SHARE:.0%} ({reasons}); check the x/y columns, the "
        "file and the filter", lost, id=f"set-aside:{key}")]


def official_name_problems(units: gpd.GeoDataFrame, official: Path,
                           *, name_column: str = "name") -> list[Problem]:
    """Units whose name is not on the official list (e.g. NBS 街镇 codes).

    Parameters
    ----------
    units
        Unit polygons with a ``unit`` column.
    official
        CSV with a ``name`` column of official names.
    name_column
        Column of official names in that file.
    """
    table = read_table(official, what="official names")
    if name_column not in table.columns:
        return [Problem("warning", "units", f"official names {official.name}: no column "
                        f"{name_column!r}; names not checked")]
    names = set(table[name_column].astype(str).str.strip())
    unknown = sorted(set(units["unit"]) - names)
    if not unknown:
        return []
    stems = {_SUFFIX.sub("", n): n for n in names}
    hints = []
    for name in unknown:
        near = stems.get(_SUFFIX.sub("", name))
        hints.append(f"{name} (official: {near}?)" if near else name)
    return [Problem(
        "warning", "units",
        f"{len(unknown)} unit name(s) not on the official list {official.name}: "
        + ", ".join(hints)
        + "; add [units] aliases = {\"source name\" = \"official name\"} to rename",
        len(unknown),
    )]


def _landing(lng: npt.NDArray[np.float64], lat: npt.NDArray[np.float64],
             units: gpd.GeoDataFrame) -> tuple[npt.NDArray[np.object_], npt.NDArray[np.object_]]:
    """The 街镇 and district each WGS84 point lands in (None outside all)."""
    points = shapely.points(lng, lat)
    tree = shapely.STRtree(units.geometry.to_numpy())
    src, tgt = tree.query(points, predicate="within")
    unit = np.full(len(points), None, dtype=object)
    district = np.full(len(points), None, dtype=object)
    unit[src] = units["unit"].to_numpy()[tgt]
    district[src] = units["district"].to_numpy()[tgt]
    return unit, district


def crs_fit_problems(layer: Layer, units: gpd.GeoDataFrame,
                     *, aliases: Sequence[tuple[str, str]] = ()) -> list[Problem]:
    """Check that a layer's coordinate system puts rows in the 街镇 they name.

    Rows name their 街镇 or district either in the layer's ``unit_field`` or, failing that,
    inside their own name (e.g. "上海市徐汇区湖南路街道社区长者食堂" names 湖南路街道; see
    :func:`coverage15.inputs.places.claimed_places`). The points as
    loaded are compared with other readings of the same numbers: a table's raw longitude and
    latitude (``src_x``/``src_y``) read as WGS84, GCJ-02 and BD-09; a file's points (whose
    CRS the file or the config gives) read as GCJ-02 or BD-09 coordinates labelled WGS84, the
    common mistake of saving a Chinese map provider's coordinates as EPSG:4326. If another
    reading puts clearly more rows in their named 街镇, that is reported as a problem that
    stops the run (id ``crs-fit:KEY``) unless accepted: the figures would be wrong.

    Parameters
    ----------
    layer
        A loaded point layer.
    units
        街镇 polygons in EPSG:4326.

    Returns
    -------
    list of Problem
        At most one: an error (a stop) when another reading fits clearly better.
    """
    spec = layer.spec
    points = layer.points
    if len(points) == 0:
        return []

    def named(rows: gpd.GeoDataFrame) -> tuple[npt.NDArray[np.object_], npt.NDArray[np.bool_]]:
        """The place each row names (a 街镇, else "区:" and a district), and which do."""
        unit, district = claimed_places(rows, spec, units, aliases=aliases)
        claimed = np.array([u if u is not None else (f"区:{d}" if d is not None else None)
                            for u, d in zip(unit, district, strict=True)], dtype=object)
        return claimed, pd.notna(claimed)

    def fit_of(xy: npt.NDArray[np.float64], claimed: npt.NDArray[np.object_]) -> float:
        unit, district = _landing(xy[:, 0], xy[:, 1], units)
        landed = np.where([str(c).startswith("区:") for c in claimed],
                          np.array([f"区:{d}" for d in district], dtype=object), unit)
        return float(np.mean(landed == claimed))

    # an even sample of a large layer tells a wrong CRS as well as every row does; when too
    # few sampled rows name a 街镇, every row is looked at
    if len(points) > CRS_FIT_SAMPLE:
        sample = points.iloc[np.linspace(0, len(points) - 1, CRS_FIT_SAMPLE).astype(np.int64)]
        claimed, usable = named(sample)
        if usable.sum() >= CRS_FIT_MIN_ROWS:
            points = sample
        else:
            claimed, usable = named(points)
            keep = np.flatnonzero(usable)
            keep = keep[np.linspace(0, len(keep) - 1, min(len(keep), CRS_FIT_SAMPLE))
                        .astype(np.int64)] if len(keep) else keep
            usable = np.zeros(len(points), dtype=bool)
            usable[keep] = True
    else:
        claimed, usable = named(points)
    if usable.sum() < CRS_FIT_MIN_ROWS:
        return [Problem(
            "info", spec.key, f"coordinates not checked against the 街镇 the rows name: "
            f"{int(usable.sum())} of {len(points)} rows name a 街镇 or district "
            f"({CRS_FIT_MIN_ROWS} needed; unit_field can name a column holding each row's "
            "街镇 or district)", int(usable.sum()))]
    loaded = shapely.get_coordinates(points.geometry.to_numpy()[usable])
    raw = None
    if "src_x" in points:
        raw = np.column_stack([pd.to_numeric(points["src_x"], errors="coerce"),
                               pd.to_numeric(points["src_y"], errors="coerce")])[usable]
        if not (np.isfinite(raw).all() and (np.abs(raw[:, 0]) <= 180).all()
                and (np.abs(raw[:, 1]) <= 90).all()):
            raw = None  # projected numbers: no other geographic reading to try
    base = loaded if raw is None else raw
    readings = {"declared": loaded, "wgs84": base}
    readings["gcj02"] = np.column_stack(coords.to_wgs84(base[:, 0], base[:, 1], "gcj02"))
    readings["bd09"] = np.column_stack(coords.to_wgs84(base[:, 0], base[:, 1], "bd09"))
    fit = {k: fit_of(xy, claimed[usable]) for k, xy in readings.items()}
    best = max(("wgs84", "gcj02", "bd09"), key=lambda k: fit[k])
    if fit[best] - fit["declared"] < CRS_FIT_MARGIN:
        return []
    n = int(usable.sum())
    if raw is None:  # a file's points
        said = f"the file's CRS{f' (config: crs = {spec.crs!r})' if spec.crs else ''}"
        return [Problem(
            "error", spec.key,
            f"{said} may be wrong: as loaded {fit['declared']:.0%} of {n} rows land in the "
            f"街镇 they name, read as {best} coordinates {fit[best]:.0%}; set crs = "
            f"\"{best}\" in the layer's config if the points were saved from a Chinese map "
            f"provider ({'Gaode/Tencent' if best == 'gcj02' else 'Baidu'}) as if WGS84",
            n, id=f"crs-fit:{spec.key}")]
    if best == "wgs84":
        advice = ("set crs = \"EPSG:4326\" if the coordinates are GPS/WGS84 (not from a "
                  "Chinese map provider)")
    else:
        advice = (f"set crs = \"{best}\" if the coordinates come from a Chinese map provider "
                  f"({'Gaode/Tencent' if best == 'gcj02' else 'Baidu'})")
    return [Problem(
        "error", spec.key,
        f"declared crs {spec.crs!r} may be wrong: read as declared {fit['declared']:.0%} of "
        f"{n} rows land in the 街镇 they name, as {best} {fit[best]:.0%}; {advice}", n,
        id=f"crs-fit:{spec.key}")]


def location_problems(layer: Layer, mismatches: pd.DataFrame) -> list[Problem]:
    """One finding for a layer's rows that land outside the place they name.

    A warning when they are flagged (they still count), an info line when set aside (they
    are in ``rejected.csv`` with their reasons).
    """
    if mismatches.empty:
        return []
    n = len(mismatches)
    spec = layer.spec
    examples = "; ".join(
        f"{r.name} names {r.named}, lands in {r.landed} ({r.distance_m:.0f} m outside)"
        for r in mismatches.head(3).itertuples())
    if spec.location_check == "set_aside":
        return [Problem("info", spec.key, f"{n} row(s) set aside: they land more than "
                        f"{spec.location_tolerance_m:.0f} m outside the 街镇 or district "
                        f"they name (e.g. {examples})", n)]
    return [Problem(
        "warning", spec.key, f"{n} row(s) land more than {spec.location_tolerance_m:.0f} m "
        f"outside the 街镇 or district they name and still count where they land (e.g. "
        f"{examples}); check their geocoding, or set location_check = \"set_aside\" in "
        f"[layers.{spec.key}]", n)]


def outside_problems(key: str, unit_of: npt.ArrayLike) -> list[Problem]:
    """Points that lie in no 街镇 (``unit_of`` < 0), as one warning.

    A few are a layer's points beyond the city or on a river; most or all of them mean the
    coordinates or their CRS are wrong, and the warning says so.
    """
    where = np.asarray(unit_of)
    outside = int((where < 0).sum())
    if outside == 0:
        return []
    if outside * 2 > len(where):
        text = (f"{outside} of {len(where)} point(s) lie in no 街镇: check the layer's "
                "coordinates and its crs (are they in Shanghai at all?)")
    else:
        text = (f"{outside} point(s) lie in no 街镇: they count for walking but in no 街镇's "
                "or district's figures")
    return [Problem("warning", key, text, outside)]


SHARED_POINT_MIN_ROWS = 5
"""Rows at exactly one point that suggest a geocoding fallback (with ``SHARED_POINT_SHARE``)..."""
SHARED_POINT_SHARE = 0.005
"""...and at least this share of the layer's rows (a big compound may hold a few addresses)."""


def shared_point_problems(layer: Layer) -> list[Problem]:
    """Many differently named rows at exactly one point: likely a geocoder's fallback.

    A geocoder that cannot place an address often returns a fixed point (a city centre, a
    district office). Such rows would all count for the 街镇 around that point. A point shared
    by at least ``SHARED_POINT_MIN_ROWS`` rows, ``SHARED_POINT_SHARE`` of the layer, with at
    least three different names is reported, with the ``exclude_points`` entry that sets
    those rows aside (in the source's coordinates).
    """
    points = layer.points
    if len(points) < SHARED_POINT_MIN_ROWS:
        return []
    table = "src_x" in points
    if table:
        x = pd.to_numeric(points["src_x"], errors="coerce").to_numpy(dtype=float)
        y = pd.to_numeric(points["src_y"], errors="coerce").to_numpy(dtype=float)
    else:
        x, y = shapely.get_coordinates(points.geometry.to_numpy()).T
    frame = pd.DataFrame({"x": np.round(x, 7), "y": np.round(y, 7),
                          "name": points["name"].astype(str).to_numpy()})
    counts = frame.groupby(["x", "y"])["name"].agg(["size", "nunique"])
    least = max(SHARED_POINT_MIN_ROWS, math.ceil(SHARED_POINT_SHARE * len(points)))
    suspect = counts[(counts["size"] >= least) & (counts["nunique"] >= 3)]
    problems = []
    for (px, py), row in suspect.sort_values("size", ascending=False).iterrows():
        names = frame.loc[(frame["x"] == px) & (frame["y"] == py), "name"].head(3).tolist()
        at = f"{float(px)!r}, {float(py)!r}"  # every digit: exclude_points match exactly
        advice = (f"if so, add exclude_points = [[{at}]] to [layers.{layer.spec.key}]"
                  if table else "if so, remove those rows or fix their coordinates")
        problems.append(Problem(
            "warning", layer.spec.key,
            f"{int(row['size'])} rows with different names lie exactly at one point "
            f"({at}; e.g. {', '.join(names)}): a geocoding fallback? {advice}",
            int(row["size"])))
    return problems


OVERLAP_MIN_SHARE = 0.01
"""Two units overlapping by more than this share of the smaller one are reported..."""
OVERLAP_MIN_M2 = 10_000.0
"""...if the overlap is also larger than this (slivers along shared borders are not)."""


def overlap_problems(units: gpd.GeoDataFrame, working_crs: str) -> list[Problem]:
    """Units (街镇) that overlap: a point in both counts for the first one only.

    Parameters
    ----------
    units
        Unit polygons with ``unit`` and ``district`` columns.
    working_crs
        A projected CRS in metres, for the areas.

    Returns
    -------
    list of Problem
        At most one warning, naming the largest overlaps.
    """
    shapes = shapely.make_valid(units.geometry.to_crs(working_crs).to_numpy())
    left, right = shapely.STRtree(shapes).query(shapes, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    if len(left) == 0:
        return []
    overlap = shapely.area(shapely.intersection(shapes[left], shapes[right]))
    smaller = np.minimum(shapely.area(shapes[left]), shapely.area(shapes[right]))
    big = (overlap > OVERLAP_MIN_M2) & (overlap > OVERLAP_MIN_SHARE * smaller)
    if not big.any():
        return []
    names = units["unit"].astype(str).to_numpy()
    order = np.argsort(-overlap[big])
    pairs = [f"{names[a]} / {names[b]} {o / 1e6:.2f} km² ({o / s:.0%} of the smaller)"
             for a, b, o, s in zip(left[big][order], right[big][order], overlap[big][order],
                                   smaller[big][order], strict=True)]
    return [Problem(
        "warning", "units", f"{len(pairs)} pair(s) of 街镇 overlap, so a point in both counts "
        f"for the first in the file only: {'; '.join(pairs[:5])}", len(pairs))]


def check_locations(
    layers: dict[str, Layer], units: gpd.GeoDataFrame, *, working_crs: str,
    aliases: Sequence[tuple[str, str]] = (),
) -> tuple[dict[str, Layer], list[Problem], pd.DataFrame]:
    """The location check of every layer (see :mod:`coverage15.inputs.places`).

    Returns
    -------
    (layers, problems, mismatches)
        The layers, with rows set aside where a layer's ``location_check`` is
        ``"set_aside"``; one finding per layer with such rows; and every such row.
    """
    out: dict[str, Layer] = {}
    problems: list[Problem] = []
    found = []
    for key, layer in layers.items():
        mismatches = location_mismatches(layer, units, working_crs=working_crs,
                                         aliases=aliases)
        problems += location_problems(layer, mismatches)
        found.append(mismatches.assign(action=layer.spec.location_check))
        out[key] = (set_aside_rows(layer, mismatches)
                    if layer.spec.location_check == "set_aside" else layer)
    table = (pd.concat(found, ignore_index=True) if found
             else pd.DataFrame(columns=[*MISMATCH_COLUMNS, "action"]))
    return out, problems, table


def input_problems(config: RunConfig, units: gpd.GeoDataFrame, layers: dict[str, Layer],
                   demand: Layer | None) -> list[Problem]:
    """Every check across a run's loaded inputs, and counts of the rows set aside.

    The units (repaired, dropped, overlapping, off the official list), the basemap and the
    layers' colours, and per layer: rows set aside, CRS fit, geocoding fallbacks and rows
    that were not points.
    """
    problems: list[Problem] = []
    repaired = int(units["repaired"].sum()) if "repaired" in units else 0
    if repaired:
        names = ", ".join(units.loc[units["repaired"], "unit"].head(5))
        problems.append(Problem("warning", "units", f"{repaired} invalid polygon(s) repaired "
                                f"with make_valid: {names}", repaired))
    dropped = units.attrs.get("dropped_empty", [])
    if dropped:
        problems.append(Problem("warning", "units", f"{len(dropped)} empty geometries dropped: "
                                f"{', '.join(dropped[:5])}", len(dropped)))
    problems += overlap_problems(units, config.analysis.working_crs)
    if config.official_names is not None:
        problems += official_name_problems(units, config.official_names)
    tiles = config.map.tiles.lower()
    if any(name in tiles for name in ("gaode", "amap", "autonavi", "tencent", "baidu", "bdimg")):
        problems.append(Problem(
            "warning", "map", f"tiles {config.map.tiles!r} are drawn in a Chinese map "
            "provider's offset coordinates (GCJ-02/BD-09), the map's data in WGS84: streets "
            "and points will sit hundreds of metres apart; use OpenStreetMap tiles", 1))
    by_colour: dict[str, list[str]] = {}
    for key, colour in layer_colours(config.layers).items():
        by_colour.setdefault(colour, []).append(key)
    for colour, keys in by_colour.items():
        if len(keys) > 1:
            why = ("" if any(config.layers[k].colour for k in keys)
                   else " (more layers than the palette's ten colours)")
            problems.append(Problem(
                "warning", "map", f"layers {', '.join(keys)} are drawn in the same colour "
                f"{colour}{why}: set colour = \"#rrggbb\" in the [layers.KEY] table of one "
                "of them", len(keys)))
    everything = list(layers.values()) + ([demand] if demand is not None else [])
    for layer in everything:
        for reason, count in layer.set_aside_counts().items():
            problems.append(Problem("info", layer.spec.key, f"{count} row(s) set aside: "
                                    f"{reason}", int(count)))
        problems += set_aside_problems(layer)
        problems += crs_fit_problems(layer, units, aliases=config.units.aliases)
        problems += shared_point_problems(layer)
        moved = int(layer.points.attrs.get("not_point", 0))
        if moved:
            problems.append(Problem("warning", layer.spec.key, f"{moved} row(s) are polygons, "
                                    "lines or multipoints: each counts as one site at a point "
                                    "inside it", moved))
    return problems
