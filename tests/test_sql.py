"""SQL names from configs and the command line are checked and quoted; passwords never shown."""

from __future__ import annotations

import os
from pathlib import Path

import geopandas as gpd
import pytest
from geopandas.testing import assert_geodataframe_equal
from shapely.geometry import Point

from configs import CONFIG, shipped_config_text
from coverage15 import ConfigError, InputFileError
from coverage15.inputs._sql import check_identifier, check_table_name, check_url, mask_url, scrub
from coverage15.inputs.postgis import read_postgis
from coverage15.outputs.writers import write_postgis

PAYLOADS = [
    'x";COPY(SELECT 1)TO PROGRAM \'id>f.txt\';--',
    'spatial_ref_sys" LIMIT 0; COPY (SELECT 1) TO \'adv_tbl\'; --',
    'a"b',
    "a;b",
    "a b",
    "a.b",
    "a\x00b",
    "a\nb",
    "",
    "a" * 64,
    "区" * 22,  # 66 bytes in UTF-8
]

BAD_URL = "postgresql://nobody:never@127.0.0.1:1/none"  # nothing may connect to it


def _points(n: int = 3) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"n": range(n), "名称": [f"点{i}" for i in range(n)]},
                            geometry=[Point(121.47 + i / 100, 31.23) for i in range(n)],
                            crs="EPSG:4326")


def _one_line_config_error(excinfo: pytest.ExceptionInfo[ConfigError]) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("name", PAYLOADS)
def test_a_bad_sql_name_is_refused(name):
    with pytest.raises(ConfigError) as excinfo:
        check_identifier(name, what="--schema")
    assert _one_line_config_error(excinfo).startswith("--schema: ")


@pytest.mark.parametrize("name", ["coverage15", "规划_2025", "Gap", "_x", "2025", "a" * 63,
                                  "区" * 21])
def test_a_plain_name_passes(name):
    assert check_identifier(name, what="--schema") == name


def test_table_names():
    assert check_table_name("public.units", what="table") == ("public", "units")
    assert check_table_name("units", what="table") == (None, "units")
    for bad in ("a.b.c", ".units", "public.", 'public."units"', "public.units;"):
        with pytest.raises(ConfigError):
            check_table_name(bad, what="table")


@pytest.fixture
def no_database(monkeypatch):
    """Any attempt to connect fails the test: names are checked before the database."""
    import coverage15.inputs.postgis
    import coverage15.outputs.writers

    def refuse(url):
        raise AssertionError("connected to the database")

    monkeypatch.setattr(coverage15.outputs.writers, "connect", refuse)
    monkeypatch.setattr(coverage15.inputs.postgis, "connect", refuse)


@pytest.mark.usefixtures("no_database")
@pytest.mark.parametrize("name", PAYLOADS)
def test_write_postgis_checks_every_name_before_connecting(name):
    for kwargs in ({"schema": name}, {"prefix": name} if name else {"prefix": ";"}):
        with pytest.raises(ConfigError) as excinfo:
            write_postgis({"units": _points()}, BAD_URL, **kwargs)
        _one_line_config_error(excinfo)
    with pytest.raises(ConfigError) as excinfo:
        write_postgis({"units": _points(), name: _points()}, BAD_URL, prefix="")
    _one_line_config_error(excinfo)
    if name != "a.b":  # (schema a, table b)
        with pytest.raises(ConfigError) as excinfo:
            read_postgis(BAD_URL, table=name)
        _one_line_config_error(excinfo)
    with pytest.raises(ConfigError) as excinfo:
        read_postgis(BAD_URL, table=f"public.{name}")
    _one_line_config_error(excinfo)


@pytest.mark.usefixtures("no_database")
def test_prefix_and_name_together_fit_63_bytes():
    with pytest.raises(ConfigError, match="64 bytes"):
        write_postgis({"a" * 53: _points()}, BAD_URL)  # coverage15_ + 53 = 64


def test_write_outputs_checks_the_schema_before_replacing_files(tmp_path):
    from coverage15.pipeline import write_outputs

    (tmp_path / "gap_report.csv").write_text("old", encoding="utf-8")
    with pytest.raises(ConfigError):
        write_outputs(None, tmp_path, to_database=BAD_URL, schema='x";DROP TABLE y;--')
    assert [p.name for p in tmp_path.iterdir()] == ["gap_report.csv"]
    assert (tmp_path / "gap_report.csv").read_text(encoding="utf-8") == "old"


