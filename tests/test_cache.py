"""Distance work reused across runs: keyed by network, inputs, settings and code, never stale.

The network is one straight street of 8 edges of 250 m along y = Y0, from x = X0 to X0 + 2000.
Points sit 10 m off it, so with the access leg a facility at x reaches the street at x with
990 m left, and a demand point at x' is ``10 + |x - x'| + 10`` m away.
"""

from __future__ import annotations

import logging
import os
import pickle
from dataclasses import replace

import geopandas as gpd
import numpy as np
import pytest
import shapely

from coverage15 import settings
from coverage15.inputs.config import AnalysisSpec
from coverage15.network import _cache
from coverage15.network.graph import content_key
from coverage15.scale import partition

CRS = "EPSG:32651"
X0, Y0 = 350_000.0, 3_450_000.0
ANALYSIS = AnalysisSpec()  # 4 km/h for 15 minutes: 1,000 m


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setattr(settings, "cache_folder", str(folder))
    monkeypatch.setattr(settings, "use_cache", True)
    return folder


@pytest.fixture
def street(straight_street):
    net = straight_street(8, x0=X0, y0=Y0)
    net.source = "test-street"  # as build_walk_network marks the networks it makes
    return net


def points(*xs: float) -> gpd.GeoSeries:
    return gpd.GeoSeries(shapely.points(X0 + np.asarray(xs), Y0 + 10.0), crs=CRS)


LAYERS = {"a": points(0.0), "b": points(2000.0, 1000.0)}
DEMAND = points(500.0, 985.0, 1500.0)


def compute(net, layers=None, analysis=ANALYSIS):
    return partition.compute_layers(net, layers or LAYERS, DEMAND, analysis)


def no_work(*args, **kwargs):
    raise AssertionError("computed although the cache holds the answer")


def test_a_second_run_reuses_every_layer_and_the_demand_snaps(cache, street, monkeypatch):
    first, snap_m, on, log1 = compute(street)
    assert log1.cached == []
    # hand-checked: 990 m of street from x = 0; demand at 500 is 520 m away, at 985 1,005 m
    assert first["a"].reached_m[0] == pytest.approx(990.0)
    source, target, dist = first["a"].pairs
    assert source.tolist() == [0]
    assert target.tolist() == [0]
    assert dist[0] == pytest.approx(520.0)
    monkeypatch.setattr(partition, "_layer_kernel", no_work)
    monkeypatch.setattr(partition, "snap_points", no_work)
    again, snap_m2, on2, log2 = compute(street)
    assert log2.cached == ["demand snaps", "a", "b"]
    np.testing.assert_array_equal(snap_m2, snap_m)
    np.testing.assert_array_equal(on2, on)
    for key in LAYERS:
        old, new = first[key], again[key]
        assert shapely.equals_exact(new.polygons, old.polygons, tolerance=0).all()
        np.testing.assert_array_equal(new.reached_m, old.reached_m)
        np.testing.assert_array_equal(new.snap_m, old.snap_m)
        for a, b in zip(new.pairs, old.pairs, strict=True):
            np.testing.assert_array_equal(a, b)


def test_a_changed_layer_is_computed_again(cache, street):
    compute(street)
    moved = {"a": LAYERS["a"], "b": points(2000.0, 1250.0)}
    result, *_, log = compute(street, moved)
    assert log.cached == ["demand snaps", "a"]
    # the moved facility at 1250 reaches 990 m west and the 750 m to the street's east end
    assert result["b"].reached_m[1] == pytest.approx(1740.0)


def test_changed_settings_or_code_miss_the_cache(cache, street, monkeypatch):
    compute(street)
    *_, log = compute(street, analysis=replace(ANALYSIS, minutes=10.0))
    assert log.cached == ["demand snaps"]  # snapping does not depend on the minutes
    *_, log = compute(street, analysis=replace(ANALYSIS, snap_max_m=100.0))
    assert log.cached == []
    monkeypatch.setattr(_cache, "code_digest", lambda: "edited")
    *_, log = compute(street)
    assert log.cached == []


