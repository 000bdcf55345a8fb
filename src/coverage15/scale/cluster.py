"""The Dask cluster a partitioned run uses: a new local one, or an existing scheduler."""

from __future__ import annotations

import os
from typing import Any

from coverage15._errors import Coverage15Error

__all__ = ["DaskMissingError", "default_workers", "open_client"]

INSTALL_HINT = 'pip install "coverage15[dask]"'


class DaskMissingError(ImportError, Coverage15Error):
    """A partitioned run was asked for, but dask.distributed is not installed."""


def default_workers() -> int:
    """Worker processes of a local cluster by default: the CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _distributed() -> Any:
    try:
        import dask.distributed
    except ImportError as exc:
        msg = (f"--scheduler needs Dask, which is not installed ({exc.name or 'dask'} is "
               f"missing): {INSTALL_HINT}, or run without --scheduler")
        raise DaskMissingError(msg) from None
    return dask.distributed


def open_client(scheduler: str, workers: int | None = None) -> Any:
    """A ``dask.distributed.Client`` for ``scheduler``.

    ``"local"`` starts a ``LocalCluster`` of ``workers`` single-threaded processes (default
    :func:`default_workers`), which import coverage15's kernel as they start; anything else
    is the address of a running scheduler (``tcp://host:8786``).
    """
    distributed = _distributed()
    if scheduler == "local":
        n = workers if workers is not None and workers > 0 else default_workers()
        # workers import the kernel as they start, all at once, not on their first task
        cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                           dashboard_address=":0",
                                           preload=["coverage15.scale.partition"])
        return distributed.Client(cluster)
    return distributed.Client(scheduler)
