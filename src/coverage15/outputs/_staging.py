"""Atomic output writing: a run's files appear together, whole, or not at all.

Outputs are written into a staging folder beside the destination, then moved into place with
:func:`os.replace` (atomic per file on one file system). Around that:

- **One writer at a time.** A lock file in the output folder (``.coverage15-lock``, an OS
  lock released when the process ends, even if it is killed) makes a second run that writes
  into the same folder wait until the first has finished. So any staging folder found while
  holding the lock belongs to a dead run, and is removed.
- **All or nothing.** Before anything moves, the previous version of every file about to be
  replaced is kept (a hard link, or a copy where links are not possible) and a journal
  (``.coverage15-journal.json``) names them. If a move fails (a file open in Excel on
  Windows, a folder in the way), the journal is played back: previous versions restored,
  new files removed, and :class:`~coverage15._errors.OutputError` says which file could not
  be written. If the process dies while files move (killed, power lost), the journal is
  still there, and the next write into the folder plays it back before anything else.
- **Nothing written over a GeoPackage in use.** A ``-wal``, ``-shm`` or ``-journal`` file
  beside a GeoPackage means a program (QGIS) has it open for writing; replacing the file
  would let that program's pending changes corrupt the new one. Such a write is refused, and
  so is a play-back that would put an earlier version back over it (the journal is kept).
- **No stale outputs.** Each writer (``kind``: a run, a recommendation, a map) records the
  files it wrote in ``.coverage15-outputs.json``. The next write of the same kind deletes
  those it no longer writes (e.g. the PNG maps of an earlier run, after ``--no-png``), never
  a file another kind wrote or one coverage15 did not write.
"""

from __future__ import annotations

import contextlib
import filecmp
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from coverage15._errors import Coverage15Error, OutputError

__all__ = ["MANIFEST", "InterruptedAfterWrite", "check_not_in_use", "staged_outputs",
           "write_count", "written_since"]

log = logging.getLogger(__name__)

STAGING_PREFIX = ".coverage15-staging-"
LOCK = ".coverage15-lock"
MANIFEST = ".coverage15-outputs.json"
JOURNAL = ".coverage15-journal.json"
SQLITE_SIDECARS = ("-wal", "-shm", "-journal")
_written: list[Path] = []  # every output folder whose new files stood, in order


def write_count() -> int:
    """How many writes have put their outputs in place in this process (a mark for below)."""
    return len(_written)


def written_since(mark: int) -> list[Path]:
    """The output folders whose new outputs were put in place since ``write_count()`` was ``mark``.

    So a caller interrupted later (printing a summary, writing to a database) can tell the
    user that those outputs are new and complete, not unchanged.
    """
    return list(dict.fromkeys(_written[mark:]))


@contextlib.contextmanager
def staged_outputs(out_dir: Path, moved: dict[str, Path] | None = None, *,
                   kind: str | None = None) -> Iterator[Path]:
    """Yield a staging folder; on success move its files into ``out_dir``, all or none.

    On any exception (including KeyboardInterrupt) the staging folder is deleted and
    ``out_dir`` is untouched.

    Parameters
    ----------
    out_dir
        The output folder (created if missing).
    moved
        If given, receives each file moved in: its path relative to ``out_dir``
        (``/``-separated) → its final path, in sorted order.
    kind
        What is being written (``"run"``, ``"recommend"``...). Files the previous write of
        the same kind left in ``out_dir`` and this one does not write are deleted. None: no
        file is deleted and nothing is recorded.

    Raises
    ------
    OutputError
        ``out_dir`` or one of the outputs cannot be written; the previous outputs are left
        as they were.
    """
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        msg = f"cannot create the output folder {out_dir}: {exc}"
        raise OutputError(msg) from exc
    with _locked(out_dir):
        if _play_back(out_dir):  # raises if it cannot: the journal is then kept
            log.warning("an earlier write into %s was interrupted while its files moved in; "
                        "its previous outputs are restored", out_dir)
        for stale in out_dir.glob(f"{STAGING_PREFIX}*"):  # left by a run that died
            shutil.rmtree(stale, ignore_errors=True)
        (out_dir / f"{JOURNAL}.tmp").unlink(missing_ok=True)
        try:
            staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=out_dir))
        except OSError as exc:
            msg = f"cannot write into the output folder {out_dir}: {exc.strerror or exc}"
            raise OutputError(msg) from exc
        try:
            try:
                yield staging
            except OSError as exc:  # e.g. the disk is full (not coverage15's own errors)
                if isinstance(exc, Coverage15Error):
                    raise
                msg = (f"cannot write the outputs into {out_dir}: {exc.strerror or exc}; the "
                       "previous outputs there are unchanged")
                raise OutputError(msg) from exc
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        _move_in(staging, out_dir, moved, kind)  # removes the staging folder in every case


