"""Reading a TOML file into typed values, collecting every problem (for :mod:`.config`)."""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
from pathlib import Path
from typing import Any

import pyproj

from coverage15._errors import ConfigError

__all__ = ["read_toml"]

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


CONFIG_DIR = "CONFIG_DIR"
"""The one variable not taken from the environment: the folder of the file being read."""


def _expand(text: str, where: str, problems: list[str], *, as_path: bool = False,
            here: Path | None = None) -> str:
    """Substitute ``${VAR}`` from the environment, and ``${CONFIG_DIR}`` by ``here``.

    In a path, a variable that starts it and holds a relative path is taken relative to the
    working directory (as the shell that set it would), not to the config file.
    ``${CONFIG_DIR}`` is the folder of the file the text is in (as reached, links kept), so a
    config whose data paths are relative to ``data_dir`` can still name a file beside itself.
    """

    def repl(match: re.Match[str]) -> str:
        name = match.group(1)
        value = str(here) if name == CONFIG_DIR and here is not None else os.environ.get(name)
        if value is None:
            problems.append(
                f"{where}: environment variable {name} is not set "
                f"(set it to the data folder, e.g. export {name}=../shared/data/shanghai)"
            )
            return match.group(0)
        if as_path and match.start() == 0:
            return os.path.abspath(os.path.expanduser(value))  # noqa: PTH100, PTH111
        return value

    return _VAR.sub(repl, text)


class _Reader:
    """Read typed values out of a TOML table, collecting problems instead of raising."""

    def __init__(self, file: Path, base: Path, data_dir: Path) -> None:
        self.file = file
        self.base = base
        self.data_dir = data_dir
        self.problems: list[str] = []

    def where(self, section: str, key: str) -> str:
        return f"{self.file.name} [{section}] {key}"

    def str_(self, table: dict[str, Any], section: str, key: str, *, required: bool = False,
             default: str | None = None) -> str | None:
        value = table.get(key, default)
        if value is None:
            if required:
                self.problems.append(f"{self.where(section, key)}: missing (required)")
            return None
        if not isinstance(value, str):
            self.problems.append(f"{self.where(section, key)}: expected text, got {value!r}")
            return None
        return value

    def num(self, table: dict[str, Any], section: str, key: str, default: float,
            *, positive: bool = True) -> float:
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problems.append(f"{self.where(section, key)}: expected a number, got {value!r}")
            return default
        if not math.isfinite(value):  # TOML has nan and inf; neither is a distance or speed
            self.problems.append(f"{self.where(section, key)}: must be a finite number, got "
                                 f"{value!r}")
            return default
        if positive and value <= 0:
            self.problems.append(f"{self.where(section, key)}: must be > 0, got {value!r}")
            return default
        return float(value)

    def flag(self, table: dict[str, Any], section: str, key: str, default: bool) -> bool:
        value = table.get(key, default)
        if not isinstance(value, bool):
            self.problems.append(f"{self.where(section, key)}: expected true or false (no "
                                 f"quotes), got {value!r}")
            return default
        return value

    def known(self, table: Any, section: str, keys: set[str]) -> None:
        """Report keys of ``table`` that are not in ``keys`` (typos must not pass silently)."""
        if not isinstance(table, dict):
            return
        for unknown in sorted(set(table) - keys):
            hint = difflib.get_close_matches(unknown, sorted(keys), n=1)
            also = f"; did you mean {hint[0]!r}?" if hint else ""
            where = (f"{self.file.name} {unknown!r}" if section == "top"
                     else self.where(section, unknown))
            self.problems.append(f"{where}: unknown key (known: {', '.join(sorted(keys))}){also}")

    def crs(self, table: dict[str, Any], section: str, key: str, default: str) -> str:
        """A projected CRS in metres (lengths, buffers and areas are computed in it)."""
        text = self.str_(table, section, key, default=default) or default
        try:
            crs = pyproj.CRS.from_user_input(text)
        except pyproj.exceptions.CRSError:
            self.problems.append(f"{self.where(section, key)}: unknown CRS {text!r}")
            return default
        unit = crs.axis_info[0].unit_name if crs.axis_info else ""
        if not crs.is_projected or unit not in ("metre", "meter"):
            self.problems.append(f"{self.where(section, key)}: {text!r} is not a projected CRS "
                                 f"in metres (e.g. the UTM zone: EPSG:32651 for Shanghai)")
            return default
        return text

    def path(self, table: dict[str, Any], section: str, key: str, *, required: bool = True,
             base: Path | None = None) -> Path | None:
        text = self.str_(table, section, key, required=required)
        if text is None:
            return None
        expanded = _expand(text, self.where(section, key), self.problems, as_path=True,
                           here=self.base)
        candidate = Path(expanded).expanduser()
        if not candidate.is_absolute():
            candidate = (base or self.data_dir) / candidate
        return candidate


def read_toml(file: Path, what: str) -> dict[str, Any]:
    """The TOML document in ``file``; a :class:`ConfigError` naming ``what`` if it is not one.

    Not UTF-8 (e.g. saved as GB18030) and invalid TOML get their own messages.
    """
    try:
        # utf-8-sig: a byte-order mark (Windows Notepad's "UTF-8 with BOM") is not TOML
        return tomllib.loads(file.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as exc:
        msg = (f"{what} {file}: not UTF-8 ({exc}); save it as UTF-8 (e.g. from GB18030: "
               "iconv -f GB18030 -t UTF-8)")
        raise ConfigError(msg) from exc
    except tomllib.TOMLDecodeError as exc:
        msg = f"{what} {file}: not valid TOML ({exc})"
        raise ConfigError(msg) from exc
