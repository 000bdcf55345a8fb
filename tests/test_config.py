"""Run configuration: the shipped config loads; problems are collected and named."""

from __future__ import annotations

from pathlib import Path

import pytest

from configs import shipped_config_text
from coverage15 import ConfigError
from coverage15.inputs.config import load_config

ROOT = Path(__file__).resolve().parents[1]


def _problems(path: Path) -> str:
    """The text of the ConfigError that loading ``path`` must raise."""
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return str(info.value)


def test_shipped_config(central_config, data_dir):
    cfg = central_config
    assert list(cfg.layers) == ["centre", "meal_point", "canteen", "care_home"]
    assert [(p.id, round(p.speed_mps, 2)) for p in cfg.analysis.walk_profiles] == [
        ("standard", 1.11), ("elderly", 0.76), ("frail", 0.64)]
    assert cfg.population is not None
    assert cfg.population.unit == "district"
    assert cfg.layers["centre"].role == "centre"
    assert cfg.layers["centre"].filter == "agencyType == 6"
    assert cfg.layers["centre"].crs == "gcj02"
    assert cfg.analysis.limit_m == 1000.0  # 15 min at 4 km/h
    assert cfg.network.path == data_dir / "network/central_streets.osm"
    assert cfg.targets == ROOT / "data/targets/shanghai-2025.toml"
    assert cfg.analysis.share_basis == "points"  # verdicts on residential points


@pytest.mark.parametrize(("basis", "message"), [
    ("people", None), ("points", None), ("persons", "'persons' is not one of 'points'")])
def test_share_basis_is_checked(tmp_path, data_dir, basis, message):
    path = tmp_path / "basis.toml"
    path.write_text(shipped_config_text().replace(
        'working_crs = "EPSG:32651"', f'working_crs = "EPSG:32651"\nshare_basis = "{basis}"'),
        encoding="utf-8")
    if message is None:
        assert load_config(path).analysis.share_basis == basis
    else:
        assert message in _problems(path)


def test_unset_data_variable_is_named(monkeypatch):
    monkeypatch.delenv("COVERAGE15_DATA", raising=False)
    with pytest.raises(ConfigError, match="environment variable COVERAGE15_DATA is not set"):
        load_config(ROOT / "data/shanghai-central.toml")


