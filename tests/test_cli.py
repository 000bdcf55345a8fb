"""The command line: exit codes and one-line errors."""

from __future__ import annotations

import pytest

from configs import CONFIG, shipped_config_text
from coverage15.cli import main


def test_run_writes_outputs_and_summary(data_dir, tmp_path, capsys):
    assert main(["run", str(CONFIG), "--out", str(tmp_path), "--no-map", "-q"]) == 0
    assert (tmp_path / "gap_report.csv").is_file()
    assert not (tmp_path / "map.html").exists()
    assert main(["run", str(CONFIG), "--out", str(tmp_path / "b"), "--no-map"]) == 0
    out = capsys.readouterr().out
    assert "layer centre (社区综合为老服务中心): 323 loaded, 2 set aside, 57 on the network" in out
    assert "citywide centres_citywide: FAIL" in out


def test_bad_config_is_one_line_exit_2(tmp_path, capsys):
    assert main(["run", str(tmp_path / "missing.toml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("coverage15: error: run config")
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(("command", "expected"), [
    (["run", "--out", "{file}"], "--out {file}: is a file, not a folder"),
    (["run", "--out", "{file}/sub"], "--out {file}/sub: {file} is a file, not a folder"),
    (["run", "--out", "{busy}"], "{busy}/coverage.gpkg: it is open in another program "
                                 "(coverage.gpkg-wal beside it; QGIS keeps these"),
    (["map", "--out", "{dir}", "--district", "黄埔区"],
     "--district '黄埔区' is not a district of the districts layer (districts.geojson); did you "
     "mean '黄浦区'? use one of: 嘉定区, 奉贤区,"),
    (["run", "--out", "{dir}", "--tiles", "OpenStreetMap.HTO"],
     "tiles 'OpenStreetMap.HTO': not a basemap name folium knows; did you mean "
     "'OpenStreetMap.HOT'"),
    (["run", "--out", "{dir}", "--tiles", "https://tiles.example/{{z}}/{{x}}/{{y}}.png"],
     "a tile URL needs its attribution"),
    (["map", "--out", "{dir}", "--tiles", "Stamen.Tonr"], "not a basemap name folium knows"),
    (["recommend", "--layer", "centre", "--out", "{dir}", "--cover-rule", "all", "--k", "5"],
     "--cover-rule finds the fewest sites that meet the rules; it does not combine with --k"),
    (["recommend", "--layer", "centre", "--out", "{dir}", "--candidates", "layer:meal_point",
      "--spacing-m", "100"], "--spacing-m thins street-node candidates"),
    (["recommend", "--layer", "centre", "--out", "{dir}", "--add", "{dir}/sites.csv"],
     "--add {dir}/sites.csv: file not found"),
])
@pytest.mark.usefixtures("data_dir")
def test_mistakes_on_the_command_line_stop_before_the_run(tmp_path, capsys, monkeypatch,
                                                          command, expected):
    import coverage15.pipeline

    def no_run(*args, **kwargs):
        raise AssertionError("the run started")

    monkeypatch.setattr(coverage15.pipeline, "run", no_run)
    afile = tmp_path / "afile"
    afile.write_text("x", encoding="utf-8")
    busy = tmp_path / "busy"  # an earlier run's GeoPackage, open in QGIS
    busy.mkdir()
    (busy / "coverage.gpkg").write_bytes(b"")
    (busy / "coverage.gpkg-wal").write_bytes(b"")
    fill = {"file": str(afile), "dir": str(tmp_path / "out"), "busy": str(busy)}
    argv = [command[0], str(CONFIG), *(a.format(**fill) for a in command[1:])]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("coverage15: error: ")
    assert expected.format(**fill) in err


def test_a_basemap_is_not_checked_when_no_map_is_drawn(data_dir, tmp_path):
    assert main(["run", str(CONFIG), "--out", str(tmp_path / "o"), "--no-map", "-q",
                 "--tiles", "Stamen.Toner"]) == 0


def test_an_offset_basemap_from_the_command_line_is_warned_too(data_dir, tmp_path):
    out = tmp_path / "o"
    assert main(["run", str(CONFIG), "--out", str(out), "--no-map", "-q",
                 "--tiles", "Gaode.Normal"]) == 0
    problems = (out / "problems.csv").read_text(encoding="utf-8-sig")
    assert "tiles 'Gaode.Normal' are drawn in a Chinese map provider's offset" in problems


def test_bad_layer_file_is_exit_2(data_dir, tmp_path, capsys):
    text = shipped_config_text().replace(
        'path = "facilities/meal_canteens.csv"', f'path = "{tmp_path}"')
    cfg = tmp_path / "c.toml"
    cfg.write_text(text, encoding="utf-8")
    assert main(["run", str(cfg), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "is a directory" in err
    assert "Traceback" not in err
    assert not (tmp_path / "o" / "gap_report.csv").exists()


def test_layers_list_and_check(data_dir, tmp_path, capsys):
    assert main(["layers", "list", str(CONFIG)]) == 0
    assert "centre\t社区综合为老服务中心\tcentre\tgcj02" in capsys.readouterr().out
    assert main(["layers", "check", str(CONFIG)]) == 0
    out = capsys.readouterr().out
    assert "centre\tok\t323 usable of 325\t2 missing coordinates" in out
    assert ("meal_point\tok\t1533 usable of 1561\t18 duplicate of an earlier row (same name "
            "and point); 9 missing coordinates; 1 on excluded point") in out
    assert "demand\tok\t24753 usable of 26105\t1352 duplicate of an earlier row" in out
    assert "(flagged); 91 in no 街镇\n" in out  # a note, still ok
    assert "targets\tok\t9 rules\tno problems" in out
    assert "analysis\tok\t15 min at 4 km/h = 1000 m, working_crs EPSG:32651" in out
    # GCJ-02 centres declared as WGS84: a run would stop, so check says so and exits 1
    wrong = shipped_config_text().replace('crs = "gcj02"', 'crs = "EPSG:4326"', 1)
    (tmp_path / "wrong.toml").write_text(wrong, encoding="utf-8")
    assert main(["layers", "check", str(tmp_path / "wrong.toml")]) == 1
    (centre,) = [line for line in capsys.readouterr().out.splitlines()
                 if line.startswith("centre\t")]
    assert centre.startswith("centre\tSTOP\t323 usable of 325\t2 missing coordinates; ")
    assert "STOP [crs-fit:centre] declared crs 'EPSG:4326' may be wrong" in centre
    # degrees declared as metres (web Mercator) put every canteen near (0, 0)
    lost = shipped_config_text().replace('crs = "gcj02"', 'crs = "EPSG:3857"')
    (tmp_path / "lost.toml").write_text(lost, encoding="utf-8")
    assert main(["layers", "check", str(tmp_path / "lost.toml")]) == 1
    out = capsys.readouterr().out
    (centre,) = [line for line in out.splitlines() if line.startswith("centre\t")]
    assert centre.startswith("centre\tSTOP\t323 usable of 325\t2 missing coordinates; ")
    assert ("WARNING 323 of 323 point(s) lie in no 街镇: check the layer's coordinates and its "
            "crs") in centre
    assert "STOP [crs-fit:centre]" in centre
    broken = shipped_config_text().replace("agencyType == 4", "agencyType == 99")
    cfg = tmp_path / "broken.toml"
    cfg.write_text(broken, encoding="utf-8")
    assert main(["layers", "check", str(cfg)]) == 1
    assert "meal_point\tUNUSABLE" in capsys.readouterr().out


def test_fetch_with_local_inputs_only_checks(data_dir, capsys):
    assert main(["fetch", str(CONFIG)]) == 0
    out = capsys.readouterr().out
    assert "network (osm_file): 3796 nodes, 6291 edges" in out
    assert "layer centre: local (elderly_services_platform.json), nothing to fetch" in out


def test_a_second_run_says_what_it_reused_and_recompute_computes_afresh(
        data_dir, tmp_path, capsys, monkeypatch):
    from coverage15 import settings

    cache = tmp_path / "cache"
    monkeypatch.setattr(settings, "cache_folder", str(cache))
    args = ["run", str(CONFIG), "--no-map", "--out"]
    assert main([*args, str(tmp_path / "fresh"), "--recompute"]) == 0
    assert sorted(p.name for p in cache.iterdir()) == ["networks"]  # no results written
    assert settings.reuse_results  # restored for whatever runs next
    assert main([*args, str(tmp_path / "first")]) == 0
    assert "reused" not in capsys.readouterr().out
    assert main([*args, str(tmp_path / "second")]) == 0
    assert ("reused from an earlier run (same network, inputs, settings and code): "
            "demand snaps, centre, meal_point, canteen") in capsys.readouterr().out
    for name in ("gap_report.csv", "district_report.csv"):
        fresh = (tmp_path / "fresh" / name).read_bytes()
        assert (tmp_path / "first" / name).read_bytes() == fresh
        assert (tmp_path / "second" / name).read_bytes() == fresh


def test_cache_info_and_clear(tmp_path, capsys, monkeypatch):
    from coverage15 import settings
    from coverage15.network import _cache

    monkeypatch.setattr(settings, "cache_folder", str(tmp_path / "cache"))
    monkeypatch.setattr(settings, "results_cache_mb", 1024.0)
    assert main(["cache", "info"]) == 0
    assert "empty" in capsys.readouterr().out
    for kind in ("networks", "layers", "layers", "snaps"):
        _cache.save(_cache.path_for(kind, f"k{len(list(tmp_path.rglob('*.pickle')))}"),
                    b"x" * 1000)
    assert main(["cache", "info"]) == 0
    out = capsys.readouterr().out
    assert "layers         2 file(s)       0.0 MB  (results)" in out
    assert "networks       1 file(s)       0.0 MB  (inputs)" in out
    assert "results are kept within 1024 MB, the least recently used deleted first" in out
    assert main(["cache", "clear"]) == 0
    assert "removed 3 file(s)" in capsys.readouterr().out
    assert [p.parent.name for p in (tmp_path / "cache").rglob("*.pickle")] == ["networks"]
    assert main(["cache", "clear", "--all"]) == 0
    assert "removed 1 file(s)" in capsys.readouterr().out
    assert not list((tmp_path / "cache").rglob("*.pickle"))


@pytest.mark.parametrize(("args", "message"), [
    (["--k", "3", "--time-limit", "0"], "--time-limit must be a number of seconds > 0, got 0"),
    (["--k", "3", "--spacing-m", "-100"], "--spacing-m must be >= 0, got -100")])
def test_recommend_refuses_nonsense_numbers(capsys, args, message):
    assert main(["recommend", str(CONFIG), "--layer", "centre", *args]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


@pytest.mark.usefixtures("data_dir")
def test_recommend_refuses_a_misspelt_district_even_without_a_map(tmp_path, capsys):
    code = main(["recommend", str(CONFIG), "--layer", "centre", "--k", "1", "--no-map",
                 "--district", "黄埔区", "--out", str(tmp_path / "r"), "-q"])
    assert code == 2
    assert "--district '黄埔区' is not a district of the districts layer" in capsys.readouterr().err
    assert not (tmp_path / "r" / "recommendations.csv").exists()


@pytest.mark.parametrize("command", ["map", "recommend"])
@pytest.mark.usefixtures("data_dir")
def test_district_needs_a_layer_that_names_districts(tmp_path, capsys, monkeypatch, command):
    import coverage15.pipeline

    def no_run(*args, **kwargs):
        raise AssertionError("the run started")

    monkeypatch.setattr(coverage15.pipeline, "run", no_run)
    # no district_field and no [districts]: no district can be chosen, say so before the run
    text = shipped_config_text().replace('district_field = "district"\n', "")
    start = text.index("[districts]")
    text = text[:start] + text[text.index("[demand]"):]
    config = tmp_path / "c.toml"
    config.write_text(text, encoding="utf-8")
    extra = ["--layer", "centre", "--k", "1"] if command == "recommend" else []
    assert main([command, str(config), *extra, "--district", "黄浦区",
                 "--out", str(tmp_path / "o"), "-q"]) == 2
    err = capsys.readouterr().err
    assert ("--district '黄浦区': the 街镇 layer (jiezhen_osm.geojson) names no districts; set "
            "district_field in [units] or add a [districts] layer") in err
    assert not (tmp_path / "o").exists()


@pytest.mark.usefixtures("data_dir")
def test_a_busy_geopackage_does_not_stop_a_command_that_does_not_write_it(tmp_path,
                                                                          monkeypatch):
    import coverage15.pipeline

    class StartedError(Exception):
        pass

    def started(*args, **kwargs):
        raise StartedError

    monkeypatch.setattr(coverage15.pipeline, "run", started)
    (tmp_path / "coverage.gpkg").write_bytes(b"")
    (tmp_path / "coverage.gpkg-wal").write_bytes(b"")  # a run's GeoPackage, open in QGIS
    with pytest.raises(StartedError):  # `map` writes map.html only: it goes ahead
        main(["map", str(CONFIG), "--out", str(tmp_path), "-q"])
    assert main(["run", str(CONFIG), "--out", str(tmp_path), "-q"]) == 2  # `run` does not


@pytest.mark.usefixtures("data_dir")
def test_an_interrupt_after_the_outputs_stood_says_they_are_new(tmp_path, monkeypatch,
                                                                capsys):
    import coverage15.pipeline
    from coverage15.outputs._staging import staged_outputs

    monkeypatch.setattr(coverage15.pipeline, "run", lambda *args, **kwargs: None)

    def written_then_interrupted(result, out, **kwargs):
        with staged_outputs(out, kind="run") as stage:
            (stage / "gap_report.csv").write_text("new", encoding="utf-8")
        raise KeyboardInterrupt  # Ctrl-C while the tables go to the database

    monkeypatch.setattr(coverage15.pipeline, "write_outputs", written_then_interrupted)
    assert main(["run", str(CONFIG), "--out", str(tmp_path), "-q"]) == 130
    assert (f"interrupted after the outputs in {tmp_path} were in place; they are new and "
            "complete") in capsys.readouterr().err
    assert (tmp_path / "gap_report.csv").read_text(encoding="utf-8") == "new"

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C during the run: nothing was written by this one

    monkeypatch.setattr(coverage15.pipeline, "run", interrupted)
    assert main(["run", str(CONFIG), "--out", str(tmp_path), "-q"]) == 130
    assert "interrupted; earlier outputs are unchanged" in capsys.readouterr().err