def _schemas_and_tables(url: str) -> set[str]:
    import sqlalchemy

    from coverage15.inputs.postgis import connect as _engine

    engine = _engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(sqlalchemy.text(
                "SELECT table_schema || '.' || table_name FROM information_schema.tables "
                "UNION SELECT nspname FROM pg_namespace")).scalars()
            return set(rows)
    finally:
        engine.dispose()


def test_payloads_touch_nothing_in_the_database(postgis_url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where a COPY ... TO 'file' from the client side would land
    before = _schemas_and_tables(postgis_url)
    for name in PAYLOADS:
        for kwargs in ({"schema": name}, {"prefix": name} if name else {"prefix": ";"}):
            with pytest.raises(ConfigError):
                write_postgis({"units": _points()}, postgis_url, **kwargs)
        with pytest.raises(ConfigError):
            read_postgis(postgis_url, table=f"public.{name}")
    assert _schemas_and_tables(postgis_url) == before
    assert list(tmp_path.iterdir()) == []


def _is_superuser(url: str) -> bool:
    import sqlalchemy

    from coverage15.inputs.postgis import connect as _engine

    engine = _engine(url)
    try:
        with engine.connect() as connection:
            return bool(connection.execute(sqlalchemy.text(
                "SELECT rolsuper FROM pg_roles WHERE rolname = current_user")).scalar())
    finally:
        engine.dispose()


def test_odd_but_valid_names_round_trip_as_a_plain_role(postgis_url):
    if _is_superuser(postgis_url) and not os.environ.get("CI"):
        pytest.skip("the test database role is a superuser; .ci/run shows the plain role")
    assert not _is_superuser(postgis_url)  # least privilege (.ci/run, docs/postgis.md)
    frame = _points(4)
    written = write_postgis({"Gap": frame, "units": frame.iloc[:2]}, postgis_url,
                            schema="规划_2025", prefix="")
    assert written == ["规划_2025.Gap", "规划_2025.units"]
    assert {"规划_2025.Gap", "规划_2025.units"} <= _schemas_and_tables(postgis_url)
    back = read_postgis(postgis_url, table="规划_2025.Gap")
    assert back.crs.to_epsg() == 4326
    assert_geodataframe_equal(back, frame, check_dtype=False, normalize=True)
    assert len(read_postgis(postgis_url, table="规划_2025.units")) == 2
    # written again into the schema that now exists: replaced, not appended
    write_postgis({"Gap": frame.iloc[:1]}, postgis_url, schema="规划_2025", prefix="")
    assert len(read_postgis(postgis_url, table="规划_2025.Gap")) == 1


def test_a_refused_write_is_one_line(postgis_url):
    from coverage15 import OutputError

    with pytest.raises(OutputError) as excinfo:  # no role may create tables in pg_catalog
        write_postgis({"units": _points()}, postgis_url, schema="pg_catalog")
    message = str(excinfo.value)
    assert "\n" not in message
    assert "cannot write pg_catalog.coverage15_units" in message
    assert ":coverage15@" not in message  # the test role's password


@pytest.mark.parametrize(("url", "password"), [
    ("postgresql://u:p@ssW0rdLeak@host/db", "p@ssW0rdLeak"),
    ("postgresql://u:p%40ss@host/db", "p%40ss"),
    ("postgresql://u:pa:ss/wo#rd?x@host:5432/db", "pa:ss/wo#rd?x"),
    ("postgresql+psycopg://u:hunter2@host/db?sslmode=require", "hunter2"),
    ("postgresql://u@host/db?sslmode=require&password=hunter2", "hunter2"),
    ("postgresql://u@host/db?PASSWORD=hunter2#x", "hunter2"),
])
def test_mask_url_hides_the_whole_password(url, password):
    shown = mask_url(url)
    assert password not in shown
    assert "***" in shown
    assert shown.startswith(url.split("://")[0] + "://u")
    assert "host" in shown


def test_mask_url_keeps_a_url_without_password():
    assert mask_url("postgresql://u@host/db") == "postgresql://u@host/db"
    assert mask_url("postgresql://host:5432/db") == "postgresql://host:5432/db"
    assert mask_url("postgresql://u:p@ssW0rdLeak@host/db") == "postgresql://u:***@host/db"


def test_scrub_takes_the_password_out_of_any_text():
    url = "postgresql://u:p%40ss@host/db"
    text = f"cannot use {url}: password p@ss (p%40ss) refused"
    assert scrub(text, url) == "cannot use postgresql://u:***@host/db: password *** (***) refused"


def test_a_raw_at_sign_is_refused_before_the_driver_misreads_it():
    with pytest.raises(ConfigError) as excinfo:
        check_url("postgresql://u:p@ssW0rdLeak@127.0.0.1:1/db", what="--to")
    message = _one_line_config_error(excinfo)
    assert "ssW0rdLeak" not in message
    assert "%40" in message
    with pytest.raises(ConfigError):
        check_url("mysql://u:x@h/db")


@pytest.mark.parametrize("url", [
    "postgresql://nobody:s3cr%3At%2F%23@127.0.0.1:1/none",
    "postgresql://nobody@127.0.0.1:1/none?password=s3cr:t",
    "postgresql://nobody:s3cr:t/#@127.0.0.1:1/none",
])
def test_a_failing_connection_names_no_password(url):
    from coverage15.inputs.postgis import check_database

    with pytest.raises(InputFileError) as excinfo:
        check_database(url)
    message = str(excinfo.value)
    assert "cannot connect" in message
    assert "127.0.0.1" in message
    assert "s3cr" not in message
    assert excinfo.value.__cause__ is None  # nor does a traceback through the driver's error


def _config_with_database_layer(tmp_path: Path, extra: str) -> Path:
    text = shipped_config_text() + f"\n[layers.from_db]\nlabel = \"db\"\n{extra}\n"
    path = tmp_path / "run.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.usefixtures("data_dir")
@pytest.mark.parametrize("table", [*PAYLOADS[:5], "", "a" * 64, "public.a;b", "a.b.c"])
def test_a_config_table_name_is_a_config_problem(tmp_path, table):
    from coverage15.inputs.config import load_config

    quoted = table.replace("\\", "\\\\").replace('"', '\\"')
    path = _config_with_database_layer(
        tmp_path, f'database = "{BAD_URL}"\ntable = "{quoted}"')
    with pytest.raises(ConfigError) as excinfo:
        load_config(path)
    problems = [line for line in str(excinfo.value).splitlines() if "from_db" in line]
    assert any("run.toml [layers.from_db] table" in p for p in problems)


@pytest.mark.usefixtures("data_dir")
def test_a_config_url_problem_masks_the_password(tmp_path, monkeypatch):
    from coverage15.inputs.config import load_config

    monkeypatch.setenv("C15_TEST_DB_PASSWORD", "p@ssW0rdLeak")
    path = _config_with_database_layer(
        tmp_path, 'database = "postgresql://u:${C15_TEST_DB_PASSWORD}@h/db"\ntable = "t"')
    with pytest.raises(ConfigError, match=r"postgresql://u:\*\*\*@h/db") as excinfo:
        load_config(path)
    assert "ssW0rdLeak" not in str(excinfo.value)
    path = _config_with_database_layer(
        tmp_path, f'database = "{BAD_URL}"\ntable = "t"\nsql = "SELECT 1"')
    with pytest.raises(ConfigError, match="needs table or sql"):
        load_config(path)


@pytest.mark.usefixtures("data_dir")
@pytest.mark.parametrize("case", [
    ("--schema", 'x";COPY(SELECT 1)TO PROGRAM \'id>f.txt\';--', None),
    ("--schema", "a" * 64, None),
    ("--schema", "", None),
    ("--to", "postgresql://u:p@ssW0rdLeak@127.0.0.1:1/db", "ssW0rdLeak"),
    ("--to", "postgresql://u:hunter22@127.0.0.1:1/db", "hunter22"),
])
def test_cli_refuses_before_the_run_and_keeps_the_outputs(request, tmp_path, capsys, case):
    option, value, hidden = case
    # a bad --schema with a database that works (without the check, the run would start)
    to = request.getfixturevalue("postgis_url") if option == "--schema" else BAD_URL
    monkeypatch = request.getfixturevalue("monkeypatch")
    import coverage15.pipeline
    from coverage15.cli import main

    def no_run(*args, **kwargs):
        raise AssertionError("the run started")

    monkeypatch.setattr(coverage15.pipeline, "run", no_run)
    out = tmp_path / "out"
    out.mkdir()
    (out / "gap_report.csv").write_text("old", encoding="utf-8")
    argv = ["run", str(CONFIG), "--out", str(out), "--no-map", "--to", to, option, value]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("coverage15: error: ")
    assert err.count("\n") == 1
    assert "Traceback" not in err
    if hidden is not None:
        assert hidden not in err
    assert [p.name for p in out.iterdir()] == ["gap_report.csv"]
    assert (out / "gap_report.csv").read_text(encoding="utf-8") == "old"
