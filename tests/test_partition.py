"""Partitioned runs on a Dask LocalCluster give exactly the single-process answer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely

from coverage15._errors import Coverage15Error
from coverage15.pipeline import run, write_outputs
from coverage15.scale import cluster as dask_cluster
from coverage15.scale import partition, tiles
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


def _same_network(a, b):
    assert a.n_edges == b.n_edges
    assert a.n_nodes == b.n_nodes
    assert (a.node_ids == b.node_ids).all()
    assert (a.node_xy == b.node_xy).all()
    assert (a.edge_u == b.edge_u).all()
    assert (a.edge_v == b.edge_v).all()
    assert (a.edge_length == b.edge_length).all()
    assert shapely.equals_exact(a.edge_geometry, b.edge_geometry, tolerance=0).all()


@pytest.fixture(scope="module")
def store(central_run, tmp_path_factory):
    return tiles.write_store(central_run.network, tmp_path_factory.mktemp("tiles") / "store")


@pytest.mark.parametrize("half", [150.0, 800.0, 3_000.0, 1e6])
def test_tile_from_the_store_is_the_subnetwork(central_run, store, half):
    """A tile cut from the store on disk is exactly the sub-network cut in memory."""
    net = central_run.network
    x0, y0 = net.node_xy.mean(axis=0) + 321.0
    box = shapely.box(x0 - half, y0 - half * 0.7, x0 + half, y0 + half)
    _same_network(tiles.load_tile(store, box), subnetwork(net, box))


def test_tile_is_loaded_on_the_worker(central_run, store, cluster):
    """The worker opens the store itself: what crosses the wire is a path and a box."""
    import pickle

    net = central_run.network
    x0, y0 = net.node_xy.mean(axis=0)
    box = shapely.box(x0 - 1500, y0 - 1500, x0 + 1500, y0 + 1500)
    assert len(pickle.dumps(store)) < 10_000
    remote = cluster.submit(tiles.load_tile, store, box, pure=False).result()
    _same_network(remote, subnetwork(net, box))


def test_tile_of_an_empty_box_is_empty(store):
    assert tiles.load_tile(store, shapely.box(0, 0, 1, 1)).n_edges == 0


def test_missing_dask_is_one_clear_error(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_dask(name, *args, **kwargs):
        if name.split(".")[0] in {"dask", "distributed"}:
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_dask)
    with pytest.raises(dask_cluster.DaskMissingError) as caught:
        dask_cluster.open_client("local", 2)
    assert isinstance(caught.value, Coverage15Error)
    assert 'pip install "coverage15[dask]"' in str(caught.value)
    assert "\n" not in str(caught.value)


def test_cli_without_dask_prints_one_line(monkeypatch, tmp_path, capsys):
    from coverage15 import cli

    def missing(*args, **kwargs):
        raise dask_cluster.DaskMissingError("--scheduler needs Dask: pip install "
                                            '"coverage15[dask]"')

    monkeypatch.setattr(dask_cluster, "open_client", missing)
    from conftest import CENTRAL_CONFIG

    code = cli.main(["run", str(CENTRAL_CONFIG), "--scheduler", "local",
                     "--out", str(tmp_path / "out"), "--no-map", "--no-png"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert 'pip install "coverage15[dask]"' in err[0]


def test_cli_takes_workers_and_partitions_from_the_config(monkeypatch, tmp_path, capsys):
    """``[scale] workers`` and ``partitions`` are used unless --workers/--partitions say."""
    from conftest import CENTRAL_CONFIG
    from coverage15 import cli, pipeline

    config = tmp_path / "c.toml"
    text = CENTRAL_CONFIG.read_text(encoding="utf-8")
    # the targets file is named relative to the config's own folder
    text = text.replace('targets = "', f'targets = "{CENTRAL_CONFIG.parent}/', 1)
    config.write_text(text + "\n[scale]\nworkers = 3\npartitions = 5\n", encoding="utf-8")
    seen: dict[str, object] = {}

    class FakeClient:
        cluster = None

        def scheduler_info(self):
            return {"workers": dict.fromkeys(range(seen["workers"]))}

        def close(self):
            pass

    def fake_open(scheduler, workers=None):
        seen["workers"] = workers
        return FakeClient()

    def fake_run(config, **kwargs):
        seen["partitions"] = kwargs["partitions"]
        raise Coverage15Error("stop here (test)")

    monkeypatch.setattr(dask_cluster, "open_client", fake_open)
    monkeypatch.setattr(pipeline, "run", fake_run)
    args = ["run", str(config), "--scheduler", "local", "--out", str(tmp_path / "out"),
            "--no-map", "--no-png"]
    assert cli.main(args) == 2
    assert seen == {"workers": 3, "partitions": 5}
    assert cli.main([*args, "--workers", "2", "--partitions", "7"]) == 2
    assert seen == {"workers": 2, "partitions": 7}
    capsys.readouterr()


def test_partitions_default_to_a_multiple_of_the_workers(central_run, cluster, monkeypatch):
    seen = {}
    real = partition._on_cluster

    def spy(*args, **kwargs):
        seen["partitions"] = kwargs["partitions"]
        return real(*args, **kwargs)

    monkeypatch.setattr(partition, "_on_cluster", spy)
    run(central_run.config, partitions=None, scheduler=cluster)
    assert seen["partitions"] == partition.PARTITIONS_PER_WORKER * 2


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


def test_unit_spanning_four_tiles_is_combined_exactly(central_run, cluster):
    """A 街镇 cut by the tiles' borders into four pieces gets the single run's row."""
    net = central_run.network
    (x0, y0), (x1, y1) = net.node_xy.min(axis=0), net.node_xy.max(axis=0)
    origin, size, (cols, rows) = tile_partitions((x0, y0, x1, y1), 4)
    corner = [origin + np.array([i, j]) * size for i in range(cols) for j in range(rows)]
    cores = [shapely.box(*c, *(c + size)) for c in corner]
    units = central_run.units.to_crs(net.crs).geometry.to_numpy()
    spans = np.array([sum(shapely.intersects(u, c) and shapely.area(shapely.intersection(u, c))
                          > 1.0 for c in cores) for u in units])
    four = np.flatnonzero(spans >= 4)
    assert len(four) >= 1  # the 街镇 at the crossing of the tiles' borders
    result = run(central_run.config, partitions=4, scheduler=cluster)
    pd.testing.assert_frame_equal(result.gap_report.iloc[four],
                                  central_run.gap_report.iloc[four])
    assert result.gap_report.equals(central_run.gap_report)
    for key, union in central_run.unions.items():
        assert np.isclose(shapely.area(result.unions[key]), shapely.area(union), rtol=1e-9)
    # the unions at the other walking profiles, each tile's built on its worker: the same up
    # to the rounding of the band ends where a tile cuts a chain (2 segments per quarter
    # circle: within 4 m at such a point; 85 m² of 19.9 km² for the meal points)
    for key, unions in central_run.profile_unions.items():
        assert set(result.profile_unions[key]) == set(unions) == {"elderly", "frail"}
        for profile, union in unions.items():
            assert shapely.area(shapely.symmetric_difference(
                result.profile_unions[key][profile], union)) < 1e-5 * shapely.area(union)


def test_main_process_never_makes_the_networks_linestrings(central_run, store, cluster,
                                                            monkeypatch):
    """A network read from its cache and a tile store: the workers cut the streets."""
    import pickle

    from coverage15.reach.coverage import STREET_M

    net = pickle.loads(pickle.dumps(central_run.network))  # as read from the network cache
    assert "edge_geometry" not in net.__dict__
    monkeypatch.setattr(partition, "store_for", lambda _: (store, None))
    units = central_run.units.geometry.to_crs(net.crs).to_numpy()
    layers = {key: layer.points for key, layer in central_run.layers.items()}
    *_, runlog = partition.compute_layers(
        net, layers, None, central_run.config.analysis, partitions=4, scheduler=cluster,
        measure={"units": units}, streets=("units",))
    assert "edge_geometry" not in net.__dict__  # the LineStrings were never made here
    assert runlog.measured["units"][STREET_M].sum() > 0
    assert len(net.edge_geometry) == net.n_edges  # made on first use
