"""Reading from PostgreSQL/PostGIS: a layer's ``table`` or ``sql``, and the connection.

Names are checked and quoted (:mod:`coverage15.inputs._sql`); the password never appears in a
message. The writers (:func:`coverage15.outputs.writers.write_postgis`) connect through
:func:`connect` too.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd

from coverage15._errors import InputFileError
from coverage15.inputs._sql import check_table_name, check_url, mask_url, scrub

__all__ = ["check_database", "connect", "driver_message", "read_postgis"]


def connect(url: str) -> Any:
    """A connected engine for ``url``; errors name the database with its password masked."""
    import sqlalchemy

    check_url(url)
    driver_url = url
    if url.startswith("postgresql://"):
        driver_url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    try:
        engine = sqlalchemy.create_engine(driver_url)
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT postgis_version()"))
    except Exception as exc:
        first = scrub(scrub(str(exc).splitlines()[0], driver_url), url)
        msg = f"database {mask_url(url)}: cannot connect or PostGIS is missing ({first})"
        raise InputFileError(msg) from None  # the driver's own message may hold the URL
    return engine


def driver_message(exc: BaseException) -> str:
    """The first line of the database's own message behind ``exc``, else of ``exc``.

    pandas and SQLAlchemy wrap the database's message with the statement.
    """
    import sqlalchemy

    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, sqlalchemy.exc.DBAPIError) and str(cause.orig).strip():
            return str(cause.orig).strip().splitlines()[0]
        cause = cause.__cause__ or cause.__context__
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def check_database(url: str) -> None:
    """Connect once to fail early (before a long run) when the database is unusable."""
    connect(url).dispose()


def read_postgis(url: str, *, table: str | None = None, sql: str | None = None,
                 geometry_column: str = "geometry") -> gpd.GeoDataFrame:
    """Read a PostGIS table (``schema.table`` or ``table``) or query as a GeoDataFrame.

    The CRS comes along. ``table`` is checked (letters, digits, ``_``) and quoted by
    SQLAlchemy. ``sql`` is trusted input: the user's own query, run as given with the user's
    own credentials (the database's permissions are what limit it), never combined with other
    text.
    """
    if (table is None) == (sql is None):
        msg = "read_postgis: give either table= or sql="
        raise ValueError(msg)
    import sqlalchemy

    query: Any
    if table is not None:
        schema, name = check_table_name(table, what="database table")
        query = sqlalchemy.select(sqlalchemy.literal_column("*")).select_from(
            sqlalchemy.table(name, schema=schema))
    else:
        assert sql is not None
        query = sqlalchemy.text(sql)
    engine = connect(url)
    try:
        return gpd.read_postgis(query, engine, geom_col=geometry_column)
    except Exception as exc:
        first = scrub(driver_message(exc), url)
        what = f"table {table!r}" if table is not None else f"query {' '.join(str(sql).split())!r}"
        msg = f"database {mask_url(url)}, {what}: cannot read ({first})"
        raise InputFileError(msg) from exc
    finally:
        engine.dispose()
