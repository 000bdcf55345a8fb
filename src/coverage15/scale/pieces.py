"""The coverage step's overlays, tile by tile on the workers, summed in the main process.

The costly part of the coverage step is geometry: each 街镇's (and district's) area inside the
network's extent, inside each layer's union of service areas, and the length of street inside
it (for the network's completeness). All three are sums of measures, so they split exactly
over any partition of the plane: the *core boxes* of the tiles (:func:`core_boxes`), which
share only their borders (of zero area and, for almost every street, zero length), the outer
tiles stretched to hold every unit, union and the extent. A tile's task
(:class:`PieceTask`) carries its core box, the polygons that touch it (with their positions)
and which layers' tile unions can reach into it; the worker unites the neighbouring tiles'
unions clipped to its core box (their overlaps, between facilities of different tiles, are
united there, not in the main process), cuts its core's streets from the tile store and
returns, per polygon, what lies inside its core. :func:`sum_pieces` adds the tiles' answers
per polygon, in tile order, so a 街镇 spanning four tiles gets the sum of four pieces.

The sums equal the single run's overlays up to floating-point summation (about 1e-12
relative); the reports round shares to 4 digits, so they come out the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import shapely

from coverage15._types import FloatArray, IntArray
from coverage15.reach.coverage import EXTENT_M2, STREET_M, WITHIN
from coverage15.reach.service_areas import union_areas
from coverage15.scale.tiles import TileStore, load_tile

__all__ = ["PieceTask", "core_boxes", "piece_tasks", "run_pieces", "sum_pieces"]


Bounds = tuple[float, float, float, float]
Pieces = dict[str, dict[str, tuple[IntArray, FloatArray]]]
"""Per polygon set, per measure: (positions, values) of the polygons the tile touched."""


@dataclass(frozen=True)
class PieceTask:
    """One tile's share of the coverage overlays: a box, the polygons touching it, the layers.

    ``polygons[name]`` are the set's polygons touching ``box`` (whole: the worker intersects
    them with its pieces, each of which lies in ``box``), ``positions[name]`` their
    positions in the set; ``streets`` names the sets whose street length is wanted;
    ``neighbours`` are the indexes (into the tile results passed with the task) of the
    phase-one tiles whose unions reach into ``box``.
    """

    index: int
    store: TileStore
    box: Bounds
    polygons: dict[str, np.ndarray]
    positions: dict[str, IntArray]
    streets: tuple[str, ...]
    layers: tuple[str, ...]


def core_boxes(origin: FloatArray, size: float, shape: tuple[int, int],
               outer: Bounds) -> dict[tuple[int, int], Bounds]:
    """The tiles' core boxes: a partition of ``outer`` (and of the tiles' grid) into boxes.

    Tile ``(i, j)`` spans ``origin + (i, j) * size`` and one ``size`` more; the first and last
    column and row are stretched to ``outer``'s edges, so that nothing beyond the network's
    bounds (a 街镇 or a service area reaching past the last street) is lost. Neighbouring
    boxes share the same border coordinates, so no area is counted twice.
    """
    cols, rows = shape
    xs = origin[0] + size * np.arange(cols + 1, dtype=float)
    ys = origin[1] + size * np.arange(rows + 1, dtype=float)
    xs[0], xs[-1] = min(xs[0], outer[0]), max(xs[-1], outer[2])
    ys[0], ys[-1] = min(ys[0], outer[1]), max(ys[-1], outer[3])
    return {(i, j): (float(xs[i]), float(ys[j]), float(xs[i + 1]), float(ys[j + 1]))
            for i in range(cols) for j in range(rows)}


def piece_tasks(store: TileStore, boxes: Mapping[tuple[int, int], Bounds],
                polygons: Mapping[str, np.ndarray], *, streets: Sequence[str],
                union_bounds: Sequence[Mapping[str, Bounds | None]],
                ) -> list[tuple[PieceTask, list[int]]]:
    """The piece tasks of every core box that some polygon touches, with their neighbours.

    ``union_bounds[t][layer]`` is the bounds of phase-one tile ``t``'s union of that layer
    (None: empty). Returns each task with the phase-one tiles whose unions touch its box.
    """
    trees = {name: shapely.STRtree(p) for name, p in polygons.items()}
    ub = [{k: b for k, b in u.items() if b is not None} for u in union_bounds]
    out: list[tuple[PieceTask, list[int]]] = []
    for _, bounds in sorted(boxes.items()):
        box = shapely.box(*bounds)
        found = {name: np.sort(tree.query(box, predicate="intersects"))
                 for name, tree in trees.items()}
        if not any(len(f) for f in found.values()):
            continue
        near = [t for t, u in enumerate(ub)
                if any(_overlap(b, bounds) for b in u.values())]
        layers = tuple(sorted({k for t in near for k in ub[t]}))
        task = PieceTask(index=len(out), store=store, box=bounds,
                         polygons={n: polygons[n][f] for n, f in found.items()},
                         positions={n: f.astype(np.int64) for n, f in found.items()},
                         streets=tuple(streets), layers=layers)
        out.append((task, near))
    return out


def _overlap(a: Bounds, b: Bounds) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


def run_pieces(task: PieceTask, *unions: Mapping[str, shapely.Geometry]) -> Pieces:
    """On a worker: what of each polygon lies in the task's box (extent, streets, layers).

    ``unions`` are the neighbouring phase-one tiles' unions, per layer.
    """
    box = shapely.box(*task.box)
    whole_extent = shapely.from_wkb(task.store.extent_wkb)
    shapely.prepare(whole_extent)
    extent = _clip(whole_extent, task.box)
    covers = {}
    for key in task.layers:
        parts = [_clip(u[key], task.box) for u in unions
                 if key in u and not shapely.is_empty(u[key])]
        # the neighbours' unions overlap where facilities of two tiles reach: united here
        covers[key] = union_areas(np.array(parts, dtype=object))
    net = load_tile(task.store, box) if task.streets else None
    out: Pieces = {}
    for name, polygons in task.polygons.items():
        where = task.positions[name]
        inside = shapely.intersection(polygons, extent)
        measures = {EXTENT_M2: (where, np.asarray(shapely.area(inside), dtype=float)),
                    # the whole polygon: which units show 100 % inside (reach.coverage)
                    WITHIN: (where, shapely.within(polygons, whole_extent).astype(float))}
        if net is not None and name in task.streets:
            measures[STREET_M] = (where, _street_inside(inside, net.edge_geometry))
        for key, cover in covers.items():
            measures[key] = (where, _area_inside(polygons, cover))
        out[name] = measures
    return out


def _clip(geometry: shapely.Geometry, box: Bounds) -> shapely.Geometry:
    """``geometry`` within ``box``, made valid in the rare case the clip is not.

    A rectangle clip: ten times a general intersection's speed on a tile's union.
    """
    clipped = shapely.clip_by_rect(geometry, *box)
    return clipped if shapely.is_valid(clipped) else shapely.make_valid(clipped)


def _street_inside(polygons: np.ndarray, edges: np.ndarray) -> FloatArray:
    """The length of ``edges`` inside each polygon (each a unit's part in the box).

    An edge wholly inside a polygon counts its whole length; only the edges that cross a
    polygon's boundary are cut (most of a 街镇's streets lie inside it).
    """
    left, right = shapely.STRtree(edges).query(polygons, predicate="intersects")
    shapely.prepare(polygons)
    whole = shapely.contains_properly(polygons[left], edges[right])
    lengths = shapely.length(edges[right])
    cut = ~whole
    lengths[cut] = shapely.length(shapely.intersection(polygons[left[cut]], edges[right[cut]]))
    return np.bincount(left, weights=lengths, minlength=len(polygons)).astype(np.float64)


def _area_inside(polygons: np.ndarray, cover: shapely.Geometry) -> FloatArray:
    """Each polygon's area inside ``cover`` (part by part: the parts are disjoint)."""
    if shapely.is_empty(cover):
        return np.zeros(len(polygons))
    parts = shapely.get_parts(cover)
    left, right = shapely.STRtree(parts).query(polygons, predicate="intersects")
    inside = shapely.area(shapely.intersection(polygons[left], parts[right]))
    return np.bincount(left, weights=inside, minlength=len(polygons)).astype(np.float64)


def sum_pieces(results: Sequence[Pieces], sizes: Mapping[str, int],
               ) -> dict[str, dict[str, FloatArray]]:
    """The tiles' pieces added up per polygon (in tile order), per set and measure."""
    out: dict[str, dict[str, FloatArray]] = {name: {} for name in sizes}
    for pieces in results:
        for name, measures in pieces.items():
            for key, (where, values) in measures.items():
                total = out[name].setdefault(key, np.zeros(sizes[name]))
                total += np.bincount(where, weights=values, minlength=sizes[name])
    return out
