"""Dirty inputs built from the real files (copy, then damage) and what the user sees."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from configs import CONFIG, shipped_config_text
from coverage15 import LayerError
from coverage15.cli import main
from coverage15.inputs.checks import (
    crs_fit_problems,
    official_name_problems,
    overlap_problems,
    shared_point_problems,
)
from coverage15.inputs.config import LayerSpec, load_config
from coverage15.inputs.layers import load_layer
from coverage15.network.checks import sparse_street_problems, sparse_street_units
from coverage15.pipeline import run


def _config_with(tmp_path: Path, replacements: dict[str, str]) -> Path:
    text = shipped_config_text()
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_wrong_declared_crs_is_detected(data_dir):
    units = gpd.read_file(data_dir / "boundaries/jiezhen_osm.geojson").rename(
        columns={"name": "unit"})
    platform = data_dir / "facilities/elderly_services_platform.json"
    as_wgs = load_layer(LayerSpec(key="meal", label="m", path=platform, x="longitude",
                                  y="latitude", crs="EPSG:4326", filter="agencyType == 4",
                                  name_field="agencyName"))
    (problem,) = crs_fit_problems(as_wgs, units)
    assert "declared crs 'EPSG:4326' may be wrong" in problem.message
    assert 'set crs = "gcj02"' in problem.message
    right = load_layer(LayerSpec(key="meal", label="m", path=platform, x="longitude",
                                 y="latitude", crs="gcj02", filter="agencyType == 4",
                                 name_field="agencyName"))
    assert crs_fit_problems(right, units) == []
    # demand rows name their 街镇: GCJ-02 columns declared as WGS84 are caught too
    demand = data_dir / "demand/residential_addresses.csv"
    wrong = load_layer(LayerSpec(key="demand", label="d", path=demand, x="gcj02_lng",
                                 y="gcj02_lat", crs="EPSG:4326", unit_field="jiezhen"))
    (problem,) = crs_fit_problems(wrong, units)
    assert "as gcj02" in problem.message
    fine = load_layer(LayerSpec(key="demand", label="d", path=demand, x="wgs84_lng",
                                y="wgs84_lat", crs="EPSG:4326", unit_field="jiezhen"))
    assert crs_fit_problems(fine, units) == []
    # and the other way round: WGS84 columns declared as GCJ-02
    backwards = load_layer(LayerSpec(key="demand", label="d", path=demand, x="wgs84_lng",
                                     y="wgs84_lat", crs="gcj02", unit_field="jiezhen"))
    (problem,) = crs_fit_problems(backwards, units)
    assert ('set crs = "EPSG:4326" if the coordinates are GPS/WGS84 (not from a Chinese map '
            'provider)') in problem.message


def test_a_crs_that_cannot_be_checked_says_so(data_dir, tmp_path):
    units = gpd.read_file(data_dir / "boundaries/jiezhen_osm.geojson").rename(
        columns={"name": "unit"})
    path = tmp_path / "homes.csv"
    path.write_text("name,x,y\nHome A,121.47,31.23\n湖南路街道 Home B,121.44,31.21\n",
                    encoding="utf-8")
    layer = load_layer(LayerSpec(key="homes", label="h", path=path, x="x", y="y",
                                 crs="EPSG:4326", name_field="name"))
    (problem,) = crs_fit_problems(layer, units)
    assert (problem.severity, problem.count) == ("info", 1)
    assert problem.message.startswith("coordinates not checked against the 街镇 the rows "
                                      "name: 1 of 2 rows name one (20 needed;")


def test_a_large_layer_with_few_named_rows_is_still_checked(data_dir, tmp_path):
    units = gpd.read_file(data_dir / "boundaries/jiezhen_osm.geojson").rename(
        columns={"name": "unit"})
    table = pd.read_csv(data_dir / "demand/residential_addresses.csv")
    # 24,753 GCJ-02 points declared as WGS84; only every 400th row names its 街镇
    table["label"] = [f"{j}{i}号" if i % 400 == 0 else f"楼{i}"
                      for i, j in enumerate(table["jiezhen"])]
    table.to_csv(tmp_path / "big.csv", index=False)
    layer = load_layer(LayerSpec(key="big", label="b", path=tmp_path / "big.csv",
                                 x="gcj02_lng", y="gcj02_lat", crs="EPSG:4326",
                                 name_field="label"))
    assert len(layer.points) > 5000
    (problem,) = crs_fit_problems(layer, units)
    assert problem.severity == "warning"
    assert "declared crs 'EPSG:4326' may be wrong" in problem.message


def test_wrong_crs_of_a_file_or_a_typo_is_detected(data_dir, tmp_path):
    units = gpd.read_file(data_dir / "boundaries/jiezhen_osm.geojson").rename(
        columns={"name": "unit"})
    demand = data_dir / "demand/residential_addresses.csv"
    table = pd.read_csv(demand).head(400)
    # a Chinese map provider's coordinates saved as points "in EPSG:4326" (what QGIS's
    # delimited-text import of the raw columns gives)
    raw = gpd.GeoDataFrame(table, geometry=gpd.points_from_xy(table["gcj02_lng"],
                                                              table["gcj02_lat"]), crs=4326)
    raw.to_file(tmp_path / "raw.gpkg", driver="GPKG", engine="pyogrio")
    spec = LayerSpec(key="homes", label="h", path=tmp_path / "raw.gpkg", name_field="address",
                     unit_field="jiezhen")
    (problem,) = crs_fit_problems(load_layer(spec), units)
    assert problem.message.startswith("the file's CRS may be wrong")
    assert 'set crs = "gcj02"' in problem.message
    # declaring it fixes it
    fixed = LayerSpec(key="homes", label="h", path=tmp_path / "raw.gpkg", crs="gcj02",
                      name_field="address", unit_field="jiezhen")
    assert crs_fit_problems(load_layer(fixed), units) == []
    # the same points in their true WGS84 positions pass
    right = raw.set_geometry(gpd.points_from_xy(table["wgs84_lng"], table["wgs84_lat"]),
                             crs=4326)
    right.to_file(tmp_path / "right.gpkg", driver="GPKG", engine="pyogrio")
    assert crs_fit_problems(load_layer(LayerSpec(
        key="homes", label="h", path=tmp_path / "right.gpkg", name_field="address",
        unit_field="jiezhen")), units) == []
    # a typo in a table's CRS (EPSG:4236, Hu Tzu Shan, for 4326) moves every point
    typo = load_layer(LayerSpec(key="d", label="d", path=demand, x="wgs84_lng",
                                y="wgs84_lat", crs="EPSG:4236", unit_field="jiezhen"))
    (problem,) = crs_fit_problems(typo, units)
    assert "declared crs 'EPSG:4236' may be wrong" in problem.message
    assert 'set crs = "EPSG:4326"' in problem.message


def test_a_geocoding_fallback_point_is_found(data_dir):
    platform = data_dir / "facilities/elderly_services_platform.json"

    def organisations(*exclude: tuple[float, float]) -> list:
        return shared_point_problems(load_layer(LayerSpec(
            key="org", label="o", path=platform, x="longitude", y="latitude", crs="gcj02",
            filter="agencyType == 5", name_field="agencyName", exclude_points=exclude)))

    # 22 of the 247 community elderly-service organisations sit on People's Square
    (problem,) = organisations()
    assert problem.count == 22
    assert problem.message.startswith("22 rows with different names lie exactly at one point "
                                      "(121.473701, 31.230416; e.g. ")
    assert "add exclude_points = [[121.473701, 31.230416]] to [layers.org]" in \
        problem.message
    assert organisations((121.473701, 31.230416)) == []
    # a residential compound's few addresses at one point are not a fallback
    demand = load_layer(LayerSpec(key="demand", label="d",
                                  path=data_dir / "demand/residential_addresses.csv",
                                  x="wgs84_lng", y="wgs84_lat", crs="EPSG:4326"))
    assert shared_point_problems(demand) == []


def test_overlapping_jiezhen_are_reported(data_dir):
    units = gpd.read_file(data_dir / "boundaries/jiezhen_osm.geojson").rename(
        columns={"name": "unit"})
    (problem,) = overlap_problems(units, "EPSG:32651")
    assert problem.count == 12
    # OSM's 三林镇 holds the whole of 东明路街道 (4.9 km²)
    assert "东明路街道 / 三林镇 4.90 km² (100% of the smaller)" in problem.message
    # the same polygons, each minus the ones before it, no longer overlap
    shapes = units.geometry.to_crs(32651).make_valid().to_numpy()
    for i in range(1, len(shapes)):
        shapes[i] = shapely.difference(shapes[i], shapely.union_all(shapes[:i]))
    tiled = units.set_geometry(gpd.GeoSeries(shapes, crs=32651).to_crs(units.crs))
    assert overlap_problems(tiled, "EPSG:32651") == []


def test_unit_names_against_the_official_list(data_dir):
    units = gpd.read_file(data_dir / "boundaries/jiezhen_osm.geojson").rename(
        columns={"name": "unit"})
    (problem,) = official_name_problems(units, data_dir / "reference/jiezhen_codes_2023.csv")
    assert problem.count == 2
    assert "菊园街道 (official: 菊园新区?)" in problem.message
    assert "娄塘镇" in problem.message


def test_dirty_platform_copy(data_dir, tmp_path):
    rows = json.loads((data_dir / "facilities/elderly_services_platform.json").read_text("utf-8"))
    centres = [r for r in rows if r["agencyType"] == 6]
    centres[0] = {**centres[0], "longitude": centres[0]["latitude"],
                  "latitude": centres[0]["longitude"]}             # swapped
    centres[1] = {**centres[1], "longitude": "n/a"}                  # not a number
    centres[2] = {**centres[2], "latitude": "95.2"}                  # out of range
    centres.append(dict(centres[5]))                                # exact repeat
    path = tmp_path / "platform.json"
    path.write_text(json.dumps(centres, ensure_ascii=False), encoding="utf-8")
    layer = load_layer(LayerSpec(key="c", label="c", path=path, x="longitude", y="latitude",
                                 crs="gcj02", name_field="agencyName"))
    reasons = layer.rejected.set_index("source_row")["reason"]
    assert reasons[0].startswith("longitude/latitude swapped")
    assert reasons[1] == "non-numeric coordinates"
    assert reasons[2] == "coordinates out of range for longitude/latitude"
    assert reasons[len(centres) - 1] == "duplicate of source row 5 (same name and point)"
    assert (reasons == "missing coordinates").sum() == 2  # as in the real file
    assert len(layer.points) == len(centres) - 6


@pytest.mark.parametrize("damage", ["truncated", "gb18030", "empty", "directory"])
def test_malformed_layer_files_exit_2_with_one_line(data_dir, tmp_path, capsys, damage):
    source = data_dir / "facilities/meal_canteens.csv"
    target = tmp_path / "canteens.csv"
    if damage == "truncated":
        target = tmp_path / "platform.json"
        text = (data_dir / "facilities/elderly_services_platform.json").read_text("utf-8")
        target.write_text(text[: len(text) // 2], encoding="utf-8")
        replace = {'path = "facilities/elderly_services_platform.json"': f'path = "{target}"'}
        expect = "invalid JSON at line"
    else:
        if damage == "gb18030":
            target.write_bytes(source.read_text("utf-8").encode("gb18030"))
            expect = 'encoding = "gb18030"'
        elif damage == "empty":
            target.write_bytes(b"")
            expect = "file is empty"
        else:
            target.mkdir()
            expect = "is a directory"
        replace = {'path = "facilities/meal_canteens.csv"': f'path = "{target}"'}
    config = _config_with(tmp_path, replace)
    assert main(["run", str(config), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert expect in err
    assert str(target) in err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if not line.startswith("•")]
    if damage != "truncated":  # (the truncated file feeds two layers: one line each)
        assert len(errors) == 1
        assert errors[0].startswith("coverage15: error: layer 'canteen'")
    assert not (tmp_path / "out" / "gap_report.csv").exists()


def test_every_unusable_input_is_reported_at_once(data_dir, tmp_path):
    config = _config_with(tmp_path, {
        'path = "facilities/meal_canteens.csv"': f'path = "{tmp_path / "missing.csv"}"',
        'filter = "agencyType == 4"': 'filter = "agencyType == 42"',
        'path = "network/central_streets.osm"': 'path = "network/central_street.osm"',
    })
    with pytest.raises(LayerError) as info:
        run(load_config(config))
    text = str(info.value)
    assert text.startswith("3 input(s) cannot be used")
    assert "network " in text
    assert "central_street.osm: file not found" in text
    assert "layer 'canteen'" in text
    assert "file not found" in text
    assert "layer 'meal_point'" in text
    assert "filter 'agencyType == 42' matches none of the 3,821 rows" in text


def test_self_intersecting_unit_is_repaired_and_reported(data_dir, tmp_path):
    units = gpd.read_file(data_dir / "boundaries/jiezhen_osm.geojson")
    i = units.index[units["name"] == "外滩街道"][0]
    ring = list(units.geometry[i].exterior.coords)
    ring[1], ring[2] = ring[2], ring[1]  # cross two edges: a bow-tie
    units.loc[i, "geometry"] = shapely.Polygon(ring)
    assert not units.geometry[i].is_valid
    damaged = tmp_path / "jiezhen.geojson"
    units.to_file(damaged)
    config = _config_with(tmp_path, {'path = "boundaries/jiezhen_osm.geojson"':
                                     f'path = "{damaged}"'})
    result = run(load_config(config))
    messages = [p.message for p in result.problems]
    assert any("1 invalid polygon(s) repaired with make_valid: 外滩街道" in m for m in messages)
    assert "外滩街道" in set(result.gap_report["jiezhen"])


def test_facility_far_from_streets_is_reported(central_run):
    warnings = [p for p in central_run.problems if p.severity == "warning"]
    far = {p.input: p.count for p in warnings if "from any street" in p.message}
    assert far == {"meal_point": 4, "canteen": 1, "care_home": 3}
    # still counted in its 街镇, but reaches nobody on foot
    canteens = central_run.facilities["canteen"]
    assert (~canteens["on_network"] & canteens["jiezhen"].notna()).sum() >= 1


def test_a_jiezhen_with_streets_missing_is_warned_about():
    import numpy as np

    names = ["A街道", "B街道", "C街道", "D街道"]
    judged = np.array([True, True, False, True])
    # A: 10 points at 20 m; B: 10 points, six at 150 m, four beyond the snap limit (NaN);
    # C: far too, but not judged; D: far, but only 3 points; 10 points in no 街镇, far
    unit = np.repeat([0, 1, 2, 3, -1], [10, 10, 10, 3, 10])
    snap = np.r_[[20.0] * 10, [150.0] * 6, [np.nan] * 4, [400.0] * 10, [300.0] * 3,
                 [400.0] * 10]
    flagged, overall = sparse_street_units(judged, unit, snap)
    # B's median is the 5th/6th of 150 ×6, inf ×4: 150 m; over A, B and D's 23 points
    # (20 ×10, 150 ×6, 300 ×3, inf ×4) the 12th: 150 m
    assert flagged.to_dict() == {1: 150.0}
    assert overall == 150.0
    (warning,) = sparse_street_problems(names, flagged, overall)
    assert (warning.input, warning.count) == ("network", 1)
    assert warning.message == (
        "1 街镇 inside the network has its residential points a median of more than 100 m "
        "from the nearest street (all 街镇 inside the network: 150 m), so streets are probably "
        "missing from the network there and its walking shares may be too low: B街道 150 m; "
        "check the network there before acting on its results")
    assert sparse_street_units(judged, unit, np.full(43, 99.0))[0].empty
    snap[10:20] = np.nan  # every point of B beyond the snap limit; A too now
    snap[:10] = np.nan
    flagged, overall = sparse_street_units(judged, unit, snap)
    assert flagged.to_dict() == {0: np.inf, 1: np.inf}
    message = sparse_street_problems(names, flagged, overall)[0].message
    assert message.startswith("2 街镇 inside the network have their residential points")
    assert ("(all 街镇 inside the network: half or more beyond the snap limit)" in message)
    assert message.endswith("too low: A街道 half or more beyond the snap limit, B街道 half or "
                            "more beyond the snap limit; check the network there before "
                            "acting on their results")


def test_the_central_extract_lacks_streets_in_one_judged_jiezhen(central_run):
    (warning,) = [p for p in central_run.problems if p.input == "network"]
    assert "(all 街镇 inside the network: 18 m)" in warning.message
    assert ": 平凉路街道 138 m; check the network there" in warning.message
    gap = central_run.gap_report.set_index("jiezhen")
    assert gap.loc["平凉路街道", "reason"] == (
        "one_plus_n: 30% of residential points pass (needs ≥ 90%); also fails for slower "
        "walkers: one_plus_n 20% at elderly (0.76 m/s), one_plus_n 17% at frail (0.64 m/s); "
        "streets probably missing from the network here (residents a median 138 m from a "
        "street): check before acting")
    assert gap.loc["平凉路街道", "reason_zh"].endswith("；路网此处可能缺少道路（居民点距最近道路"
                                                   "中位数 138 米），请先核实")
    cautioned = gap["reason"].str.contains("streets probably missing")
    assert cautioned.sum() == 1


def test_killed_run_leaves_earlier_outputs_intact(central_outputs, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(central_outputs, out)
    before = (out / "gap_report.csv").read_bytes()
    env = {**os.environ, "COVERAGE15_CACHE": str(tmp_path / "cache")}
    command = [sys.executable, "-m", "coverage15.cli", "-q", "run", str(CONFIG), "--out",
               str(out)]
    process = subprocess.Popen(command, env=env)
    deadline = time.monotonic() + 120
    while not list(out.glob(".coverage15-staging-*")):
        assert process.poll() is None, "run ended before it started writing"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert (out / "gap_report.csv").read_bytes() == before
    assert len(gpd.read_file(out / "coverage.gpkg", layer="units")) == 217
    assert len(pd.read_csv(out / "gap_report.csv")) == 217
    # the next run completes and sweeps the dead run's staging folder away
    assert subprocess.run(command, env=env, check=False).returncode == 0
    assert not list(out.glob(".coverage15-staging-*"))
    assert (out / "gap_report.csv").read_bytes() == before
