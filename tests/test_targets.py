"""Target rules on a hand-made table whose answers are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from coverage15 import ConfigError
from coverage15.reach.targets import Rule, check_targets, load_targets


def _units() -> pd.DataFrame:
    return pd.DataFrame({
        "network": ["full", "full", "partial", "none"],
        "network_share": [1.0, 1.0, 0.5, 0.0],
        "centre_count": [1, 0, 2, 0],
        "meal_count": [3, 1, 0, 0],
    })


def _demand() -> tuple[pd.DataFrame, np.ndarray]:
    # unit 0: 4 points, 3 pass 1+N; unit 1: 2 points, none has a centre; unit 2: 1 point
    cover = pd.DataFrame({
        "centre_n": [1, 2, 1, 0, 0, 0, 1],
        "meal_n": [1, 1, 2, 1, 3, 1, 1],
    })
    return cover, np.array([0, 0, 0, 0, 1, 1, 2])


RULES = [
    Rule(id="one_plus_n", kind="one_plus_n", centre_layers=("centre",),
         station_layers=("meal",), n=1, min_share=0.75),
    Rule(id="centre_each", kind="full_coverage", layer="centre", min_count=1),
    Rule(id="centres_city", kind="citywide_count", layer="centre", min_count=500),
    Rule(id="social_each", kind="full_coverage", layer="social_work"),
]


def test_rules_on_known_table():
    cover, unit = _demand()
    check = check_targets(_units(), RULES, demand_cover=cover, demand_unit=unit,
                          layer_labels={"centre": "中心", "meal": "助餐点"},
                          layer_totals={"centre": 3, "meal": 4})
    flags = check.flags
    assert flags["one_plus_n_share"].tolist()[:3] == [0.75, 0.0, 1.0]
    # only units wholly inside the network are judged on walking rules
    assert flags["pass_one_plus_n"].tolist()[:2] == [True, False]
    assert pd.isna(flags["pass_one_plus_n"].iloc[2])
    assert pd.isna(flags["pass_one_plus_n"].iloc[3])
    # counting rules need no network: judged everywhere
    assert flags["pass_centre_each"].tolist() == [True, False, True, False]
    assert flags["uncovered"].tolist()[:2] == [False, True]
    # beyond the network: uncovered when a count rule fails (unit 3 has no centre), unknown
    # when the count rules pass (unit 2: its walking rule could not be judged)
    assert pd.isna(flags["uncovered"].iloc[2])
    assert flags["uncovered"].iloc[3]
    assert "0% of residential points pass" in flags["reason"].iloc[1]
    assert "centre_each: 0 中心 (needs ≥ 1; 1 more)" in flags["reason"].iloc[1]
    assert flags["reason"].iloc[3].startswith("no network")
    assert check.citywide[0].value == 3
    assert check.citywide[0].passed is False
    assert "social_each" in check.skipped
    assert check.demand_pass["one_plus_n"].tolist() == [True, True, True, False, False,
                                                         False, True]


def test_n_stations():
    cover, unit = _demand()
    rule = Rule(id="one_plus_two", kind="one_plus_n", centre_layers=("centre",),
                station_layers=("meal",), n=2, min_share=0.5)
    check = check_targets(_units(), [rule], demand_cover=cover, demand_unit=unit,
                          layer_labels={"centre": "c", "meal": "m"},
                          layer_totals={"centre": 3, "meal": 4})
    assert check.demand_pass["one_plus_two"].tolist() == [False, False, True, False, False,
                                                          False, False]
    assert check.flags["one_plus_two_share"].iloc[0] == 0.25


def test_shipped_targets_file():
    from pathlib import Path

    rules = load_targets(Path(__file__).resolve().parents[1] / "data/targets/shanghai-2025.toml")
    kinds = {r.id: r.kind for r in rules}
    assert kinds["one_plus_n"] == "one_plus_n"
    assert kinds["rehab_rental_in_jiezhen"] == "full_coverage"
    assert kinds["social_work_in_jiezhen"] == "full_coverage"
    assert kinds["centres_citywide"] == "citywide_count"


def test_bad_rules_are_named(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text(
        """
[[rules]]
id = "a"
kind = "one_plus_n"
min_share = 90
[[rules]]
id = "a"
kind = "full_coverage"
[[rules]]
id = "b"
kind = "nearest"
""", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_targets(path)
    text = str(info.value)
    assert "rule 'a': min_share must be a share in [0, 1], got 90" in text
    assert "rule 'a': needs centre_layers" in text
    assert "rule 'a': needs layer" in text
    assert "kind 'nearest' is not one of" in text
    assert "rule id 'a' is used twice" in text


def test_a_layer_list_given_as_text_is_refused(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text("""
[[rules]]
id = "one_plus_n"
kind = "one_plus_n"
centre_layers = ["centre"]
station_layers = "meal_point"
""", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"station_layers must be a list of layer keys"):
        load_targets(path)


def test_a_misspelt_layer_is_named_with_the_likely_one():
    rule = Rule(id="meal_each", kind="full_coverage", layer="meal_points", min_count=1)
    check = check_targets(_units(), [rule], demand_cover=None, demand_unit=None,
                          layer_labels={"centre": "c", "meal": "m", "meal_point": "m"},
                          layer_totals={})
    assert check.skipped["meal_each"] == ("layer(s) ['meal_points'] not in this run's config "
                                          "(did you mean 'meal_point' for 'meal_points'?)")
