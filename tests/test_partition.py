"""Partitioned runs on a Dask LocalCluster give exactly the single-process answer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely

from coverage15.pipeline import run, write_outputs
from coverage15.scale import partition
from coverage15.scale.partition import subnetwork, tile_partitions


@pytest.fixture(scope="module")
def cluster():
    from dask.distributed import Client, LocalCluster

    # threads, not processes, so that a test can make one partition's task fail once
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=":0") as local, Client(local) as client:
        yield client


def test_tiles_cover_the_bounds():
    origin, size, (cols, rows) = tile_partitions((0.0, 0.0, 10_000.0, 5_000.0), 4)
    assert cols * rows >= 4
    assert origin.tolist() == [0.0, 0.0]
    assert cols * size >= 10_000
    assert rows * size >= 5_000


def test_subnetwork_keeps_edges_touching_the_box(central_run):
    net = central_run.network
    x0, y0 = net.node_xy.mean(axis=0)
    box = shapely.box(x0 - 500, y0 - 500, x0 + 500, y0 + 500)
    sub = subnetwork(net, box)
    touching = shapely.intersects(net.edge_geometry, box)
    assert sub.n_edges == int(touching.sum())
    assert np.isclose(sub.edge_length.sum(), net.edge_length[touching].sum())
    assert sub.csr.shape == (sub.n_nodes, sub.n_nodes)


def _assert_same(result, central_run, tmp_path: Path):
    assert result.gap_report.equals(central_run.gap_report)
    for key, facilities in central_run.facilities.items():
        other = result.facilities[key]
        assert (other["on_network"] == facilities["on_network"]).all()
        np.testing.assert_allclose(other["reach_m"], facilities["reach_m"], rtol=1e-12)
    for column in ("centre_n", "meal_point_n", "canteen_n"):
        assert (result.demand[column] == central_run.demand[column]).all()
    np.testing.assert_allclose(result.demand["centre_m"], central_run.demand["centre_m"],
                               rtol=0, atol=1e-9)
    write_outputs(result, tmp_path / "parts", map_html=False, map_png=False)
    write_outputs(central_run, tmp_path / "single", map_html=False, map_png=False)
    assert ((tmp_path / "parts" / "gap_report.csv").read_bytes()
            == (tmp_path / "single" / "gap_report.csv").read_bytes())


def test_partitioned_run_equals_single_run(central_run, cluster, tmp_path):
    result = run(central_run.config, partitions=6, scheduler=cluster)
    assert result.problems == central_run.problems
    _assert_same(result, central_run, tmp_path)


def test_failed_partition_is_retried_and_reported(central_run, cluster, tmp_path,
                                                 monkeypatch):
    real = partition._run_task
    marker = tmp_path / "failed-once"  # tasks are shipped by value: remember through a file

    def flaky(task):
        if task.index == 1 and not marker.exists():
            marker.write_text("1")
            raise RuntimeError("worker lost (simulated)")
        return real(task)

    monkeypatch.setattr(partition, "_run_task", flaky)
    result = run(central_run.config, partitions=4, scheduler=cluster)
    assert marker.exists()
    warnings = [p.message for p in result.problems if p.input == "partitions"]
    assert len(warnings) == 1
    assert "partition 1 failed 1 time(s) and was retried" in warnings[0]
    assert "worker lost (simulated)" in warnings[0]
    _assert_same(result, central_run, tmp_path)


def test_partition_failing_every_time_stops_the_run(central_run, cluster, monkeypatch):
    def broken(task):
        raise RuntimeError("disk full (simulated)")

    monkeypatch.setattr(partition, "_run_task", broken)
    with pytest.raises(partition.PartitionError, match="failed 3 times"):
        run(central_run.config, partitions=4, scheduler=cluster)


def test_local_cluster_of_processes(central_run, tmp_path):
    """The CLI's default: a new LocalCluster of 2 worker processes, started and closed."""
    result = run(central_run.config, partitions=4, scheduler="local")
    assert isinstance(result.gap_report, pd.DataFrame)
    assert result.gap_report.equals(central_run.gap_report)
