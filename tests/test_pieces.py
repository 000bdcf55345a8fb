"""The coverage overlays measured tile by tile (scale.pieces) add up to the whole overlays."""

from __future__ import annotations

import numpy as np
import shapely

from coverage15.reach import coverage
from coverage15.scale import pieces, tiles
from coverage15.scale.partition import tile_partitions


def test_core_boxes_partition_the_plane():
    origin, size, shape = tile_partitions((0.0, 0.0, 10_000.0, 5_000.0), 4)
    outer = (-3_000.0, -2_000.0, 14_000.0, 9_000.0)  # units and areas beyond the network
    boxes = [shapely.box(*b) for b in pieces.core_boxes(origin, size, shape, outer).values()]
    total = shapely.area(shapely.box(*outer))
    assert np.isclose(sum(shapely.area(b) for b in boxes), total, rtol=1e-12)
    assert np.isclose(shapely.area(shapely.union_all(boxes)), total, rtol=1e-12)
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert shapely.area(shapely.intersection(a, b)) == 0.0


def test_unit_spanning_four_tiles_is_summed_exactly(central_run, tmp_path):
    """A 街镇 at the crossing of four tiles: its four pieces add up to the one overlay."""
    net = central_run.network
    store = tiles.write_store(net, tmp_path / "store")
    (x0, y0), (x1, y1) = net.node_xy.min(axis=0), net.node_xy.max(axis=0)
    origin, size, shape = tile_partitions((x0, y0, x1, y1), 4)
    assert min(shape) >= 2
    cross = origin + size
    unit = shapely.Point(*cross).buffer(1_500.0, quad_segs=8)  # a round 街镇, 7 km²
    units = np.array([unit, shapely.box(x0, y0, x0 + 800.0, y0 + 800.0)], dtype=object)
    union = central_run.unions["centre"]
    boxes = pieces.core_boxes(origin, size, shape, tuple(shapely.total_bounds(
        np.array([*units, union, net.extent], dtype=object))))
    made = pieces.piece_tasks(store, boxes, {"units": units}, streets=["units"],
                              union_bounds=[{"centre": tuple(shapely.bounds(union))}])
    assert sum(0 in task.positions["units"] for task, _ in made) == 4  # cut in four
    found = [pieces.run_pieces(task, {"centre": union}) for task, _ in made]
    summed = pieces.sum_pieces(found, {"units": len(units)})["units"]

    inside = shapely.intersection(units, net.extent)
    np.testing.assert_allclose(summed[coverage.EXTENT_M2], shapely.area(inside), rtol=1e-9)
    np.testing.assert_allclose(summed["centre"], coverage._area_inside(units, union),
                               rtol=1e-9)
    left, right = net.tree.query(inside, predicate="intersects")
    street = np.bincount(left, weights=shapely.length(shapely.intersection(
        inside[left], net.edge_geometry[right])), minlength=len(units))
    np.testing.assert_allclose(summed[coverage.STREET_M], street, rtol=1e-9)
    assert (summed[coverage.WITHIN] > 0).tolist() == shapely.within(units, net.extent).tolist()
    assert summed[coverage.EXTENT_M2][0] > 0
    assert summed["centre"][0] > 0
