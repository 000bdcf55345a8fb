"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared Shanghai data folder named by COVERAGE15_DATA (tests skip without it)."""
    value = os.environ.get("COVERAGE15_DATA")
    if not value:
        pytest.skip(
            "COVERAGE15_DATA is not set: point it at the shared data folder, e.g. "
            "export COVERAGE15_DATA=/work/shared/data/shanghai"
        )
    return Path(value)
