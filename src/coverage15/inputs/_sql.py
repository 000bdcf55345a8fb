"""SQL identifiers and database URLs: checked, and masked for messages, in one place.

* :func:`check_identifier` / :func:`check_table_name` — a schema, table prefix or table name
  from a config or the command line is refused (:class:`ConfigError`, one line) unless it is a
  plain PostgreSQL identifier: letters (any script, so ``规划_2025`` is fine), digits and
  ``_``, at most 63 bytes. Names are then quoted by SQLAlchemy, never pasted into SQL text.
* :func:`mask_url` — a ``postgresql://`` URL with its password replaced by ``***``, whatever
  characters the password holds; every message and log line shows URLs through it.
* :func:`scrub` — a driver's message with any password of the URL taken out.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from coverage15._errors import ConfigError

__all__ = [
    "MAX_IDENTIFIER_BYTES",
    "check_identifier",
    "check_table_name",
    "check_url",
    "mask_url",
    "scrub",
]

MAX_IDENTIFIER_BYTES = 63  # PostgreSQL's NAMEDATALEN - 1; longer names are cut silently

_QUERY_PASSWORD = re.compile(r"([?&]password=)([^&#]*)", re.IGNORECASE)


def check_identifier(name: object, *, what: str) -> str:
    """``name`` if it is a plain PostgreSQL identifier, else a one-line :class:`ConfigError`.

    Allowed: letters of any script, digits and ``_`` (a leading digit too: the name is
    quoted), 1 to 63 bytes in UTF-8. Refused: empty, quotes, dots, spaces, ``;``, NUL and any
    other punctuation or control character. Case is kept (``Gap`` and ``gap`` are two tables).

    Parameters
    ----------
    name
        The name as given.
    what
        What it is, for the message (e.g. ``--schema`` or ``config.toml [layers.x] table``).
    """
    if not isinstance(name, str) or not name:
        msg = f"{what}: an SQL name is needed, got {name!r}"
        raise ConfigError(msg)
    size = len(name.encode("utf-8"))
    if size > MAX_IDENTIFIER_BYTES:
        msg = (f"{what}: {name[:20]!r}… is {size} bytes long; PostgreSQL names hold at most "
               f"{MAX_IDENTIFIER_BYTES} bytes (a Chinese character takes 3)")
        raise ConfigError(msg)
    if not ("_" + name).isidentifier():
        bad = next((c for c in name if not ("_" + c).isidentifier()), name[0])
        shown = repr(name) if len(name) <= 40 else f"{name[:40]!r}…"
        msg = (f"{what}: {shown} holds {bad!r}; use only letters, digits and _ in SQL "
               "names (e.g. coverage15 or 规划_2025)")
        raise ConfigError(msg)
    return name


def check_table_name(name: object, *, what: str) -> tuple[str | None, str]:
    """``(schema, table)`` of a ``table`` or ``schema.table`` name, each part checked.

    The schema is None when not given (the database's search path decides).
    """
    if not isinstance(name, str):
        msg = f"{what}: expected text (table or schema.table), got {name!r}"
        raise ConfigError(msg)
    parts = name.split(".")
    if len(parts) > 2:
        msg = f"{what}: {name!r} has {len(parts) - 1} dots; give table or schema.table"
        raise ConfigError(msg)
    checked = [check_identifier(p, what=f"{what} {name!r}") for p in parts]
    return (None, checked[0]) if len(checked) == 1 else (checked[0], checked[1])


def _split(url: str) -> tuple[str, str | None, str | None, str]:
    """``(scheme://, user, password, rest)``: the password ends at the LAST ``@``.

    So a raw ``@``, ``:``, ``/``, ``?`` or ``#`` in a password stays inside it. ``user`` and
    ``password`` are None where the URL has none.
    """
    scheme, sep, after = url.partition("://")
    if not sep:
        return "", None, None, url
    userinfo, at, rest = after.rpartition("@")
    if not at:
        return scheme + sep, None, None, after
    user, colon, password = userinfo.partition(":")
    return scheme + sep, user, password if colon else None, rest


def mask_url(url: str) -> str:
    """The URL with its password, wherever given, as ``***``: fit for messages and logs.

    ``postgresql://u:p@ss@host/db`` gives ``postgresql://u:***@host/db``; a URL without a
    password is unchanged; ``?password=…`` is masked too. Anything after the ``://`` up to
    the last ``@`` but the user name counts as password (better too much masked than too
    little).
    """
    scheme, user, password, rest = _split(url)
    rest = _QUERY_PASSWORD.sub(r"\1***", rest)
    if user is None:
        return scheme + rest
    return f"{scheme}{user}{':***' if password is not None else ''}@{rest}"


def _secrets(url: str) -> set[str]:
    """Every form in which a password of ``url`` could show up in a driver's message."""
    _, _, password, rest = _split(url)
    found = [password or ""] + [m.group(2) for m in _QUERY_PASSWORD.finditer(rest)]
    found += [unquote(p) for p in found]
    return {s for s in found if s}


def scrub(text: str, url: str) -> str:
    """``text`` (e.g. a driver's error) with each password of ``url`` replaced by ``***``.

    The URL itself is masked first (so its host and user stay readable).
    """
    text = text.replace(url, mask_url(url))
    for secret in sorted(_secrets(url), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def check_url(url: object, *, what: str = "database") -> str:
    """``url`` if it is a ``postgresql://`` URL the driver reads as written.

    Refused with a one-line :class:`ConfigError` (the password masked): anything else, and a
    raw ``@`` in the user name or password, which the driver would take as the end of the
    password (sending the rest as the host name, into its error messages); write it ``%40``.
    """
    if not isinstance(url, str) or not re.match(r"postgresql(\+\w+)?://", url):
        shown = mask_url(url) if isinstance(url, str) else repr(url)
        msg = f"{what} {shown}: expected a postgresql://user:password@host:port/db URL"
        raise ConfigError(msg)
    after = url.partition("://")[2]
    if after.count("@") > 1:
        msg = (f"{what} {mask_url(url)}: more than one '@'; write an @ in the user name or "
               "password as %40 (e.g. p%40ss for p@ss)")
        raise ConfigError(msg)
    return url
