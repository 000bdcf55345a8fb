"""Content-keyed files in :data:`coverage15.settings.cache_folder`.

A cached file's key is a hash of everything its content depends on: the input data, the
parameters, and (for results) the package's own source code, so changing any of them misses
the cache instead of returning a stale answer. Files are written atomically (a temporary file,
then a rename), so an interrupted run never leaves half a file under a key; an unreadable file
is ignored (and rebuilt by the caller), never fatal. Nothing is read or written while
:data:`coverage15.settings.use_cache` is False.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from . import settings

__all__ = ["code_digest", "key_of", "load", "path_for", "points_digest", "save"]

log = logging.getLogger(__name__)


def key_of(*parts: object) -> str:
    """A hex digest of ``parts``: arrays by dtype, shape and bytes, anything else by ``repr``."""
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        if isinstance(part, np.ndarray):
            a = np.ascontiguousarray(part)
            h.update(f"{a.dtype.str}{a.shape}".encode())
            h.update(a.tobytes())
        elif isinstance(part, bytes):
            h.update(part)
        else:
            h.update(repr(part).encode())
        h.update(b"\x1f")
    return h.hexdigest()


def points_digest(geoms: np.ndarray) -> str:
    """A digest of point geometries, in order (missing and empty ones included as such)."""
    x, y = shapely.get_x(geoms), shapely.get_y(geoms)
    return key_of(np.column_stack([x, y]), shapely.is_missing(geoms))


@lru_cache(maxsize=1)
def code_digest() -> str:
    """A digest of this package's source files: any change to the code changes every key."""
    from . import __version__

    h = hashlib.blake2b(digest_size=12)
    h.update(__version__.encode())
    for path in sorted(Path(__file__).parent.glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def path_for(kind: str, key: str) -> Path:
    """The cache file of ``kind`` (a subfolder) under ``key``."""
    return Path(settings.cache_folder) / kind / f"{key}.pickle"


def load(path: Path) -> Any | None:
    """The object cached at ``path``, or None (no cache, no file, or an unreadable one)."""
    if not (settings.use_cache and path.is_file()):
        return None
    try:
        with path.open("rb") as fh:
            return pickle.load(fh)  # our own file, written by save()
    except Exception:  # a stale or damaged file is rebuilt, never fatal
        log.warning("ignoring unreadable cache file %s", path)
        return None


def save(path: Path, value: Any) -> None:
    """Write ``value`` to ``path`` atomically; a failure is logged, never raised."""
    if not settings.use_cache:
        return
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL)
        Path(tmp).replace(path)
        tmp = None
    except (OSError, pickle.PicklingError) as exc:
        log.warning("could not write cache file %s: %s", path, exc)
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