def check_not_in_use(out_dir: Path, names: list[str] | None = None) -> None:
    """Refuse to replace a GeoPackage another program has open for writing (QGIS).

    Parameters
    ----------
    out_dir
        The output folder.
    names
        The files about to be written (``/``-separated, relative to ``out_dir``); None:
        every GeoPackage in the folder.

    Raises
    ------
    OutputError
        A ``-wal``, ``-shm`` or ``-journal`` file lies beside one of them.
    """
    out_dir = Path(out_dir)
    if names is None:
        names = [p.name for p in out_dir.glob("*.gpkg")] if out_dir.is_dir() else []
    for name in names:
        target = out_dir / name
        busy = _sidecars(target)
        if busy:
            msg = (f"cannot write {target}: it is open in another program ({', '.join(busy)} "
                   "beside it; QGIS keeps these while a layer of it is open). Close it there "
                   "and run again; if no program has it open (a crash left them), delete "
                   f"{', '.join(busy)}. The previous outputs are unchanged")
            raise OutputError(msg)


def _sidecars(target: Path) -> list[str]:
    """The ``-wal``/``-shm``/``-journal`` files beside GeoPackage ``target`` (open elsewhere)."""
    if not target.name.endswith(".gpkg"):
        return []
    return [target.name + s for s in SQLITE_SIDECARS
            if target.with_name(target.name + s).exists()]


def _move_in(staging: Path, out_dir: Path, moved: dict[str, Path] | None,
             kind: str | None) -> None:
    """Move the staged files into ``out_dir``: all of them, or none (previous ones restored).

    Once every file is in place the journal is deleted: from then on the new outputs stand,
    and Ctrl-C or SIGTERM is held back until the clean-up and the record are done (then
    raised as :class:`InterruptedAfterWrite`, which says the outputs are complete).
    """
    keep = None
    target = out_dir
    try:
        names = sorted(f.relative_to(staging).as_posix() for f in staging.rglob("*")
                       if f.is_file())
        for name in names:
            _check_writable(out_dir, name)
        check_not_in_use(out_dir, names)
        keep = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}previous-", dir=out_dir))
        # every previous version is kept, and the journal written, before anything moves
        replaced = []
        for name in names:
            target = out_dir / name
            if target.is_file():
                (keep / name).parent.mkdir(parents=True, exist_ok=True)
                _keep_copy(target, keep / name)
                replaced.append(name)
        _write_json(out_dir / JOURNAL, {"kept": keep.name, "names": names,
                                        "replaced": replaced})
        for name in names:
            target = out_dir / name
            target.parent.mkdir(parents=True, exist_ok=True)
            (staging / name).replace(target)
        with _interrupts_held():
            (out_dir / JOURNAL).unlink()  # done: from here on the new outputs stand
            _written.append(out_dir)
            shutil.rmtree(keep, ignore_errors=True)
            shutil.rmtree(staging, ignore_errors=True)
            if moved is not None:
                moved.update((name, out_dir / name) for name in names)
            if kind is not None:
                _record(out_dir, kind, names)
    except InterruptedAfterWrite:
        raise
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        try:
            _play_back(out_dir)
        except OutputError as undo:  # the journal and kept versions stay for the next write
            cause = "interrupted" if isinstance(exc, KeyboardInterrupt) else (
                f"{exc.strerror or exc}" if isinstance(exc, OSError) else f"{exc}")
            msg = (f"this write stopped ({cause}) with some of its files in place, and {undo}; "
                   "the next write into the folder puts them back")
            raise OutputError(msg) from exc
        if keep is not None:
            shutil.rmtree(keep, ignore_errors=True)
        if isinstance(exc, OSError) and not isinstance(exc, Coverage15Error):
            msg = (f"cannot write {target} ({exc.strerror or exc}; open in another program?); "
                   f"the previous outputs in {out_dir} are unchanged")
            raise OutputError(msg) from exc
        raise


class InterruptedAfterWrite(KeyboardInterrupt):
    """Ctrl-C or SIGTERM arrived while finished outputs were being put in place.

    The outputs are complete and new; the interrupt was held back until then.
    """


