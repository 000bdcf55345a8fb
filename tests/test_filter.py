"""The layer filter language: no way into Python, today's expressions select the same rows."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from coverage15 import ConfigError, LayerError
from coverage15.inputs._filter import MAX_DEPTH, MAX_LENGTH, evaluate_filter
from coverage15.inputs.config import LayerSpec, load_config
from coverage15.inputs.layers import _apply_filter, load_layer

ROOT = Path(__file__).resolve().parents[1]

# Payloads that ran Python (or would have) under DataFrame.eval, and what the error names
PAYLOADS = [
    ("(agencyType == 6) & (@pd.io.common.os.system('touch pwned') == 0)", "@"),
    ("@pd.io.common.os.system('touch pwned') == 0", "@"),
    ("agencyType == @pd.io.common.os.system(\"touch pwned\")", "@"),
    ("(agencyType == 6) & (@spec.path.write_text('x') > 0)", "@"),
    ("agencyType.__class__.__mro__", ".__mro__"),
    ("agencyType.__class__ == 1", ".__class__"),
    ("().__class__.__bases__[0].__subclasses__()", ".__subclasses__"),
    ("__import__('os').system('touch pwned') == 0", ".system"),
    ("__import__('os')", "__import__"),
    ("open('pwned', 'w')", "open("),
    ("(lambda: 1)() == 1", "(lambda"),
    ("lambda: 1", "lambda"),
    ("agencyType[0] == 6", "agencyType[0]"),
    ("agencyType.apply(print) == 1", ".apply"),
    ("agencyType.apply(lambda v: __import__('os').system('touch pwned'))", ".apply"),
    ("agencyName.str.contains('x').__class__", ".__class__"),
    ("agencyName.str.__class__('x')", ".__class__"),
    ("agencyName.str.contains(agencyName)", "agencyName.str"),
    ("agencyName.str.contains('x', regex=True)", "agencyName.str"),
    ("agencyName.str.replace('a', 'b') == 'x'", ".replace"),
    ("agencyType.isna(1)", "agencyType.isna"),
    ("[x for x in (1, 2)] == 1", "[x for"),
    ("agencyType ** 99999999 > 1", "agencyType **"),
    ("agencyType + 1 == 7", "agencyType +"),
    ("f'{agencyType}' == '6'", "f'"),
    ("agencyType == b'6'", "b'6'"),
    ("agencyType == {6}", "{6}"),
    ("agencyType == 6 if True else 0", "agencyType"),
    ("(x := 6) == agencyType", "x :="),
    ("__builtins__ == 1", "__builtins__"),
    ("agencyType is None", "None"),
    ("agencyType in agencyName", "agencyName"),
    ("agencyType == 6 &", "agencyType"),
]


def _frame() -> pd.DataFrame:
    return pd.DataFrame({
        "agencyType": [6, 4, 6, 1],
        "agencyName": ["甲中心", "乙助餐点", "丙中心", "丁敬老院"],
        "longitude": ["121.4", "121.5", "", "121.6"],
    })


def _spec(path: Path, expression: str) -> LayerSpec:
    return LayerSpec(key="centre", label="c", path=path, x="longitude", y="latitude",
                     crs="gcj02", filter=expression, name_field="agencyName")


@pytest.mark.parametrize(("expression", "part"), PAYLOADS)
def test_payloads_are_refused_with_their_position_and_run_nothing(tmp_path, monkeypatch,
                                                                  expression, part):
    monkeypatch.chdir(tmp_path)
    source = tmp_path / "platform.json"
    source.write_text(json.dumps([{"agencyType": 6, "agencyName": "a", "longitude": "121.4",
                                   "latitude": "31.2"}]), encoding="utf-8")
    before = source.read_bytes()
    spec = _spec(source, expression)
    for attempt in (lambda: _apply_filter(_frame(), spec), lambda: load_layer(spec)):
        with pytest.raises(ConfigError) as info:
            attempt()
        text = str(info.value)
        assert "\n" not in text
        assert text.startswith(f"layer 'centre' (platform.json): filter {expression!r} refused: ")
        at = int(re.search(r"at character (\d+)", text).group(1))  # type: ignore[union-attr]
        assert expression[at - 1:].startswith(part), (text, part)
        assert "docs/filters.md" in text
    assert not (tmp_path / "pwned").exists()
    assert source.read_bytes() == before


def test_the_refusal_points_at_the_offending_attribute_after_chinese_text():
    expression = "agencyName.str.contains('养老') & \n `agency type`.x == 1"
    at = expression.index(".x") + 1
    with pytest.raises(ConfigError, match=r"attribute access \('\.x'\) is not allowed "
                                          rf"\(at character {at} near '\.x == 1'\)"):
        evaluate_filter(expression, _frame().assign(**{"agency type": 1}), where="layer 'c'")


def test_too_long_or_too_deep_is_refused_before_any_work():
    frame = _frame()
    long = " | ".join(["agencyType == 6"] * 200)
    assert len(long) > MAX_LENGTH
    with pytest.raises(ConfigError, match=r"filter of 3,597 characters refused \(at most 2,000\)"):
        evaluate_filter(long, frame, where="layer 'c'")
    for deep in ("(" * 250 + "agencyType == 6" + ")" * 250, "not " * 300 + "agencyType == 6",
                 "~" * 500 + "(agencyType == 6)", "-" * 900 + "1 == agencyType"):
        with pytest.raises(ConfigError, match="refused: "):
            evaluate_filter(deep, frame, where="layer 'c'")
    nested = "not " * (MAX_DEPTH + 1) + "agencyType == 6"
    with pytest.raises(ConfigError, match=f"nesting deeper than {MAX_DEPTH} levels"):
        evaluate_filter(nested, frame, where="layer 'c'")
    fine = "not " * (MAX_DEPTH - 2) + "agencyType == 6"  # an even number: the same rows
    assert evaluate_filter(fine, frame, where="c").tolist() == [True, False, True, False]
    parentheses = "(" * 150 + "agencyType == 6" + ")" * 150  # no operators nested: fine
    assert evaluate_filter(parentheses, frame, where="c").tolist() == [True, False, True, False]


def test_an_unknown_column_names_the_file_s_columns_and_the_likely_one():
    with pytest.raises(LayerError, match=r"filter 'agencytype == 6' failed: no column "
                                         r"'agencytype' \(at character 1\); did you mean "
                                         r"'agencyType'\? the file's columns are \['agencyType'"):
        evaluate_filter("agencytype == 6", _frame(), where="layer 'c'")
    with pytest.raises(LayerError, match="no column 'agency type'"):
        evaluate_filter("`agency type` == 6", _frame(), where="layer 'c'")
    with pytest.raises(LayerError, match="no column 'geometry'"):
        evaluate_filter("geometry == 1", _frame().assign(geometry=1), where="layer 'c'")


def _mixed() -> pd.DataFrame:
    """Blank numbers (nullable Int64, float NaN), blank text, a name with a space."""
    return pd.DataFrame({
        "kind": pd.array([6, 4, None, 6, 1], dtype="Int64"),
        "beds": [10.0, 250.0, np.nan, 80.0, 120.0],
        "name": pd.Series(["甲中心", "乙助餐点", None, "Centre B", "丁敬老院"], dtype="str"),
        "code": pd.Series(["0012", "0013", "0012", None, "12"], dtype=object),
        "agency type": [6, 4, 6, 1, 3],
        "open": [True, False, True, True, False],
    })


@pytest.mark.parametrize(("expression", "rows"), [
    ("kind == 6", [0, 3]),
    ("kind != 6", [1, 4]),  # a blank number matches no comparison, not even !=
    ("beds >= 100", [1, 4]),
    ("beds < 100", [0, 3]),
    ("6 == kind", [0, 3]),
    ("-1 < kind", [0, 1, 3, 4]),
    ("100 <= beds < 200", [4]),
    ("kind in [4, 6]", [0, 1, 3]),
    ("kind in (4, 6)", [0, 1, 3]),
    ("kind == [4, 6]", [0, 1, 3]),  # pandas: == with a list is in
    ("kind not in [6]", [1, 2, 4]),  # a blank is not in the list
    ("kind != [6]", [1, 2, 4]),
    ("code == '0012'", [0, 2]),
    ("code in ['0013', '12']", [1, 4]),
    ('name == "甲中心"', [0]),
    ("name != '甲中心'", [1, 2, 3, 4]),
    ("name.str.contains('中心')", [0]),
    ("name.str.contains('.')", []),  # text, not a pattern
    ("name.str.startswith('Centre')", [3]),
    ("name.str.endswith('院')", [4]),
    ("code.str.startswith('00')", [0, 1, 2]),
    ("kind.str.startswith('6')", [0, 3]),  # a number column's text
    ("name.isna()", [2]),
    ("kind.notna() & beds.isna()", []),
    ("beds.notna()", [0, 1, 3, 4]),
    ("`agency type` == 6", [0, 2]),
    ("`agency type` == 6 & kind == 6", [0]),
    ("open", [0, 2, 3]),
    ("~open", [1, 4]),
    ("not open", [1, 4]),
    ("open == True", [0, 2, 3]),
    ("~(kind == 6)", [1, 4]),
    ("not kind == 6", [1, 4]),
    ("kind == 6 | kind == 4", [0, 1, 3]),  # & and | bind like and / or
    ("kind == 6 or kind == 4", [0, 1, 3]),
    ("kind == 6 | kind == 4 & beds > 100", [0, 1, 3]),  # and before or
    ("(kind == 6 | kind == 4) & beds > 100", [1]),
    ("kind == 6 and beds > 50 or name.str.endswith('院')", [3, 4]),
    ("kind == 6 and not beds > 50", [0]),
    ("~name.str.contains('中心') & kind.notna()", [1, 3, 4]),
    ("kind == 6\n  & beds > 50", [3]),  # a multi-line TOML string
    ("kind == 6 &\r\n (name == 'x' | beds > 50)", [3]),
])
def test_documented_syntax_selects_known_rows(tmp_path, expression, rows):
    frame = _mixed()
    spec = LayerSpec(key="k", label="k", path=tmp_path / "x.csv", filter=expression)
    if not rows:
        with pytest.raises(LayerError, match="matches none of the 5 rows"):
            _apply_filter(frame, spec)
        return
    assert _apply_filter(frame, spec).index.tolist() == rows


@pytest.mark.parametrize("expression", ["kind", "6", "True", "'x' == 'x'", "beds < 'a'"])
def test_an_expression_that_gives_no_true_false_per_row_is_a_layer_error(tmp_path, expression):
    spec = LayerSpec(key="k", label="k", path=tmp_path / "x.csv", filter=expression)
    with pytest.raises(LayerError, match=f"filter {re.escape(repr(expression))} "):
        _apply_filter(_mixed(), spec)


def test_csv_text_numbers_compare_as_numbers_and_symbols_in_text_are_text(tmp_path):
    path = tmp_path / "homes.csv"
    path.write_text("name,x,y,beds,note\na,121.40,31.20,247,@x & `y`\nb,121.41,31.21,80,\n"
                    "c,121.42,31.22,,a|b\n", encoding="utf-8")

    def names(expression: str) -> list[str]:
        spec = LayerSpec(key="h", label="h", path=path, x="x", y="y", crs="EPSG:4326",
                         name_field="name", filter=expression)
        return list(load_layer(spec).points["name"])

    assert names("beds >= 100") == ["a"]
    assert names("note == '@x & `y`'") == ["a"]
    assert names('note == "a|b" | beds < 100') == ["b", "c"]
    assert names("note.str.contains('@')") == ["a"]


# -- the same rows as pandas' DataFrame.eval, which this replaces ---------------------------
_ATOMS = st.one_of(
    st.builds("kind {} {}".format, st.sampled_from(["==", "!=", "<", ">=", "<="]),
              st.sampled_from(["6", "4", "-1", "6.0"])),
    st.builds("beds {} {}".format, st.sampled_from(["==", "!=", ">", "<="]),
              st.sampled_from(["80", "100.5", "0"])),
    st.builds("name {} {}".format, st.sampled_from(["==", "!="]),
              st.sampled_from(["'甲中心'", "'Centre B'", "'x'"])),
    st.builds("kind {} {}".format, st.sampled_from(["in", "not in", "==", "!="]),
              st.sampled_from(["[4, 6]", "[1]", "(6, 3)"])),
    st.builds("code {} {}".format, st.sampled_from(["in", "not in"]),
              st.sampled_from(["['0012']", "['12', '0013']"])),
    st.builds("name.str.{}({!r})".format, st.sampled_from(["contains", "startswith"]),
              st.sampled_from(["中心", "Centre", "甲"])),
    st.sampled_from(["open", "kind.isna()", "beds.notna()", "0 < beds <= 200",
                     "`agency type` == 6"]),
)


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds("({}) {} ({})".format, children, st.sampled_from(["&", "|", "and", "or"]),
                  children),
        st.builds("{} {} {}".format, children, st.sampled_from(["&", "|"]), children),
        st.builds("~({})".format, children),
        st.builds("not ({})".format, children),
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(st.recursive(_ATOMS, _combine, max_leaves=6))
def test_the_same_rows_as_pandas_eval_on_safe_expressions(expression):
    frame = _mixed()
    try:
        expected = frame.eval(expression, engine="python")
    except Exception:  # pandas cannot: nothing to compare
        assume(False)
    got = evaluate_filter(expression, frame, where="layer 'k'")
    if not isinstance(got, pd.Series) or not isinstance(expected, pd.Series):
        assert got == expected
        return
    pd.testing.assert_series_equal(got, expected, check_names=False)


# -- the shipped configuration on the real data ---------------------------------------------
def test_the_shipped_filters_select_the_documented_counts(data_dir):
    config = load_config(ROOT / "data" / "shanghai-central.toml")
    filtered = {key: spec for key, spec in config.layers.items() if spec.filter}
    assert {key: spec.filter for key, spec in filtered.items()} == {
        "centre": "agencyType == 6", "meal_point": "agencyType == 4"}
    assert load_layer(filtered["centre"]).n_source == 325
    assert load_layer(filtered["meal_point"]).n_source == 1561


@pytest.mark.parametrize(("expression", "rows"), [
    ("agencyType == 6", 325),
    ("agencyType == 4", 1561),
    ("agencyType in [4, 6]", 1886),
    ("agencyType == 6 | agencyType == 4", 1886),
    ("agencyType != 6", 3821 - 325),
    ("~(agencyType == 6)", 3821 - 325),
    ("agencyType >= 7", 189 + 51),
    ("1 < agencyType <= 3", 160 + 601),
    ("agencyType == 1 & agencyName.str.contains('敬老院')", None),
])
def test_real_platform_filters(data_dir, expression, rows):
    path = data_dir / "facilities/elderly_services_platform.json"
    spec = LayerSpec(key="p", label="p", path=path, x="longitude", y="latitude", crs="gcj02",
                     filter=expression, name_field="agencyName")
    if rows is None:  # counted here with pandas on the file as read
        raw = pd.read_json(path, dtype=False)
        rows = int(((raw["agencyType"] == 1)
                    & raw["agencyName"].str.contains("敬老院", regex=False)).sum())
        assert 0 < rows < 686
    assert load_layer(spec).n_source == rows
