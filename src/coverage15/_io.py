"""Atomic output writing: every file appears whole or not at all.

Outputs are written into a staging folder beside the destination and moved into place with
:func:`os.replace` (atomic on one file system). An interrupted run leaves the previous outputs
as they were, and a stale staging folder is removed by the next run.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["staged_outputs"]

STAGING_PREFIX = ".coverage15-staging-"


@contextlib.contextmanager
def staged_outputs(out_dir: Path, moved: dict[str, Path] | None = None) -> Iterator[Path]:
    """Yield a staging folder; on success move its files into ``out_dir``.

    On any exception (including KeyboardInterrupt) the staging folder is deleted and
    ``out_dir`` is untouched. ``moved``, if given, receives each file moved in: its path
    relative to ``out_dir`` (``/``-separated) → its final path, in sorted order.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob(f"{STAGING_PREFIX}*"):
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=out_dir))
    try:
        yield staging
        for item in sorted(staging.rglob("*")):
            if item.is_file():
                name = item.relative_to(staging)
                target = out_dir / name
                target.parent.mkdir(parents=True, exist_ok=True)
                item.replace(target)
                if moved is not None:
                    moved[name.as_posix()] = target
    finally:
        shutil.rmtree(staging, ignore_errors=True)
