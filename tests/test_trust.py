"""Inputs a planner can trust (issue #19): a wrong input stops the run or is set aside with a
reason, never a quiet wrong verdict. One test (or more) per reproduced case."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from configs import CONFIG, shipped_config_text
from coverage15._errors import CheckError, ConfigError, InputFileError, LayerError, OutputError
from coverage15.cli import main
from coverage15.inputs.checks import Problem, crs_fit_problems, enforce
from coverage15.inputs.config import LayerSpec, load_config
from coverage15.inputs.layers import load_layer, load_units
from coverage15.inputs.places import claimed_places, location_mismatches, set_aside_rows
from coverage15.inputs.readers import load_inputs
from coverage15.network.checks import crs_scale_problems
from coverage15.reach.rule_checks import rule_problems
from coverage15.reach.targets import Rule


def _config(tmp_path: Path, text: str, name: str = "c.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def units(data_dir):
    from coverage15.inputs.specs import UnitSpec

    return load_units(UnitSpec(path=data_dir / "boundaries/jiezhen_osm.geojson",
                               name_field="name", district_field="district",
                               aliases=(("菊园街道", "菊园新区"),)))


# 1. no usable demand stops the run ------------------------------------------------------

def test_swapped_demand_columns_stop_the_run(data_dir, tmp_path, capsys):
    swapped = shipped_config_text().replace('x = "wgs84_lng"\ny = "wgs84_lat"',
                                            'x = "wgs84_lat"\ny = "wgs84_lng"')
    assert swapped != shipped_config_text()
    with pytest.raises(LayerError, match=r"demand .*no usable rows of 26105"):
        load_inputs(load_config(_config(tmp_path, swapped)))
    assert main(["run", str(_config(tmp_path, swapped)), "--out", str(tmp_path / "o"),
                 "-q"]) == 2
    err = capsys.readouterr().err
    assert "no usable rows" in err
    assert "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_header_only_demand_stops_the_run(data_dir, tmp_path):
    header = tmp_path / "demand.csv"
    header.write_text("address,jiezhen,wgs84_lng,wgs84_lat\n", encoding="utf-8")
    text = shipped_config_text().replace('path = "demand/residential_addresses.csv"',
                                         f'path = "{header}"')
    with pytest.raises(LayerError, match=r"demand .*no usable rows of 0"):
        load_inputs(load_config(_config(tmp_path, text)))


def test_a_layer_losing_most_rows_stops(data_dir, tmp_path):
    path = tmp_path / "few.csv"
    path.write_text("name,x,y\n" + "".join(f"r{i},121.47,31.{i:02d}\n" for i in range(10))
                    + "".join(f"m{i},,\n" for i in range(12)), encoding="utf-8")
    layer = load_layer(LayerSpec(key="few", label="f", path=path, x="x", y="y",
                                 crs="EPSG:4326", name_field="name"))
    from coverage15.inputs.checks import set_aside_problems

    (problem,) = set_aside_problems(layer)
    assert (problem.severity, problem.id, problem.count) == ("error", "set-aside:few", 12)
    with pytest.raises(CheckError, match=r"\[set-aside:few\] few: 12 of 22 rows \(55%\)"):
        enforce([problem], [])
    # a hand-made list of three losing two is a note, not a stop
    path.write_text("name,x,y\na,121.47,31.23\nb,,\nc,,\n", encoding="utf-8")
    assert set_aside_problems(load_layer(LayerSpec(key="few", label="f", path=path, x="x",
                                                   y="y", crs="EPSG:4326"))) == []


# 2. a declared CRS the data contradicts stops, unless accepted ---------------------------

def test_contradicted_crs_stops_unless_accepted(data_dir, tmp_path, capsys):
    wrong = shipped_config_text().replace('crs = "gcj02"', 'crs = "EPSG:4326"', 1)
    config = _config(tmp_path, wrong)
    assert main(["run", str(config), "--out", str(tmp_path / "o"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "run stopped: 1 problem(s) would change verdicts" in err
    assert "[crs-fit:centre] centre: declared crs 'EPSG:4326' may be wrong" in err
    assert '[accept] warnings = ["crs-fit:centre"]' in err
    assert "--accept crs-fit:centre" in err
    assert "Traceback" not in err
    assert not (tmp_path / "o").exists()
    # the check says the same, and accepting it there makes it a warning
    assert main(["layers", "check", str(config)]) == 1
    out = capsys.readouterr().out
    assert "centre\tSTOP\t" in out
    assert "STOP [crs-fit:centre] declared crs 'EPSG:4326' may be wrong" in out
    assert main(["layers", "check", str(config), "--accept", "crs-fit:centre"]) == 1
    assert "WARNING ACCEPTED (crs-fit:centre): declared crs" in capsys.readouterr().out


def test_accepting_records_the_problem():
    stop = Problem("error", "centre", "declared crs may be wrong", 300, id="crs-fit:centre")
    note = Problem("info", "centre", "2 rows set aside", 2)
    with pytest.raises(CheckError):
        enforce([note, stop], ["crs-fit:meal_point"])
    kept = enforce([note, stop], ["crs-fit:centre"])
    assert kept[0] == note
    assert kept[1].severity == "warning"
    assert kept[1].message.startswith("ACCEPTED (crs-fit:centre): ")
    assert enforce([stop], ["crs-fit:*"])[0].severity == "warning"
    # a clash that cannot be accepted
    clash = Problem("error", "targets", "rule id clashes", 1)
    with pytest.raises(CheckError, match=r"\[must be fixed\].*\nfix the input$"):
        enforce([clash], ["*"])


def test_accept_in_the_config(tmp_path):
    text = ('[network]\nsource = "osm_file"\npath = "s.osm"\n[units]\npath = "u.geojson"\n'
            'name_field = "name"\n[layers.a]\npath = "a.csv"\nx = "x"\ny = "y"\ncrs = "gcj02"\n'
            '[accept]\nwarnings = ["crs-fit:a", "working-crs"]\n')
    assert load_config(_config(tmp_path, text)).accept == ("crs-fit:a", "working-crs")
    bad = text.replace('warnings = ["crs-fit:a", "working-crs"]', "warnings = 3")
    with pytest.raises(ConfigError, match=r"\[accept\] warnings: expected a list"):
        load_config(_config(tmp_path, bad))


# 3. facilities in the wrong district or 街镇 ---------------------------------------------

def test_a_district_column_names_places(data_dir, units):
    path = data_dir / "facilities/elderly_institutions.csv"
    spec = LayerSpec(key="homes", label="h", path=path, x="lng", y="lat", crs="gcj02",
                     name_field="name",
                     unit_field="district")
    layer = load_layer(spec)
    unit, district = claimed_places(layer.points, spec, units)
    assert pd.isna(unit).all()
    assert pd.notna(district).mean() > 0.95  # 嘉定 names 嘉定区, 浦东 浦东新区
    assert set(district[pd.notna(district)]) <= set(units["district"])
    # so the CRS can be checked against it (before: "0 rows name one")
    problems = crs_fit_problems(layer, units)
    assert not problems or "not checked" not in problems[0].message


def test_hand_made_rows_outside_their_place(data_dir, units, tmp_path):
    path = tmp_path / "sites.csv"
    path.write_text(
        "name,district,x,y\n"
        "湖南路街道长者食堂,徐汇,121.4400,31.2080\n"   # in 湖南路街道: fine
        "湖南路街道助餐点,徐汇,121.5600,31.2300\n"     # in 浦东: names 湖南路街道
        "嘉定区某服务站,,121.4400,31.2080\n"           # names 嘉定区, lies in 徐汇
        "无名站点,,121.4400,31.2080\n",                # names nothing
        encoding="utf-8")
    spec = LayerSpec(key="sites", label="s", path=path, x="x", y="y", crs="EPSG:4326",
                     name_field="name")
    found = location_mismatches(load_layer(spec), units, working_crs="EPSG:32651")
    assert list(found["source_row"]) == [1, 2]
    assert list(found["named"]) == ["湖南路街道", "嘉定区"]
    assert found["landed"].iloc[0].startswith("浦东新区")
    assert (found["distance_m"] > 300).all()
    # set aside: moved to the rejected rows, with the place named and where it landed
    aside = dataclasses.replace(spec, location_check="set_aside")
    layer = load_layer(aside)
    moved = set_aside_rows(layer, location_mismatches(layer, units, working_crs="EPSG:32651"))
    assert len(moved.points) == 2
    assert moved.rejected["reason"].str.contains("names 湖南路街道 but lands in 浦东新区").any()
    # the district column, where given, is what the row names
    by_column = dataclasses.replace(spec, unit_field="district")
    found = location_mismatches(load_layer(by_column), units, working_crs="EPSG:32651")
    assert list(found["named"]) == ["徐汇区"]  # the row in 浦东 says 徐汇


def test_the_platform_rows_outside_their_jiezhen(data_dir, tmp_path, capsys):
    assert main(["layers", "check", str(CONFIG)]) == 0
    out = capsys.readouterr().out
    assert ("centre\tok\t323 usable of 325\t2 missing coordinates; 11 land more than 300 m "
            "outside the 街镇 or district they name (flagged)") in out
    assert "38 land more than 300 m outside" in out.split("meal_point\t", 1)[1]
    rows = [line for line in out.splitlines() if line.startswith("  centre\t")]
    assert len(rows) == 11
    assert ("  centre\trow 101\t上海市徐汇区徐家汇街道社区综合为老服务中心\tnames 徐家汇街道\t"
            "lands in 闵行区 七宝镇\t5048 m outside\tflag") in rows
    # set aside instead of flagged, as configured
    text = shipped_config_text().replace('location_check = "flag"', 'location_check = '
                                         '"set_aside"', 1)
    assert "set_aside" in text
    assert main(["layers", "check", str(_config(tmp_path, text))]) == 0
    assert "(set aside)" in capsys.readouterr().out


# 4. and 5. rules: a misspelt layer, an id that clashes with a layer's column -------------

def test_a_misspelt_rule_layer_stops():
    rules = [Rule(id="health_in_jiezhen", kind="full_coverage", layer="heath"),
             Rule(id="rehab", kind="full_coverage", layer="rehab_rental")]
    (problem,) = rule_problems(rules, ["health", "centre"])
    assert (problem.severity, problem.id) == ("error", "rule-layer:health_in_jiezhen")
    assert "did you mean 'health'?" in problem.message


def test_a_rule_id_cannot_overwrite_a_layer_column():
    rules = [Rule(id="centre_demand", kind="demand_share", layer="centre", min_share=0.5)]
    (problem,) = rule_problems(rules, ["centre"])
    assert (problem.severity, problem.id) == ("error", "")
    assert "centre_demand_share" in problem.message


def test_layers_check_reads_the_targets(data_dir, tmp_path, capsys):
    targets = (Path(CONFIG).parent / "targets/shanghai-2025.toml").read_text(encoding="utf-8")
    bad = targets.replace('layer = "meal_point"', 'layer = "meal_pont"', 1)
    (tmp_path / "t.toml").write_text(bad, encoding="utf-8")
    text = shipped_config_text()
    text = text.replace(text.split("\n")[next(i for i, line in enumerate(text.split("\n"))
                                              if line.startswith("targets ="))],
                        f'targets = "{tmp_path / "t.toml"}"')
    assert main(["layers", "check", str(_config(tmp_path, text))]) == 1
    out = capsys.readouterr().out
    assert "targets\tSTOP\t9 rules\tSTOP [rule-layer:meal_in_jiezhen]" in out
    assert "did you mean 'meal_point'?" in out


# 6. non-finite parameters ----------------------------------------------------------------

@pytest.mark.parametrize("value", ["nan", "inf", "+inf"])
def test_non_finite_parameters_are_refused(tmp_path, value):
    text = (f'[analysis]\nwalk_speed_kmh = {value}\n[network]\nsource = "osm_file"\n'
            'path = "s.osm"\n[units]\npath = "u.geojson"\nname_field = "name"\n'
            '[layers.a]\npath = "a.csv"\nx = "x"\ny = "y"\ncrs = "gcj02"\n')
    with pytest.raises(ConfigError, match="walk_speed_kmh: must be a finite number"):
        load_config(_config(tmp_path, text))


# 7. a distorting working CRS --------------------------------------------------------------

@pytest.mark.parametrize(("crs", "stops"), [("EPSG:32651", False), ("EPSG:3857", True),
                                            ("EPSG:32648", True)])
def test_a_distorting_working_crs_stops(crs, stops):
    problems = crs_scale_problems(crs, 121.47, 31.23)
    assert bool(problems) == stops
    if stops:
        assert problems[0].id == "working-crs"
        with pytest.raises(CheckError, match=r"working_crs .* stretches lengths"):
            enforce(problems, [])


# 8. malformed files -----------------------------------------------------------------------

def test_a_stray_quote_names_its_line(data_dir, tmp_path):
    lines = (data_dir / "facilities/meal_canteens.csv").read_text(encoding="utf-8").splitlines()
    lines[5] = lines[5].replace(",", ',"', 1)  # one stray quote
    path = tmp_path / "canteens.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    spec = LayerSpec(key="canteen", label="c", path=path, x="longitude", y="latitude",
                     crs="gcj02", name_field="name")
    with pytest.raises(InputFileError, match=r"line 6|lines 6-"):
        load_layer(spec)


def test_a_ragged_row_and_a_cut_file_are_errors(data_dir, tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("name,x,y\na,121.4,31.2\nb,121.5\n", encoding="utf-8")
    spec = LayerSpec(key="p", label="p", path=path, x="x", y="y", crs="EPSG:4326")
    with pytest.raises(InputFileError, match="line 3 has 2 cells, the header 3"):
        load_layer(spec)
    demand = (data_dir / "demand/residential_addresses.csv").read_bytes()
    cut = tmp_path / "cut.csv"
    cut.write_bytes(demand[: demand.rindex(b".") + 3])  # mid-number in the last row
    spec = LayerSpec(key="demand", label="d", path=cut, x="wgs84_lng", y="wgs84_lat",
                     crs="EPSG:4326")
    with pytest.raises(InputFileError, match="no line end, so the file may be cut off"):
        load_layer(spec)


@pytest.mark.parametrize("rows", [
    "name,x,y\na,121.4,31.2\n\nb,121.5\n",        # a blank line, then a short row
    "name,x,y\na,121.4,31.2\nb,121.5,31.2,9\n",    # a long row
    "name,x,y\r\na,121.4,31.2\r\nb\r\n",           # Windows line ends
])
def test_files_without_quotes_are_checked_as_the_csv_reader_checks_them(tmp_path, rows):
    """A file without quotes takes a faster check: the same line and message as the reader's
    (the same file with one harmless quoted cell goes through the reader)."""
    from coverage15.inputs._files import check_csv

    plain, quoted = tmp_path / "plain.csv", tmp_path / "quoted.csv"
    plain.write_text(rows, encoding="utf-8", newline="")
    quoted.write_text(rows.replace("a,", '"a",', 1), encoding="utf-8", newline="")
    messages = []
    for path in (plain, quoted):
        with pytest.raises(InputFileError) as info:
            check_csv(path, encoding="utf-8", sep=",", what="layer")
        messages.append(str(info.value).replace(str(path), "FILE"))
    assert messages[0] == messages[1]
    assert " has " in messages[0]


def test_coordinates_read_as_pandas_reads_them():
    """Arrow's fast parse where it accepts every cell, pandas' where it does not: the same."""
    from coverage15.inputs.layers import _numbers

    for cells in (["121.47", "1e2", ".5", "-0", "inf", "nan", None],
                  ["121.47", " 31.2", "1_0", "0x10", "1,5", "abc", None]):
        raw = pd.Series(cells, dtype="str")
        expected = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
        assert np.array_equal(_numbers(raw), expected, equal_nan=True)
    assert np.array_equal(_numbers(pd.Series([1, 2.5, None], dtype=object)), [1, 2.5, np.nan],
                          equal_nan=True)


def test_every_format_gets_the_coordinate_checks(tmp_path):
    features = [
        {"type": "Feature", "properties": {"name": name},
         "geometry": {"type": "Point", "coordinates": xy}}
        for name, xy in (("ok", [121.47, 31.23]), ("nan", ["NaN", 31.2]),
                         ("lon500", [500.0, 31.2]), ("lat95", [121.4, 95.0]))]
    path = tmp_path / "p.geojson"
    text = json.dumps({"type": "FeatureCollection", "features": features})
    path.write_text(text.replace('"NaN"', "NaN"), encoding="utf-8")
    layer = load_layer(LayerSpec(key="p", label="p", path=path, name_field="name"))
    assert list(layer.points["name"]) == ["ok"]
    reasons = dict(zip(layer.rejected["name"], layer.rejected["reason"], strict=True))
    assert reasons["nan"].startswith("non-finite coordinates")
    assert reasons["lon500"] == reasons["lat95"] == (
        "coordinates out of range for longitude/latitude")
    table = tmp_path / "p.csv"
    table.write_text("name,x,y\nok,121.47,31.23\ninf,inf,31.2\nbig,500,31.2\n", encoding="utf-8")
    layer = load_layer(LayerSpec(key="p", label="p", path=table, x="x", y="y",
                                 crs="EPSG:4326", name_field="name"))
    assert list(layer.points["name"]) == ["ok"]


def test_columns_named_like_coverage15s_own_are_renamed(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("name,source_row,src_x,src_y,x,y\na,7,1,2,121.47,31.23\n", encoding="utf-8")
    layer = load_layer(LayerSpec(key="p", label="p", path=path, x="x", y="y",
                                 crs="EPSG:4326", name_field="name"))
    assert {"src_source_row", "src_src_x", "src_src_y"} <= set(layer.points.columns)
    assert layer.points["source_row"].tolist() == [0]
    # coverage15's own GeoPackage read back in as a layer
    gdf = gpd.GeoDataFrame({"name": ["a"], "source_row": [3], "src_x": [1.0], "src_y": [2.0]},
                           geometry=[shapely.Point(121.47, 31.23)], crs=4326)
    gdf.to_file(tmp_path / "coverage.gpkg", driver="GPKG", engine="pyogrio")
    again = load_layer(LayerSpec(key="p", label="p", path=tmp_path / "coverage.gpkg",
                                 name_field="name"))
    assert len(again.points) == 1


# 9. what-if and recommend -----------------------------------------------------------------

def test_a_site_file_with_bad_rows_is_an_error(tmp_path):
    from coverage15.planning.scenarios import load_sites

    path = tmp_path / "add.csv"
    path.write_text("name,x,y\na,121.47,31.23\nb,,\nc,31.2,121.4\n", encoding="utf-8")
    with pytest.raises(LayerError, match=r"2 of 3 row\(s\) cannot be used: row 1 \(b\): "
                                         "missing coordinates"):
        load_sites(path, x="x", y="y", crs="EPSG:4326", name_field="name")


def test_recommend_never_writes_into_a_run_folder(tmp_path):
    from coverage15.planning.scenarios import check_not_a_run_folder, write_bundle

    (tmp_path / "gap_report.csv").write_text("unit\n", encoding="utf-8")
    with pytest.raises(OutputError, match="holds a coverage15 run's outputs"):
        check_not_a_run_folder(tmp_path)
    with pytest.raises(OutputError):
        write_bundle(tmp_path, tables={}, layers={}, gpkg="whatif.gpkg", summary={},
                     map_result=None, map_options=None)
    assert not (tmp_path / "summary.json").exists()


# crashes and confusion -------------------------------------------------------------------

@pytest.mark.parametrize(("argv", "expected"), [
    (["--partitions", "0"], "--partitions must be at least 1, got 0"),
    (["--partitions", "-2"], "--partitions must be at least 1, got -2"),
    (["--scheduler", "tcp://127.0.0.1:1"], "no Dask scheduler answers at 127.0.0.1:1"),
])
def test_scale_out_misuse_is_one_line(data_dir, tmp_path, capsys, argv, expected):
    assert main(["run", str(CONFIG), "--out", str(tmp_path / "o"), *argv]) == 2
    err = capsys.readouterr().err
    assert expected in err
    assert len(err.strip().splitlines()) == 1


def test_a_byte_order_mark_is_read(tmp_path):
    text = ('[network]\nsource = "osm_file"\npath = "s.osm"\n[units]\npath = "u.geojson"\n'
            'name_field = "name"\n[layers.a]\npath = "a.csv"\nx = "x"\ny = "y"\n'
            'crs = "gcj02"\n')
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert list(load_config(path).layers) == ["a"]


def test_a_symlinked_data_folder_works(data_dir, tmp_path, monkeypatch):
    link = tmp_path / "datalink"
    link.symlink_to(data_dir, target_is_directory=True)
    monkeypatch.setenv("COVERAGE15_DATA", str(link))
    config = load_config(CONFIG)
    assert config.network.path == link / "network/central_streets.osm"
    assert config.network.path.is_file()
    # a config in a symlinked folder finds the files beside the link
    folder = tmp_path / "real"
    folder.mkdir()
    (folder / "run.toml").write_text(shipped_config_text(), encoding="utf-8")
    (tmp_path / "linked").symlink_to(folder, target_is_directory=True)
    assert load_config(tmp_path / "linked" / "run.toml").source == (
        tmp_path / "linked" / "run.toml")  # as reached, not resolved to real/


def test_an_accepted_problem_is_recorded_in_the_outputs(straight_street):
    import coverage15 as c15
    from coverage15.outputs.bundle import summary_json

    x0, y0 = 350_000.0, 3_450_000.0
    units = gpd.GeoDataFrame({"name": ["甲街道"], "district": ["乙区"]},
                             geometry=[shapely.box(x0 - 100, y0 - 100, x0 + 2_100, y0 + 100)],
                             crs="EPSG:32651")
    centres = gpd.GeoDataFrame({"name": ["中心"]}, geometry=[shapely.Point(x0, y0)],
                               crs="EPSG:32651")
    rules = [Rule(id="centre_each", kind="full_coverage", layer="centr", min_count=1)]
    with pytest.raises(CheckError, match=r"\[rule-layer:centre_each\].*did you mean 'centre'"):
        c15.analyse(straight_street(8), {"centre": centres}, units, rules=rules)
    result = c15.analyse(straight_street(8), {"centre": centres}, units, rules=rules,
                         accept=["rule-layer:centre_each"])
    (accepted,) = [p for p in result.problems if p.id]
    assert accepted.message.startswith("ACCEPTED (rule-layer:centre_each): rule centre_each")
    summary = summary_json(result)
    assert summary["accepted"] == ["rule-layer:centre_each"]
    assert "centre_each" in summary["not_evaluated"]
    json.dumps(summary, allow_nan=False)  # valid JSON: no bare NaN
