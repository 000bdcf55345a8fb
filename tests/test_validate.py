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
                                      "name: 1 of 2 rows name a 街镇 or district (20 needed;")


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
    assert (problem.severity, problem.id) == ("error", "crs-fit:big")  # a run stops on it
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


def _grid_network_and_units():
    """Four 1 km squares (A B C / D above A); ten streets across A, C and D, one across B."""
    import numpy as np

    from coverage15.network.graph import network_from_arrays

    x0, y0 = 350_000.0, 3_450_000.0
    lines = [(x0 + a, y0 + y, x0 + b, y0 + y) for a, b in ((0, 1000), (2000, 3000))
             for y in range(50, 1000, 100)]
    lines += [(x0, y0 + 1000 + y, x0 + 1000, y0 + 1000 + y) for y in range(50, 1000, 100)]
    lines += [(x0 + 1000, y0 + 500, x0 + 2000, y0 + 500)]
    xy = np.array([p for ax, ay, bx, by in lines for p in ((ax, ay), (bx, by))])
    n = len(lines)
    geometry = np.array([shapely.LineString([(ax, ay), (bx, by)]) for ax, ay, bx, by in lines],
                        dtype=object)
    net = network_from_arrays(np.arange(1, 2 * n + 1), xy, np.arange(0, 2 * n, 2),
                              np.arange(1, 2 * n, 2), geometry, crs="EPSG:32651",
                              extent=shapely.box(x0, y0, x0 + 2500, y0 + 2000))
    units = np.array([shapely.box(x0 + a, y0 + b, x0 + a + 1000, y0 + b + 1000)
                      for a, b in ((0, 0), (1000, 0), (2000, 0), (0, 1000))], dtype=object)
    return net, units


def test_network_completeness_grades_where_people_live():
    import numpy as np

    from coverage15.network.checks import (
        completeness_problems,
        completeness_reason,
        network_completeness,
    )

    net, units = _grid_network_and_units()
    # A: 12 points 20 m from a street; B: 12 points 300 m away (its one street); D: 3 points
    unit = np.repeat([0, 1, 3], [12, 12, 3])
    snap = np.r_[[20.0] * 12, [300.0] * 10, [np.nan] * 2, [20.0] * 3]
    table = network_completeness(units, net, unit, snap)
    assert table["street_km_per_km2"].round(3).tolist() == [10.0, 1.0, 10.0, 10.0]
    # the reference is the median of the units wholly inside (A, B, D): 10 km per km²
    assert table["street_density_ratio"].round(3).tolist() == [1.0, 0.1, 1.0, 1.0]
    near = table["street_near_share"].tolist()
    assert near[:2] == [1.0, 0.0]
    assert np.isnan(near[2])  # C: half outside the extent
    assert np.isnan(near[3])  # D: too few points (graded on density alone)

    def grades(t):
        return [g if isinstance(g, str) else None for g in t["network_complete"]]

    assert grades(table) == ["complete", "sparse", None, "complete"]
    was_full = np.array([True, True, False, True])
    (warning,) = completeness_problems(["A街道", "B街道", "C街道", "D街道"], table, was_full)
    assert warning.input == "network"
    assert "not judged on walking rules" in warning.message
    assert warning.message.endswith(": B街道 (0% near a street, density 0.10 of the median)")
    english, chinese = completeness_reason(table.iloc[1])
    assert english.startswith("because streets are missing from the network here (0% of "
                              "residents within 50 m of a street, street density 0.10")
    assert chinese.startswith("因路网此处缺少道路")
    assert completeness_reason(table.iloc[0]) is None
    # B's residents next to its one street: thin (one measure low), a caution only
    snap[12:24] = 20.0
    table = network_completeness(units, net, unit, snap)
    assert grades(table) == ["complete", "thin", None, "complete"]
    assert completeness_reason(table.iloc[1])[0].startswith("network thinner here")
    (warning,) = completeness_problems(["A", "B", "C", "D"], table, was_full)
    assert "may be too low" in warning.message


def test_the_central_extract_lacks_streets_in_one_judged_jiezhen(central_run):
    (warning,) = [p for p in central_run.problems if p.input == "network"]
    assert warning.message.endswith(": 平凉路街道 (28% near a street, density 0.31 of the "
                                    "median)")
    gap = central_run.gap_report.set_index("jiezhen")
    row = gap.loc["平凉路街道"]
    # wholly inside the extract, but its streets are missing: not judged on walking rules
    assert (row["network"], row["network_share"], row["network_complete"]) == (
        "partial", 1.0, "sparse")
    assert (row["street_near_share"], row["street_density_ratio"]) == (0.2755, 0.31)
    assert row["reason"].endswith(
        "walking rules not evaluated; because streets are missing from the network here (28% "
        "of residents within 50 m of a street, street density 0.31 of the median); check the "
        "network before acting")
    assert row["reason_zh"].endswith("；因路网此处缺少道路（居民点 28% 距道路 50 米内，道路密度为"
                                     "中位数的 0.31 倍），请先核实路网")
    graded = gap["network_complete"].dropna()
    assert graded.value_counts().to_dict() == {"complete": 31, "sparse": 1}
    assert (gap["network"] == "full").sum() == 31
    assert gap.loc[gap["network"] == "full", "street_near_share"].min() >= 0.5
    assert gap["reason"].str.contains("streets are missing").sum() == 1


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
