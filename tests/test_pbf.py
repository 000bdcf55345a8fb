"""Networks from .osm.pbf (pyosmium), the walk filter, clipping to a study area (issue #22)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import numpy as np
import pytest
import shapely

from coverage15 import settings
from coverage15.inputs.config import NetworkSpec
from coverage15.network import _walk_filter
from coverage15.network.graph import WalkNetwork, build_walk_network
from coverage15.network.pbf import study_area

osmium = pytest.importorskip("osmium")


def _write_pbf(source: Path, target: Path) -> Path:
    """``source`` (OSM XML) written as .osm.pbf with pyosmium, object by object."""
    with osmium.SimpleWriter(str(target), overwrite=True) as writer:
        for obj in osmium.FileProcessor(str(source)):
            writer.add(obj)
    return target


def _same_graph(a: WalkNetwork, b: WalkNetwork) -> None:
    """Same OSM nodes, the same split-loop nodes, the same edges by their ends and length."""
    assert (a.n_nodes, a.n_edges) == (b.n_nodes, b.n_edges)
    np.testing.assert_array_equal(np.sort(a.node_ids[a.node_ids > 0]),
                                  np.sort(b.node_ids[b.node_ids > 0]))
    np.testing.assert_allclose(np.sort(a.node_xy, axis=0), np.sort(b.node_xy, axis=0), atol=1e-6)

    def edges(n: WalkNetwork) -> np.ndarray:
        ids = np.where(n.node_ids > 0, n.node_ids, 0)  # split-loop ids depend on order
        lo = np.minimum(ids[n.edge_u], ids[n.edge_v])
        hi = np.maximum(ids[n.edge_u], ids[n.edge_v])
        table = np.column_stack([lo, hi, np.round(n.edge_length, 3)])
        return table[np.lexsort(table.T[::-1])]

    np.testing.assert_allclose(edges(a), edges(b), atol=2e-3)
    assert a.edge_length.sum() == pytest.approx(b.edge_length.sum(), abs=1e-6)


@pytest.fixture(scope="module")
def streets_pbf(streets_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_pbf(streets_file, tmp_path_factory.mktemp("pbf") / "central_streets.osm.pbf")


@pytest.mark.data
def test_pbf_gives_the_same_graph_as_the_xml(streets_file: Path, streets_pbf: Path):
    from_xml = build_walk_network(NetworkSpec("osm_file", streets_file))  # osmnx, as before
    steps: list[str] = []
    from_pbf = build_walk_network(NetworkSpec("pbf", streets_pbf), log_step=steps.append)
    assert from_pbf.n_nodes == 3796
    assert from_pbf.n_edges == 6291
    _same_graph(from_xml, from_pbf)
    assert steps[0] == "network: reading central_streets.osm.pbf"
    assert any("4,701 ways" in s for s in steps)  # progress while reading
    again: list[str] = []
    cached = build_walk_network(NetworkSpec("pbf", streets_pbf), log_step=again.append)
    assert again == ["network: cached graph of central_streets.osm.pbf"]
    assert cached.source == from_pbf.source


@pytest.mark.data
def test_walk_filter_reads_a_file_the_same_as_xml_or_pbf(streets_file: Path, streets_pbf: Path):
    xml = build_walk_network(NetworkSpec("osm_file", streets_file, ways="walk"))
    pbf = build_walk_network(NetworkSpec("pbf", streets_pbf, ways="walk"))
    _same_graph(xml, pbf)
    # the bundled extract has only streets; the walk filter drops the few not for walkers
    assert 0.9 * 6291 < xml.n_edges <= 6291


@pytest.mark.data
def test_a_clip_area_keeps_the_streets_inside_with_the_margin(streets_pbf: Path):
    box = (121.47, 31.22, 121.49, 31.24)
    spec = NetworkSpec("pbf", streets_pbf, area_bbox=box, area_margin_m=300.0)
    net = build_walk_network(spec)
    area = study_area(spec, None, settings.working_crs)
    assert area is not None
    assert area.contains(shapely.box(*box))
    lon, lat = net.node_xy.T  # in the working CRS: back to degrees
    import pyproj

    to_ll = pyproj.Transformer.from_crs(net.crs, "EPSG:4326", always_xy=True)
    lon, lat = to_ll.transform(lon, lat)
    assert shapely.contains_xy(shapely.buffer(area, 1e-6), lon, lat).all()
    assert lon.min() < box[0]
    assert lat.max() > box[3]
    whole = build_walk_network(NetworkSpec("pbf", streets_pbf))
    assert net.n_edges < whole.n_edges / 5
    assert net.source != whole.source


def test_units_area_needs_the_units(tmp_path: Path):
    from coverage15._errors import NetworkError

    with pytest.raises(NetworkError, match="units"):
        study_area(NetworkSpec("pbf", tmp_path / "x.osm.pbf", area="units"), None, "EPSG:32651")


# --- the walk filter on hand-made ways -------------------------------------------------------

def test_walk_filter_is_osmnx_walk_filter_plus_access_no():
    from osmnx import _overpass

    theirs = _overpass._get_network_filter("walk")
    ours = _walk_filter.overpass_filter()
    for condition in re.findall(r"\[[^\]]+\]", theirs):
        assert condition in ours
    assert ours.replace('["access"!~"^no$"]', "") == theirs


@pytest.mark.parametrize(("tags", "walk", "street"), [
    ({"highway": "footway"}, True, False),
    ({"highway": "path"}, True, False),
    ({"highway": "steps"}, True, False),
    ({"highway": "pedestrian"}, True, False),
    ({"highway": "living_street"}, True, True),
    ({"highway": "service"}, True, False),
    ({"highway": "residential"}, True, True),
    ({"highway": "primary_link"}, True, True),
    ({"highway": "motorway"}, False, False),
    ({"highway": "motorway_link"}, False, False),
    ({"highway": "cycleway"}, False, False),
    ({"highway": "footway", "access": "private"}, False, False),
    ({"highway": "residential", "access": "no"}, False, True),
    ({"highway": "residential", "foot": "no"}, False, True),
    ({"highway": "service", "service": "private"}, False, False),
    ({"highway": "pedestrian", "area": "yes"}, False, False),
    ({"highway": "primary", "sidewalk": "separate"}, False, True),
    ({"building": "yes"}, False, False),
])
def test_walk_and_street_filters(tags: dict[str, str], walk: bool, street: bool):
    assert _walk_filter.tag_filter("walk")(tags) is walk
    assert _walk_filter.tag_filter("streets")(tags) is street


HAND_OSM = """\
<?xml version='1.0' encoding='UTF-8'?>
<osm version="0.6" generator="hand">
{nodes}
  <way id="1"><nd ref="1"/><nd ref="2"/><nd ref="3"/><nd ref="4"/>
    <tag k="highway" v="residential"/></way>
  <way id="2"><nd ref="3"/><nd ref="5"/><nd ref="6"/><tag k="highway" v="footway"/></way>
  <way id="3"><nd ref="4"/><nd ref="7"/><tag k="highway" v="motorway"/></way>
  <way id="4"><nd ref="8"/><nd ref="9"/><nd ref="10"/><nd ref="8"/>
    <tag k="highway" v="footway"/></way>
