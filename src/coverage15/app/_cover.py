"""The area of each 街镇 and district inside a layer's service areas, updated after an edit.

An edit adds and removes a few service-area polygons; the rest (``kept``) stay. With ``S``
the union of the kept polygons, ``A`` of the added and ``R`` of the removed, a shape ``U``
gains ``area(U ∩ (A − S))`` and loses ``area(U ∩ (R − S))`` (as ``area(U ∩ (S ∪ X))`` is
``area(U ∩ S) + area(U ∩ (X − S))``): only the kept polygons near the changed ones are
united, once, and only the shapes near them are intersected, with the small pieces that
changed rather than with the whole cover.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import shapely

__all__ = ["Shapes", "update_covered"]

Shapes = tuple[npt.NDArray[np.object_], npt.NDArray[np.float64]]  # polygons, their bounds
"""Shapes in the working CRS and their bounds (n × 4), e.g. the 街镇 or the districts."""


def update_covered(old: npt.NDArray[np.object_], new: npt.NDArray[np.object_],
                   covered: Sequence[npt.NDArray[np.float64]], shapes: Sequence[Shapes],
                   ) -> tuple[npt.NDArray[np.float64], ...] | None:
    """Each shape's covered area (m²) after the polygons ``old`` became ``new``.

    ``covered`` holds, for each of ``shapes``, the covered area of every shape before.
    Polygons are compared by identity (the engine reuses the same objects for unchanged
    sites). None when nothing changed.
    """
    count_old = Counter(id(p) for p in old)
    count_new = Counter(id(p) for p in new)
    by_id = {id(p): p for p in (*old, *new)}
    added = _polygons(by_id, count_new - count_old)
    removed = _polygons(by_id, count_old - count_new)
    if not len(added) and not len(removed):
        return None
    kept = _polygons(by_id, count_old & count_new)
    kept_bounds = shapely.bounds(kept) if len(kept) else np.zeros((0, 4))
    added_bounds, removed_bounds = shapely.bounds(added), shapely.bounds(removed)
    out = tuple(np.array(c, dtype=float) for c in covered)
    for box in boxes(np.concatenate([added_bounds.reshape(-1, 4),
                                     removed_bounds.reshape(-1, 4)])):
        near = kept[overlaps(kept_bounds, box)]
        other = shapely.union_all(shapely.clip_by_rect(near, *box)) if len(near) else None
        gain = _outside(added[overlaps(added_bounds.reshape(-1, 4), box)], other)
        loss = _outside(removed[overlaps(removed_bounds.reshape(-1, 4), box)], other)
        for (polygons, bounds), now in zip(shapes, out, strict=True):
            at = np.flatnonzero(overlaps(bounds, box))
            if len(at):
                now[at] += (shapely.area(shapely.intersection(polygons[at], gain))
                            - shapely.area(shapely.intersection(polygons[at], loss)))
    return tuple(np.maximum(c, 0.0) for c in out)


def _polygons(by_id: dict[int, shapely.Geometry], ids: Counter[int],
              ) -> npt.NDArray[np.object_]:
    found = [by_id[i] for i in ids if not by_id[i].is_empty]
    return np.array(found, dtype=object) if found else np.array([], dtype=object)


def _outside(polygons: npt.NDArray[np.object_],
             other: shapely.Geometry | None) -> shapely.Geometry:
    """The union of ``polygons`` less ``other`` (empty when there are none)."""
    if not len(polygons):
        return shapely.Polygon()
    union = shapely.union_all(polygons)
    return union if other is None else shapely.difference(union, other)


def overlaps(bounds: npt.NDArray[np.float64], box: tuple[float, ...]) -> npt.NDArray[np.bool_]:
    """Which of the bounding boxes ``bounds`` (n × 4) overlap ``box``."""
    if not len(bounds):
        return np.zeros(0, dtype=bool)
    hit: npt.NDArray[np.bool_] = ((bounds[:, 0] <= box[2]) & (bounds[:, 2] >= box[0])
                                  & (bounds[:, 1] <= box[3]) & (bounds[:, 3] >= box[1]))
    return hit


def boxes(bounds: npt.NDArray[np.float64]) -> list[tuple[float, ...]]:
    """The bounding boxes merged until no two overlap (each a box around a group)."""
    found = [tuple(float(v) for v in b) for b in bounds]
    merged = True
    while merged:
        merged = False
        for i in range(len(found)):
            for j in range(i + 1, len(found)):
                a, b = found[i], found[j]
                if a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]:
                    found[i] = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]),
                                max(a[3], b[3]))
                    del found[j]
                    merged = True
                    break
            if merged:
                break
    return found
