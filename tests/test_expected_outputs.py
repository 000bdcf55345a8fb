"""The central run's reports against stored expected copies: results never change by accident.

When a change is meant to alter a report, regenerate the copies and say why in the commit::

    COVERAGE15_DATA=../shared/data/shanghai COVERAGE15_UPDATE_EXPECTED=1 \\
        .venv/bin/python -m pytest tests/test_expected_outputs.py
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

EXPECTED = Path(__file__).parent / "expected"
TOLERANCE = 1e-9  # shares and areas are rounded in the files; this only absorbs float noise


@pytest.mark.parametrize("name", ["gap_report", "district_report"])
def test_central_report_matches_the_stored_copy(central_outputs, name):
    written = central_outputs / f"{name}.csv"
    stored = EXPECTED / f"central_{name}.csv"
    if os.environ.get("COVERAGE15_UPDATE_EXPECTED") == "1":
        shutil.copyfile(written, stored)
    want = pd.read_csv(stored, encoding="utf-8-sig", keep_default_na=False)
    got = pd.read_csv(written, encoding="utf-8-sig", keep_default_na=False)
    assert list(got.columns) == list(want.columns)
    assert len(got) == len(want)
    for column in want.columns:
        a, b = got[column], want[column]
        numbers = pd.to_numeric(b.replace("", np.nan), errors="coerce")
        if numbers.notna().sum() == (b != "").sum() and (b != "").any():
            mine = pd.to_numeric(a.replace("", np.nan), errors="coerce")
            assert np.allclose(mine, numbers, atol=TOLERANCE, equal_nan=True), column
        else:
            changed = (a.astype(str) != b.astype(str)).to_numpy()
            assert not changed.any(), (column, got.loc[changed, ["jiezhen" if "jiezhen" in got
                                                                  else "district", column]])


def test_the_comparison_catches_a_changed_share(central_outputs, tmp_path):
    """A share moved by 0.001 in one 街镇 is a difference."""
    rows = pd.read_csv(central_outputs / "gap_report.csv", encoding="utf-8-sig",
                       keep_default_na=False)
    column = "centre_demand_share"
    first = rows.index[rows[column] != ""][0]
    rows.loc[first, column] = str(float(rows.loc[first, column]) + 0.001)
    stored = pd.read_csv(EXPECTED / "central_gap_report.csv", encoding="utf-8-sig",
                         keep_default_na=False)
    got = pd.to_numeric(rows[column].replace("", np.nan))
    want = pd.to_numeric(stored[column].replace("", np.nan))
    assert not np.allclose(got, want, atol=TOLERANCE, equal_nan=True)