def test_networks_made_in_memory_are_never_cached(cache, street):
    street.source = None
    compute(street)
    *_, log = compute(street)
    assert log.cached == []
    assert not cache.exists()


def test_nothing_is_written_when_the_cache_is_off(cache, street, monkeypatch):
    monkeypatch.setattr(settings, "use_cache", False)
    compute(street)
    *_, log = compute(street)
    assert log.cached == []
    assert not cache.exists()


def test_an_unreadable_cache_file_is_rebuilt(cache, street, caplog):
    compute(street)
    files = sorted(cache.rglob("*.pickle"))
    assert len(files) == 3  # demand snaps, two layers
    for f in files:
        f.write_bytes(b"not a pickle")
    with caplog.at_level(logging.WARNING, logger="coverage15"):
        again, *_, log = compute(street)
    assert log.cached == []
    assert sum("not in this coverage15's format" in r.message for r in caplog.records) == 3
    assert again["a"].reached_m[0] == pytest.approx(990.0)
    *_, log = compute(street)  # rewritten, readable again
    assert log.cached == ["demand snaps", "a", "b"]


def test_a_damaged_file_that_still_unpickles_is_not_used(cache, street, caplog):
    compute(street)
    (layer_a,) = [f for f in cache.rglob("layers/*.pickle")  # the layer of one facility
                  if len(pickle.loads(f.read_bytes()[_cache.HEADER:]).reached_m) == 1]
    data = layer_a.read_bytes()
    value = pickle.loads(data[_cache.HEADER:])
    wrong = replace(value, reached_m=value.reached_m * 0.5)  # a file that loads, wrongly
    layer_a.write_bytes(data[:_cache.HEADER] + pickle.dumps(wrong))
    with caplog.at_level(logging.WARNING, logger="coverage15"):
        again, *_, log = compute(street)
    assert "a" not in log.cached
    assert "its checksum does not match" in caplog.text
    assert again["a"].reached_m[0] == pytest.approx(990.0)


def test_a_cache_file_of_an_older_coverage15_is_rebuilt(cache, caplog):
    path = _cache.path_for("networks", "k")
    path.parent.mkdir(parents=True)
    path.write_bytes(pickle.dumps({"x": 1}))  # a plain pickle: no header, no checksum
    with caplog.at_level(logging.WARNING, logger="coverage15"):
        assert _cache.load(path) is None
    assert "not in this coverage15's format (an older version wrote it" in caplog.text
    _cache.save(path, {"x": 1})
    assert _cache.load(path) == {"x": 1}


def test_a_failed_write_leaves_no_file(cache, monkeypatch):
    real_fdopen = os.fdopen

    class HalfWritten:
        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def write(self, data):
            self.fh.write(data[:5])
            raise OSError("disk full")

    monkeypatch.setattr(os, "fdopen", lambda fd, mode: HalfWritten(real_fdopen(fd, mode)))
    path = _cache.path_for("layers", "k")
    _cache.save(path, {"x": 1})
    assert list(cache.rglob("*")) == [path.parent]  # the folder, no file and no temporary
    assert _cache.load(path) is None


def test_keys_tell_arrays_apart_by_type_and_shape():
    assert _cache.key_of(np.zeros(2, np.int32)) != _cache.key_of(np.zeros(1, np.int64))
    assert _cache.key_of(np.zeros((2, 2))) != _cache.key_of(np.zeros(4))
    assert _cache.key_of(np.arange(3), 1.0, "x") == _cache.key_of(np.arange(3), 1.0, "x")
    assert _cache.key_of("a", "bc") != _cache.key_of("ab", "c")
    assert _cache.key_of(b"a\x1fb") != _cache.key_of(b"a", b"b")
    with pytest.raises(TypeError, match="object arrays"):
        _cache.key_of(np.array([shapely.Point(0, 0)], dtype=object))
    pts = points(0.0, 1.0).to_numpy()
    assert _cache.geometry_digest(pts) != _cache.geometry_digest(pts[::-1])
    odd = np.array([shapely.Point(), None, shapely.Point(1, 2)], dtype=object)
    assert _cache.geometry_digest(odd) != _cache.geometry_digest(odd[[1, 0, 2]])


