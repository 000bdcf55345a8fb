"""Shared pytest fixtures.

Real data comes from the folder named by ``COVERAGE15_DATA``. Without it, data tests skip
locally but fail under CI (``CI=true``), so a misconfigured CI cannot pass by skipping.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from coverage15 import settings

ROOT = Path(__file__).resolve().parents[1]
CENTRAL_CONFIG = ROOT / "data" / "shanghai-central.toml"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared Shanghai data folder named by COVERAGE15_DATA."""
    value = os.environ.get("COVERAGE15_DATA")
    message = (
        "COVERAGE15_DATA is not set: point it at the shared data folder, e.g. "
        "export COVERAGE15_DATA=../shared/data/shanghai"
    )
    if not value:
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    # CI gives a relative path (../shared/data/shanghai): made absolute as the config makes
    # it, not resolved, so a data folder reached through a symlink keeps its path
    path = Path(os.path.abspath(value))  # noqa: PTH100
    if not (path / "README.md").is_file():
        pytest.fail(f"COVERAGE15_DATA={value} does not hold the shared data (no README.md)")
    return path


@pytest.fixture(scope="session")
def streets_file(data_dir: Path) -> Path:
    """The central OSM street file of the shared data (the network and PBF tests)."""
    path = data_dir / "network" / "central_streets.osm"
    if not path.is_file():
        pytest.skip(f"{path} not found (COVERAGE15_DATA points at the wrong folder?)")
    return path


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Tests never read or write the user's cache, nor follow its size limit."""
    old = settings.cache_folder, settings.results_cache_mb
    settings.cache_folder = str(tmp_path_factory.mktemp("cache"))
    settings.results_cache_mb = 1024.0  # the default, whatever COVERAGE15_RESULTS_CACHE_MB says
    yield
    settings.cache_folder, settings.results_cache_mb = old


@pytest.fixture(scope="session")
def central_config(data_dir: Path):
    """The shipped central-Shanghai run config."""
    from coverage15.inputs.config import load_config

    return load_config(CENTRAL_CONFIG)


@pytest.fixture(scope="session")
def central_run(central_config):
    """One full run on the central-Shanghai config, shared by the tests."""
    from coverage15.pipeline import run

    return run(central_config)


@pytest.fixture(scope="session")
def central_outputs(central_run, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The outputs of the shared run, written once."""
    from coverage15.pipeline import write_outputs

    out = tmp_path_factory.mktemp("central-out")
    write_outputs(central_run, out)
    return out


POSTGIS_URL = os.environ.get(
    "COVERAGE15_TEST_POSTGIS", "postgresql://coverage15:coverage15@127.0.0.1:5432/coverage15_test"
)


@pytest.fixture(scope="session")
def straight_street():
    """``make(edges)``: a hand-checkable network, one straight street of 250 m edges.

    Nodes ``0 … edges`` at ``x = 350,000 + 250 i``, ``y = 3,450,000`` (EPSG:32651); the
    extent is the street's box grown by 500 m.
    """
    import networkx as nx
    import shapely

    from coverage15.network.graph import network_from_graph

    def make(edges: int, *, x0: float = 350_000.0, y0: float = 3_450_000.0):
        g = nx.MultiGraph(crs="EPSG:32651")
        for i in range(edges + 1):
            g.add_node(i, x=x0 + 250.0 * i, y=y0)
        g.add_edges_from((i, i + 1) for i in range(edges))
        extent = shapely.box(x0 - 500, y0 - 500, x0 + 250.0 * edges + 500, y0 + 500)
        return network_from_graph(g, min_component_m=0, extent=extent)

    return make


@pytest.fixture(scope="session")
def postgis_url() -> str:
    """A PostGIS database for round trips (.ci/run starts one on loopback)."""
    from coverage15 import Coverage15Error
    from coverage15.inputs.postgis import connect

    try:
        connect(POSTGIS_URL).dispose()
    except Coverage15Error as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostGIS test database not reachable under CI: {exc}")
        pytest.skip(f"no PostGIS test database ({exc}); .ci/run shows how to start one")
    return POSTGIS_URL


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tests that need the shared data; skip the ``web`` ones unless COVERAGE15_WEB=1.

    A test needs the data when it uses the ``data_dir`` fixture, directly or through another
    fixture: ``pytest -m "not data"`` runs the fast, self-contained tests alone.
    """
    for item in items:
        if "data_dir" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.data)
    if os.environ.get("COVERAGE15_WEB") == "1":
        return
    skip = pytest.mark.skip(reason="needs internet; set COVERAGE15_WEB=1 to run")
    for item in items:
        if "web" in item.keywords:
            item.add_marker(skip)


def _need(what: str) -> None:
    message = f"browser test needs {what} (Debian: apt-get install chromium chromium-driver)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """Headless Chromium through chromedriver, with a fresh profile (the map and app tests)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        _need("chromium and chromedriver on PATH")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _need("selenium (pip install -e '.[test]')")
    options = Options()
    options.binary_location = str(chromium)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
                 "--lang=zh-CN",
                 # no host but this machine resolves: basemap tiles fail at once, never hang
                 # the page load on a network that drops packets (tests stay offline)
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"):
        options.add_argument(flag)
    options.page_load_strategy = "eager"  # the tests wait for the page's own ready flag
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(driver_path)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