def test_all_problems_reported_at_once(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(
        """
[analysis]
minutes = -5
[network]
source = "osm_file"
path = "streets.osm"
[units]
path = "units.geojson"
[layers.Centre]
path = "a.csv"
[layers.meal]
path = "b.csv"
role = "kitchen"
x = "lng"
color = "#ff0000"
""",
        encoding="utf-8",
    )
    text = _problems(path)
    assert "[analysis] minutes: must be > 0" in text
    assert "[units] name_field: missing (required)" in text
    assert "[layers.Centre]: layer keys are lower-case" in text
    assert "[layers.meal] role: 'kitchen' is not one of" in text
    assert "[layers.meal]: give both x and y" in text
    assert "[layers.meal] color: unknown key" in text
    assert "did you mean 'colour'?" in text
    assert "has 6 problem(s)" in text


def test_not_a_file(tmp_path):
    with pytest.raises(ConfigError, match="a directory"):
        load_config(tmp_path)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml")
    (tmp_path / "broken.toml").write_text("name = [", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(tmp_path / "broken.toml")
    (tmp_path / "gb.toml").write_bytes('name = "上海中心城区"'.encode("gb18030"))
    with pytest.raises(ConfigError, match=r"not UTF-8 .*save it as UTF-8"):
        load_config(tmp_path / "gb.toml")


def test_relative_data_variable_is_relative_to_the_working_directory(data_dir, monkeypatch,
                                                                       tmp_path):
    import os

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COVERAGE15_DATA", os.path.relpath(data_dir, tmp_path))
    cfg = load_config(ROOT / "data/shanghai-central.toml")
    assert cfg.network.path == data_dir / "network/central_streets.osm"
    assert cfg.network.path.is_file()


def test_config_dir_names_a_file_beside_a_copied_config(data_dir, tmp_path, monkeypatch):
    """The shipped config copied elsewhere, with a layer of the user's own beside it."""
    folder = tmp_path / "my project"
    folder.mkdir()
    (folder / "stations.csv").write_text("name,x,y\na,121.47,31.22\n", encoding="utf-8")
    text = shipped_config_text() + (
        '\n[layers.social_work]\nlabel = "社工站"\npath = "${CONFIG_DIR}/stations.csv"\n'
        'x = "x"\ny = "y"\ncrs = "EPSG:4326"\n')
    (folder / "run.toml").write_text(text, encoding="utf-8")
    # an environment variable of that name does not override the file's own folder
    monkeypatch.setenv("CONFIG_DIR", str(tmp_path / "elsewhere"))
    cfg = load_config(folder / "run.toml")
    assert cfg.layers["social_work"].path == folder / "stations.csv"
    assert cfg.network.path == data_dir / "network/central_streets.osm"  # still data_dir's
    # reached through a link, it is the link's folder, as the user sees it
    link = tmp_path / "link"
    link.symlink_to(folder)
    assert load_config(link / "run.toml").layers["social_work"].path == link / "stations.csv"


def test_map_tiles_from_config(tmp_path, data_dir):
    base = shipped_config_text()
    path = tmp_path / "c.toml"
    path.write_text(base.replace('tiles = "OpenStreetMap"', 'tiles = "none"'), encoding="utf-8")
    assert load_config(path).map.tiles == "none"
    path.write_text(base.replace('tiles = "OpenStreetMap"',
                                 'tiles = "https://tiles.example/{z}/{x}/{y}.png"'),
                    encoding="utf-8")
    with pytest.raises(ConfigError, match="a tile URL needs its attribution"):
        load_config(path)


def test_cli_uses_config_tiles_unless_told_otherwise(tmp_path, data_dir):
    import argparse

    from coverage15.cli import _map_options_from

    base = shipped_config_text()
    path = tmp_path / "c.toml"
    path.write_text(base.replace('tiles = "OpenStreetMap"', 'tiles = "OpenStreetMap.HOT"'),
                    encoding="utf-8")
    config = load_config(path)
    args = argparse.Namespace(tiles=None, tiles_attribution=None, district=None,
                              assets="inline")
    assert _map_options_from(args, config).tiles == "OpenStreetMap.HOT"
    args.tiles = "none"
    assert _map_options_from(args, config).tiles is None


def test_typos_and_wrong_types_are_refused_everywhere(tmp_path, data_dir):
    shipped = shipped_config_text()
    assert "[analysis]" in shipped
    bad = shipped.replace("[analysis]", "oficial_names = \"x.csv\"\n[analysis]\n"
                          "walk_sped_kmh = 5", 1)
    bad = bad.replace("access_leg = true", 'access_leg = "false"')
    bad = bad.replace('working_crs = "EPSG:32651"', 'working_crs = "EPSG:4326"')
    bad = bad.replace("[network]", "[network]\nnetwork_type = \"drvie\"", 1)
    bad = bad.replace("[units]", "[units]\ndistrct_field = \"district\"", 1)
    bad = bad.replace("[layers.canteen]", "[layers.canteen]\nexclude_points = 5", 1)
    bad = bad.replace("[layers.canteen]",
                      "[layers.demand]\npath = \"x.csv\"\n\n[layers.canteen]", 1)
    bad = bad.replace('filter = "agencyType == 6"', 'filter = " "', 1)
    path = tmp_path / "typos.toml"
    path.write_text(bad, encoding="utf-8")
    text = _problems(path)
    assert "typos.toml 'oficial_names': unknown key" in text
    assert "did you mean 'official_names'?" in text
    assert "[analysis] walk_sped_kmh: unknown key" in text
    assert "did you mean 'walk_speed_kmh'?" in text
    assert "[analysis] access_leg: expected true or false (no quotes), got 'false'" in text
    assert "[analysis] working_crs: 'EPSG:4326' is not a projected CRS in metres" in text
    assert "[network] network_type: 'drvie' not in" in text
    assert "[units] distrct_field: unknown key" in text
    assert "[layers.canteen] exclude_points: expected a list of [x, y] pairs" in text
    assert "[layers.centre] filter: empty; remove the key" in text
    assert "[layers.demand]: 'demand' names the residential points" in text
    assert "has 9 problem(s)" in text


def test_layer_mistakes_a_gis_person_makes_are_refused(tmp_path, data_dir):
    shipped = shipped_config_text()
    bad = shipped.replace("exclude_points = [[121.473701, 31.230416]]",
                          "exclude_points = [[31.230416, 121.473701]]", 1)
    bad = bad.replace("[layers.canteen]", "[layers.canteen]\ncolour = \"blue\"", 1)
    bad = bad.replace('label = "社区长者食堂"', 'label = "助餐服务点"', 1)
    bad = bad.replace("[layers.canteen]", "[layers.snap]\npath = \"x.csv\"\nx = \"a\"\n"
                      "y = \"b\"\ncrs = \"EPSG:4326\"\n\n[layers.canteen]", 1)
    path = tmp_path / "gis.toml"
    path.write_text(bad, encoding="utf-8")
    text = _problems(path)
    assert ("exclude_points: [31.230416, 121.473701] looks like [latitude, longitude]; "
            "write [x, y] = [longitude, latitude], e.g. [121.473701, 31.230416]") in text
    assert "[layers.canteen] colour: 'blue' is not a colour such as \"#1f78b4\"" in text
    assert "layers meal_point, canteen share the label '助餐服务点'" in text
    assert "the layer key 'snap' is reserved" in text
    assert "has 4 problem(s)" in text


def test_layer_colours_from_config_then_the_palette(central_config):
    from dataclasses import replace

    from coverage15.outputs.maps import LAYER_COLOURS, layer_colours

    layers = dict(central_config.layers)
    assert list(layer_colours(layers).values()) == LAYER_COLOURS[:4]
    # a layer's own colour is used; the others keep theirs
    layers["meal_point"] = replace(layers["meal_point"], colour="#FF0000")
    assert layer_colours(layers) == {"centre": LAYER_COLOURS[0], "meal_point": "#ff0000",
                                     "canteen": LAYER_COLOURS[2],
                                     "care_home": LAYER_COLOURS[3]}
    # with more layers than colours the palette starts again
    many = {f"l{i}": replace(layers["centre"], key=f"l{i}") for i in range(12)}
    colours = list(layer_colours(many).values())
    assert colours[:10] == LAYER_COLOURS
    assert colours[10:] == LAYER_COLOURS[:2]


@pytest.mark.parametrize(("crs", "message"), [
    ("EPSG:99999", "unknown CRS 'EPSG:99999'"),
    ("EPSG:3857", None),  # projected, in metres: allowed (if unwise for areas)
    ("EPSG:32650", None)])
def test_working_crs_is_checked(tmp_path, data_dir, crs, message):
    shipped = shipped_config_text()
    path = tmp_path / "crs.toml"
    path.write_text(shipped.replace('working_crs = "EPSG:32651"', f'working_crs = "{crs}"'),
                    encoding="utf-8")
    if message is None:
        assert load_config(path).analysis.working_crs == crs
    else:
        with pytest.raises(ConfigError, match=message):
            load_config(path)


def test_offset_chinese_basemaps_are_warned(central_config):
    from dataclasses import replace

    from coverage15.inputs.checks import input_problems
    from coverage15.inputs.config import MapSpec
    from coverage15.inputs.layers import load_units

    units = load_units(central_config.units)
    gaode = replace(central_config, map=MapSpec(tiles="Gaode.Normal"), official_names=None)
    (problem,) = [p for p in input_problems(gaode, units, {}, None) if p.input == "map"]
    assert problem.severity == "warning"
    assert "GCJ-02/BD-09" in problem.message
    plain = replace(gaode, map=MapSpec(tiles="OpenStreetMap"))
    assert not [p for p in input_problems(plain, units, {}, None) if p.input == "map"]


def test_layers_sharing_a_colour_are_warned(central_config):
    from dataclasses import replace

    import geopandas as gpd

    from coverage15.inputs.checks import input_problems

    many = {f"l{i}": replace(central_config.layers["centre"], key=f"l{i}", label=f"L{i}")
            for i in range(11)}
    config = replace(central_config, layers=many, official_names=None)
    units = gpd.GeoDataFrame({"unit": ["a"], "district": ["d"]}, geometry=[None], crs=4326)
    (problem,) = [p for p in input_problems(config, units, {}, None) if p.input == "map"]
    assert problem.message.startswith("layers l0, l10 are drawn in the same colour #1f78b4 "
                                      "(more layers than the palette's ten colours)")
    # a layer given another's colour: the same warning, for the right reason
    two = {"a": many["l0"], "b": replace(many["l1"], colour="#1F78B4")}
    config = replace(central_config, layers=two, official_names=None)
    (problem,) = [p for p in input_problems(config, units, {}, None) if p.input == "map"]
    assert problem.message.startswith("layers a, b are drawn in the same colour #1f78b4: set")


def test_scale_section(tmp_path, data_dir):
    """``[scale] workers`` and ``partitions``: whole numbers of at least 1, default unset."""
    base = shipped_config_text()
    path = tmp_path / "c.toml"
    path.write_text(base + "\n[scale]\nworkers = 16\npartitions = 64\n", encoding="utf-8")
    scale = load_config(path).scale
    assert (scale.workers, scale.partitions) == (16, 64)
    path.write_text(base, encoding="utf-8")
    assert load_config(path).scale.workers is None
    path.write_text(base + "\n[scale]\nworkers = 0\npartitons = 8\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "[scale] workers" in str(caught.value)
    assert "partitons" in str(caught.value)