def test_the_network_key_is_its_content(street):
    same = replace(street, source=None)
    assert content_key(same) == content_key(street)
    longer = replace(street, edge_length=street.edge_length + np.r_[1.0, np.zeros(7)])
    assert content_key(longer) != content_key(street)
    moved = replace(street, edge_geometry=shapely.transform(street.edge_geometry,
                                                            lambda xy: xy + 0.001))
    assert content_key(moved) != content_key(street)


def test_moved_demand_misses_the_layers_and_changes_the_pairs(cache, street):
    compute(street)
    result, *_, log = partition.compute_layers(street, LAYERS, points(500.0, 985.0, 1400.0),
                                               ANALYSIS)
    assert log.cached == []
    source, target, dist = result["b"].pairs
    assert list(zip(source.tolist(), target.tolist(), strict=True)) == [
        (0, 2), (1, 0), (1, 1), (1, 2)]
    np.testing.assert_allclose(dist, [620.0, 520.0, 35.0, 420.0])  # 1500 was 520 m from both


def test_points_in_another_crs_are_other_points(cache, street):
    compute(street)
    elsewhere = {"a": LAYERS["a"].set_crs("EPSG:32650", allow_override=True), "b": LAYERS["b"]}
    result, *_, log = compute(street, elsewhere)
    assert log.cached == ["demand snaps", "b"]
    assert np.isnan(result["a"].snap_m).all()  # same numbers, one UTM zone west: off the map


def test_band_width_and_access_leg_are_in_the_key(cache, street):
    first, *_ = compute(street)
    wider, *_, log = compute(street, analysis=replace(ANALYSIS, buffer_m=60.0))
    assert log.cached == ["demand snaps"]
    assert shapely.area(wider["a"].polygons[0]) > shapely.area(first["a"].polygons[0])
    no_leg, *_, log = compute(street, analysis=replace(ANALYSIS, access_leg=False))
    assert log.cached == ["demand snaps"]
    assert no_leg["a"].reached_m[0] == pytest.approx(1000.0)


def test_empty_and_missing_points_are_fine(cache, street):
    odd = gpd.GeoSeries([shapely.Point(), None, shapely.Point(X0 + 500, Y0 + 10)], crs=CRS)
    for _ in range(2):
        result, *_, log = partition.compute_layers(street, {"a": odd}, None, ANALYSIS)
        assert np.isnan(result["a"].snap_m[:2]).all()
        assert result["a"].snap_m[2] == pytest.approx(10.0)
    assert log.cached == ["a"]


def test_recompute_neither_reads_nor_writes_results(cache, street, monkeypatch):
    compute(street)
    monkeypatch.setattr(settings, "reuse_results", False)
    *_, log = compute(street, {"a": points(10.0)})
    assert log.cached == []
    monkeypatch.setattr(settings, "reuse_results", True)
    *_, log = compute(street, {"a": points(10.0)})
    assert log.cached == ["demand snaps"]  # the recomputed layer was not written


def _file(path, size: int, mtime: float):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    os.utime(path, (mtime, mtime))
    return path


