"""Error types raised by coverage15.

Every error the library raises for bad input derives from :class:`Coverage15Error`, and most
also derive from the matching builtin so that callers can catch ``ValueError`` or
``FileNotFoundError`` as usual. The command line turns any of them into a one-line message and
exit code 2.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "CRSError",
    "CheckError",
    "ConfigError",
    "Coverage15Error",
    "InputFileError",
    "LayerError",
    "NetworkError",
    "OutputError",
    "unknown_district",
]


class Coverage15Error(Exception):
    """Base class of all coverage15 errors."""


class ConfigError(ValueError, Coverage15Error):
    """A run or targets configuration is missing a key, has a wrong value or names no file."""


class CRSError(ValueError, Coverage15Error):
    """A layer has no coordinate system, or an unknown or unfitting one."""


class CheckError(ValueError, Coverage15Error):
    """An input check found a problem that would change a verdict, and it was not accepted.

    The message names each problem's id; ``[accept] warnings = ["ID"]`` in the config, or
    ``--accept ID`` on the command line, lets the run go ahead and records the acceptance.
    """


class LayerError(ValueError, Coverage15Error):
    """A layer cannot be used: missing field, no usable rows, bad geometry."""


class InputFileError(OSError, Coverage15Error):
    """An input file is missing, empty, truncated, a directory, or in an unreadable encoding."""


class NetworkError(ValueError, Coverage15Error):
    """A street network cannot be built or has nothing to analyse."""


class OutputError(OSError, Coverage15Error):
    """An output cannot be written; the previous outputs are left as they were.

    For example: the folder is not writable, a folder is where a file goes, or a file is held
    open by another program.
    """


def unknown_district(district: str, known: Iterable[str], where: str,
                     option: str = "district") -> ConfigError:
    """The error for a district name that is not one of ``known``, with the likely one named.

    ``where`` says whose districts these are (e.g. ``the districts layer (districts.geojson)``).
    """
    names = sorted(known)
    close = difflib.get_close_matches(district, names, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return ConfigError(f"{option} {district!r} is not a district of {where}; {hint}"
                       f"use one of: {', '.join(names)}")
