"""The shipped run config as text, for tests that write damaged or changed copies of it."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "data/shanghai-central.toml"


def shipped_config_text() -> str:
    """The shipped central config, its targets file named by absolute path.

    The shipped file names its targets relative to itself; a copy written elsewhere (the
    tests' temporary folders) must name them in the repository.
    """
    text = CONFIG.read_text(encoding="utf-8")
    return text.replace('targets = "targets/', f'targets = "{ROOT}/data/targets/')