def test_prune_deletes_the_least_recently_used_results_and_never_inputs(cache):
    t = 1_700_000_000.0
    net_file = _file(cache / "networks" / "n.pickle", 5_000, t - 100)  # oldest of all
    old = _file(cache / "layers" / "old.pickle", 1_000, t)
    mid = _file(cache / "snaps" / "mid.pickle", 1_000, t + 10)
    new = _file(cache / "layers" / "new.pickle", 1_000, t + 20)
    tmp = _file(cache / "layers" / "busy.tmp", 1_000, t - 50)  # another run writing it
    assert _cache.prune(max_bytes=2_500) == 1  # 3,000 bytes of results (the .tmp not counted)
    assert [p.exists() for p in (net_file, old, mid, new, tmp)] == [True, False, True, True, True]
    assert _cache.prune(max_bytes=2_000) == 0  # within the limit: nothing to do
    # the file just written is kept even when it alone is over the limit
    assert _cache.prune(max_bytes=0, keep=mid) == 1
    assert [p.exists() for p in (net_file, mid, new)] == [True, True, False]


def test_a_cache_hit_counts_as_use(cache):
    first = _cache.path_for("layers", "first")
    second = _cache.path_for("layers", "second")
    _cache.save(first, np.zeros(10_000))
    _cache.save(second, np.zeros(10_000))
    os.utime(first, (1_700_000_000, 1_700_000_000))  # written long ago
    os.utime(second, (1_700_000_100, 1_700_000_100))
    assert _cache.load(first) is not None  # ... but read now
    size = first.stat().st_size
    assert _cache.prune(max_bytes=size) == 1
    assert first.exists()
    assert not second.exists()


def test_runs_keep_results_within_the_limit(cache, street, monkeypatch):
    _file(cache / "networks" / "n.pickle", 10, 1_700_000_000.0)
    monkeypatch.setattr(settings, "results_cache_mb", 0.0)
    compute(street)  # writes the demand snaps, then layer a, then layer b
    results = [p for kind in _cache.RESULT_KINDS for p in (cache / kind).glob("*.pickle")]
    assert len(results) == 1  # only the last written is left
    assert (cache / "networks" / "n.pickle").exists()
    monkeypatch.setattr(settings, "results_cache_mb", 1024.0)
    compute(street)
    *_, log = compute(street)
    assert log.cached == ["demand snaps", "a", "b"]


@pytest.mark.parametrize(("text", "expected", "warns"), [
    ("", 1024.0, False), ("0", 0.0, False), ("250.5", 250.5, False),
    ("lots", 1024.0, True), ("-5", 1024.0, True), ("nan", 1024.0, True)])
def test_results_cache_size_from_the_environment(monkeypatch, text, expected, warns):
    monkeypatch.setenv("COVERAGE15_RESULTS_CACHE_MB", text)
    if warns:
        with pytest.warns(UserWarning, match="COVERAGE15_RESULTS_CACHE_MB"):
            assert settings._megabytes("COVERAGE15_RESULTS_CACHE_MB", 1024.0) == expected
    else:
        assert settings._megabytes("COVERAGE15_RESULTS_CACHE_MB", 1024.0) == expected


def test_files_deleted_by_another_run_meanwhile_are_skipped(cache, monkeypatch, caplog):
    here = _cache.path_for("layers", "here")
    _cache.save(here, b"x" * 100)
    gone = cache / "layers" / "gone.pickle"  # listed, then pruned by another run
    monkeypatch.setattr(_cache, "_files_by_kind", lambda: {"layers": [here, gone]})
    assert _cache.usage() == {"layers": (1, here.stat().st_size)}
    with caplog.at_level(logging.WARNING, logger="coverage15"):
        assert _cache.load(gone) is None
    assert not caplog.records  # nothing unreadable: just not there
    assert _cache.clear() == 1
    assert not here.exists()


def test_the_code_digest_covers_every_subpackage(tmp_path):
    """A change in any module (here one in a subpackage) changes every result key."""
    (tmp_path / "reach").mkdir()
    (tmp_path / "__init__.py").write_text("")
    (tmp_path / "reach" / "kernel.py").write_text("LIMIT = 1\n")
    before = _cache._code_digest(tmp_path)
    assert _cache._code_digest(tmp_path) == before
    (tmp_path / "reach" / "kernel.py").write_text("LIMIT = 2\n")
    assert _cache._code_digest(tmp_path) != before
