"""Content-keyed files in :data:`coverage15.settings.cache_folder`.

A cached file's key is a hash of everything its content depends on: the input data, the
parameters, and (for results) the package's own source code, so changing any of them misses
the cache instead of returning a stale answer. Files are written atomically (a temporary file,
then a rename), so an interrupted run never leaves half a file under a key. Each file carries a
checksum of its content: a damaged file (one that would still unpickle, with wrong numbers in
it) is ignored like an unreadable one, and rebuilt by the caller; never fatal. Nothing is read
or written while :data:`coverage15.settings.use_cache` is False.

Results (:data:`RESULT_KINDS`) are kept to :data:`coverage15.settings.results_cache_mb`:
:func:`prune` deletes the least recently used (a file read from the cache counts as used).
Networks and OpenStreetMap answers are inputs, kept until the user clears them.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import pickle
import tempfile
from pathlib import Path
from typing import IO, Any

import numpy as np
import shapely

from coverage15 import settings

__all__ = [
    "RESULT_KINDS",
    "clear",
    "code_digest",
    "geometry_digest",
    "key_of",
    "load",
    "path_for",
    "prune",
    "save",
    "usage",
]

log = logging.getLogger(__name__)

RESULT_KINDS = ("layers", "snaps")  # earlier runs' distance work (inputs: networks, osm)
# every cache file: MAGIC, the payload's 16-byte BLAKE2b digest, then the pickled payload
MAGIC = b"coverage15-cache\x01"
HEADER = len(MAGIC) + 16
BLOCK = 1 << 20  # bytes read at a time when checking a file


def key_of(*parts: object) -> str:
    """A hex digest of ``parts``.

    Numeric arrays count by dtype, shape and bytes, bytes by length and content, anything else
    by ``repr``. Object arrays are refused (their bytes are pointers).
    """
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        if isinstance(part, np.ndarray):
            if part.dtype.hasobject:
                msg = "key_of: object arrays have no stable bytes; pass their content"
                raise TypeError(msg)
            a = np.ascontiguousarray(part)
            h.update(f"{a.dtype.str}{a.shape}".encode())
            h.update(a.tobytes())
        elif isinstance(part, bytes):
            h.update(f"bytes{len(part)}:".encode())
            h.update(part)
        else:
            h.update(repr(part).encode())
        h.update(b"\x1f")
    return h.hexdigest()


def geometry_digest(geoms: np.ndarray) -> str:
    """A digest of geometries, in order.

    Type, coordinates and parts of each count; missing and empty ones are included as such.
    """
    geoms = np.asarray(geoms, dtype=object)
    coords, index = shapely.get_coordinates(geoms, return_index=True)
    return key_of(shapely.get_type_id(geoms), shapely.get_num_coordinates(geoms),
                  shapely.get_num_geometries(geoms), coords, index)


def _code_digest(package: Path | None = None) -> str:
    """The digest of every ``*.py`` below ``package`` (default: coverage15's folder)."""
    import geopandas
    import pyproj
    import scipy

    from coverage15._version import __version__

    h = hashlib.blake2b(digest_size=12)
    libraries = (__version__, np.__version__, scipy.__version__, shapely.__version__,
                 shapely.geos_version_string, pyproj.__version__, pyproj.proj_version_str,
                 geopandas.__version__)
    h.update(repr(libraries).encode())
    package = package or Path(__file__).parents[1]  # every module, in every subpackage
    for path in sorted(package.rglob("*.py")):
        h.update(path.relative_to(package).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


# Taken when the package's modules are loaded (this module is imported with the network and
# kernel modules), so results are filed under the code that computed them even if a file is
# edited later in the session.
_CODE_DIGEST = _code_digest()


def code_digest() -> str:
    """A digest of this package's code and of the libraries that compute results.

    The source files, and the versions of numpy, scipy, shapely and GEOS, pyproj and PROJ and
    geopandas: any change to them changes every result key.
    """
    return _CODE_DIGEST


def path_for(kind: str, key: str) -> Path:
    """The cache file of ``kind`` (a subfolder) under ``key``."""
    return Path(settings.cache_folder) / kind / f"{key}.pickle"


def load(path: Path) -> Any | None:
    """The object cached at ``path``, or None (no cache, no file, or an unreadable one).

    The file is read twice, in blocks: once to check its checksum, once to unpickle it, so
    loading takes no memory beyond the object itself.
    """
    if not settings.use_cache:
        return None
    try:
        with path.open("rb") as fh:
            if not _intact(path, fh):
                return None
            fh.seek(HEADER)
            value = pickle.load(fh)  # our own file, written by save()
    except FileNotFoundError:  # never written, or pruned by another run
        return None
    except Exception:  # unreadable, or written by other library versions: rebuilt
        log.warning("ignoring unreadable cache file %s", path)
        return None
    with contextlib.suppress(OSError):  # used now: the last to be pruned
        os.utime(path)
    return value


def _digest_from(fh: IO[bytes], offset: int) -> bytes:
    """BLAKE2b digest (16 bytes) of ``fh`` from ``offset`` to its end, read in blocks."""
    fh.seek(offset)
    h = hashlib.blake2b(digest_size=16)
    while block := fh.read(BLOCK):
        h.update(block)
    return h.digest()


def _intact(path: Path, fh: IO[bytes]) -> bool:
    """Whether the open cache file is in this format and its checksum matches (else warn).

    A damaged file (a bad sector, a copy cut short) could still unpickle with wrong numbers
    in it, so one whose checksum does not match is never unpickled.
    """
    head = fh.read(HEADER)
    if head[:len(MAGIC)] != MAGIC or len(head) < HEADER:
        log.warning("ignoring cache file %s: not in this coverage15's format (an older "
                    "version wrote it, or it is damaged); recomputing", path)
        return False
    if _digest_from(fh, HEADER) != head[len(MAGIC):]:
        log.warning("ignoring damaged cache file %s (its checksum does not match); "
                    "recomputing", path)
        return False
    return True


def save(path: Path, value: Any) -> None:
    """Write ``value`` to ``path`` atomically; a failure is logged, never raised.

    The pickle is streamed to the file and its checksum computed from the file, so saving
    takes no memory beyond the object itself.
    """
    if not settings.use_cache:
        return
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w+b") as fh:
            fh.write(MAGIC + bytes(16))  # the checksum's place, filled in below
            pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL)
            digest = _digest_from(fh, HEADER)
            fh.seek(len(MAGIC))
            fh.write(digest)
        Path(tmp).replace(path)
        tmp = None
    except Exception as exc:  # a cache that cannot be written must not fail the run
        log.warning("could not write cache file %s: %s", path, exc)
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def _files_by_kind() -> dict[str, list[Path]]:
    """The files under each subfolder of the cache folder (temporary files included)."""
    root = Path(settings.cache_folder)
    if not root.is_dir():
        return {}
    return {folder.name: [f for f in folder.rglob("*") if f.is_file()]
            for folder in sorted(p for p in root.iterdir() if p.is_dir())}


def _size(path: Path) -> int | None:
    """The file's size, or None if it is gone (another run may delete files at any time)."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


def usage() -> dict[str, tuple[int, int]]:
    """Files and bytes per subfolder of the cache folder (temporary files included)."""
    out = {}
    for kind, files in _files_by_kind().items():
        sizes = [size for size in map(_size, files) if size is not None]
        out[kind] = (len(sizes), sum(sizes))
    return out


def prune(kinds: tuple[str, ...] = RESULT_KINDS, *, max_bytes: float | None = None,
          keep: Path | None = None) -> int:
    """Delete the least recently used files of ``kinds`` until they fit in ``max_bytes``.

    Parameters
    ----------
    kinds
        Subfolders to prune (default: the results of earlier runs, never the inputs).
    max_bytes
        Size to keep them within; default ``settings.results_cache_mb`` megabytes.
    keep
        A file never deleted (the one just written), even if it alone is larger.

    Returns
    -------
    int
        How many files were deleted.
    """
    limit = settings.results_cache_mb * 1e6 if max_bytes is None else max_bytes
    found = []
    for kind, files in _files_by_kind().items():
        if kind not in kinds:
            continue
        for f in files:
            if f.suffix == ".tmp":  # being written by a run (left-overs: ``cache clear``)
                continue
            try:
                st = f.stat()
            except OSError:  # deleted meanwhile by another run
                continue
            found.append((st.st_mtime, st.st_size, f))
    total = sum(size for _, size, _ in found)
    removed = 0
    for _, size, f in sorted(found, key=lambda t: (t[0], str(t[2]))):
        if total <= limit:
            break
        if keep is not None and f == keep:
            continue
        try:
            f.unlink()
        except FileNotFoundError:  # deleted meanwhile by another run
            total -= size
        except OSError as exc:
            log.warning("could not delete cache file %s: %s", f, exc)
        else:
            removed += 1
            total -= size
    if removed:
        log.info("cache: deleted %d least recently used result file(s) to stay within %.0f MB",
                 removed, limit / 1e6)
    return removed


def clear(kinds: tuple[str, ...] | None = RESULT_KINDS) -> int:
    """Delete the files of ``kinds`` (subfolders; None: all of them); return how many."""
    removed = 0
    for kind, files in _files_by_kind().items():
        if kinds is None or kind in kinds:
            for f in files:
                with contextlib.suppress(FileNotFoundError):  # gone meanwhile
                    f.unlink()
                    removed += 1
    return removed