@contextlib.contextmanager
def _interrupts_held() -> Iterator[None]:
    """Hold back SIGINT and SIGTERM for the block; raise :class:`InterruptedAfterWrite` after.

    Only in the main thread (elsewhere signals are not delivered to Python code anyway).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def hold(signum: int, frame: object) -> None:
        caught.append(signum)

    held = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, hold) for s in held}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if caught:
        raise InterruptedAfterWrite


def _play_back(out_dir: Path) -> bool:
    """Undo a move into ``out_dir`` that its journal says did not finish; True if there was one.

    Every file the move was to write is put back as it was: its kept previous version
    restored, or removed if it had none. Files it had not reached yet are restored to the
    same content, so it does not matter where the move stopped, and playing it back twice is
    harmless.

    Raises
    ------
    OutputError
        A file could not be put back (e.g. open in another program); the journal and the
        kept versions stay, so the next write tries again.
    """
    path = out_dir / JOURNAL
    try:
        journal = json.loads(path.read_text(encoding="utf-8"))
        kept, names = out_dir / str(journal["kept"]), [str(n) for n in journal["names"]]
        replaced = {str(n) for n in journal["replaced"]}
    except FileNotFoundError:
        return False
    except (OSError, ValueError, KeyError, TypeError):
        log.warning("ignoring an unreadable journal %s", path)
        path.unlink(missing_ok=True)
        return False
    actions: list[tuple[str, Path | None]] = []  # (name, kept version to restore or None)
    for name in names:
        target = out_dir / name
        if not target.resolve().is_relative_to(out_dir.resolve()):
            continue
        if name not in replaced:
            if target.exists():
                actions.append((name, None))
        elif (kept / name).is_file() and not _same_file(kept / name, target):
            actions.append((name, kept / name))
    # a GeoPackage open in QGIS is not touched: its pending -wal would corrupt what is put back
    failed = [f"{name} (open in another program: {', '.join(busy)} beside it)"
              for name, _ in actions if (busy := _sidecars(out_dir / name))]
    for name, previous in actions if not failed else []:
        try:
            if previous is None:
                (out_dir / name).unlink(missing_ok=True)
            else:
                previous.replace(out_dir / name)
        except OSError as exc:
            failed.append(f"{name} ({exc.strerror or exc})")
    if failed:
        msg = (f"cannot put back the previous outputs in {out_dir}: {', '.join(failed)}; close "
               f"the program that has them open and run again (the previous versions are "
               f"kept in {kept.name}, listed in {JOURNAL}); if no program has a GeoPackage "
               "open (a crash left its -wal/-shm/-journal files), delete those files")
        raise OutputError(msg)
    path.unlink(missing_ok=True)
    return True


def _same_file(kept: Path, target: Path) -> bool:
    """Whether ``target`` is still the version kept (not reached by the move)."""
    try:
        return kept.samefile(target) or filecmp.cmp(kept, target, shallow=False)
    except OSError:  # target missing
        return False


def _write_json(path: Path, value: object) -> None:
    """Write ``value`` as JSON to ``path`` atomically (a temporary file, then a rename)."""
    tmp = path.with_name(f"{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(value, fh, ensure_ascii=False, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


def _check_writable(out_dir: Path, name: str) -> None:
    """Refuse, before anything moves, an output whose place holds a folder or other non-file."""
    target = out_dir / name
    for place in [target, *target.parents]:
        if place == out_dir:
            break
        blocked = (place.exists() and not place.is_file()) if place == target else (
            place.exists() and not place.is_dir())
        if blocked:
            msg = (f"cannot write {target}: {place} is in the way; move it and run again "
                   f"(the previous outputs in {out_dir} are unchanged)")
            raise OutputError(msg)


def _keep_copy(target: Path, previous: Path) -> None:
    """Keep ``target``'s current content at ``previous``: a hard link, else a copy."""
    try:
        os.link(target, previous)
    except OSError:  # no hard links on this file system
        shutil.copy2(target, previous)


def _record(out_dir: Path, kind: str, names: list[str]) -> None:
    """Note what ``kind`` wrote now; delete what it wrote last time and no longer writes."""
    path = out_dir / MANIFEST
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(record, dict):
            record = {}
    except (OSError, ValueError):
        record = {}
    before = record.get(kind, [])
    others = {n for k, files in record.items() if k != kind and isinstance(files, list)
              for n in files}
    now = set(names)
    for name in before if isinstance(before, list) else []:
        if not isinstance(name, str) or name in now or name in others:
            continue
        stale = out_dir / name
        if stale.is_file() and stale.resolve().is_relative_to(out_dir.resolve()):
            try:
                stale.unlink()
            except OSError as exc:
                log.warning("could not delete %s, left by an earlier run: %s", stale, exc)
                names.append(name)  # still ours: try again next time
                continue
            if stale.parent != out_dir:
                with contextlib.suppress(OSError):  # only if nothing else is in it
                    stale.parent.rmdir()
    record[kind] = sorted(set(names))
    try:
        _write_json(path, record)
    except OSError as exc:
        log.warning("could not record the outputs in %s: %s", path, exc)


@contextlib.contextmanager
def _locked(out_dir: Path) -> Iterator[None]:
    """Hold the output folder's lock (waiting for another run that holds it)."""
    try:
        fh = (out_dir / LOCK).open("a+b")
    except OSError as exc:
        msg = f"cannot write into the output folder {out_dir}: {exc}"
        raise OutputError(msg) from exc
    with fh:
        if not _try_lock(fh):
            log.warning("another coverage15 run is writing into %s; waiting for it", out_dir)
            _lock(fh)
        try:
            yield
        finally:
            _unlock(fh)


if sys.platform == "win32":
    import msvcrt

    def _try_lock(fh: IO[bytes]) -> bool:
        fh.seek(0)
        try:
            msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _lock(fh: IO[bytes]) -> None:
        while not _try_lock(fh):
            import time

            time.sleep(0.2)

    def _unlock(fh: IO[bytes]) -> None:
        fh.seek(0)
        with contextlib.suppress(OSError):
            msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fh: IO[bytes]) -> bool:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _lock(fh: IO[bytes]) -> None:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)

    def _unlock(fh: IO[bytes]) -> None:
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