</osm>
"""


def _hand_file(tmp_path: Path) -> Path:
    # nodes 1-7 along a street and a footway off it (metres apart at 31.2 N); 8-10 a ring
    coords = {1: (121.400, 31.200), 2: (121.402, 31.200), 3: (121.404, 31.200),
              4: (121.406, 31.200), 5: (121.404, 31.202), 6: (121.404, 31.204),
              7: (121.410, 31.200), 8: (121.420, 31.210), 9: (121.422, 31.210),
              10: (121.421, 31.212)}
    nodes = "\n".join(f'  <node id="{i}" version="1" lat="{y}" lon="{x}"/>'
                      for i, (x, y) in coords.items())
    path = tmp_path / "hand.osm"
    path.write_text(textwrap.dedent(HAND_OSM.format(nodes=nodes)), encoding="utf-8")
    return path


@pytest.mark.parametrize("suffix", ["osm", "pbf"])
def test_hand_made_ways_simplify_as_osmnx_does(tmp_path: Path, suffix: str):
    xml = _hand_file(tmp_path)
    path = xml if suffix == "osm" else _write_pbf(xml, tmp_path / "hand.osm.pbf")
    source = "osm_file" if suffix == "osm" else "pbf"
    walk = build_walk_network(NetworkSpec(source, path, ways="walk"))
    # the street 1-2-3-4 and the footway 3-5-6: node 2 and 5 are not junctions; the
    # motorway is not walked and the ring 8-9-10 (no junction on it) is dropped as by osmnx
    assert sorted(walk.node_ids.tolist()) == [1, 3, 4, 6]
    assert walk.n_edges == 3
    streets = build_walk_network(NetworkSpec(source, path, ways="streets"))
    # PBF: streets from residential up; OSM XML: every way in the file, as osmnx reads it
    # (4 joins the street to the motorway: no junction)
    assert sorted(streets.node_ids.tolist()) == ([1, 4] if suffix == "pbf" else [1, 3, 6, 7])


# --- the [network] keys ----------------------------------------------------------------------

def _config_with(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: str):
    from configs import shipped_config_text
    from coverage15.inputs.config import load_config

    monkeypatch.setenv("COVERAGE15_DATA", str(tmp_path))
    text = shipped_config_text().replace("[network]\n", f"[network]\n{extra}\n", 1)
    path = tmp_path / "run.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def test_network_keys_default_to_todays_streets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    spec = _config_with(tmp_path, monkeypatch, "").network
    assert (spec.ways, spec.area, spec.area_bbox, spec.area_margin_m) == (
        "streets", None, None, 1000.0)


def test_network_keys_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    spec = _config_with(tmp_path, monkeypatch, 'ways = "walk"\narea = "units"\n'
                        "area_bbox = [121.4, 31.1, 121.6, 31.3]\narea_margin_m = 500").network
    assert (spec.ways, spec.area, spec.area_bbox, spec.area_margin_m) == (
        "walk", "units", (121.4, 31.1, 121.6, 31.3), 500.0)


@pytest.mark.parametrize(("extra", "message"), [
    ('ways = "footways"', "ways"),
    ("area_bbox = [1, 2, 3]", "area_bbox"),
    ("area_margin_m = -5", "area_margin_m"),
    ("area = 5", "area"),
])
def test_bad_network_keys_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    extra: str, message: str):
    from coverage15._errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        _config_with(tmp_path, monkeypatch, extra)


@pytest.mark.data
def test_a_config_reads_a_pbf_clipped_to_its_units(streets_pbf: Path, data_dir: Path):
    from configs import shipped_config_text
    from coverage15.inputs.config import load_config
    from coverage15.pipeline import fetch

    text = shipped_config_text().replace(
        'source = "osm_file"', f'source = "pbf"\npath = "{streets_pbf}"\nways = "walk"\n'
        'area = "units"\narea_margin_m = 0\n#', 1)
    text = text.replace('path = "network/central_streets.osm"', "", 1)
    path = streets_pbf.parent / "pbf.toml"
    path.write_text(text, encoding="utf-8")
    config = load_config(path)
    assert (config.network.source, config.network.ways, config.network.area) == (
        "pbf", "walk", "units")
    done = fetch(config)
    assert done[0].startswith("network (pbf): ")
