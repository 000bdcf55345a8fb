"""Checks of a run's target rules against its layers, before any work is done.

A rule that names a layer the run does not have is "not evaluated": a choice when the layer
is simply absent (the shipped targets file serves runs with fewer layers), a typo when a
layer of the run has a close name (``heath`` for ``health``): that would silently drop a
verdict, so it stops the run (id ``rule-layer:RULE``) unless accepted. A rule id whose
columns (``{id}_share``, ``pass_{id}``) are columns the analysis itself writes would
overwrite a layer's figures: that stops the run with no way to accept it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

from coverage15.inputs.checks import Problem
from coverage15.reach.targets import Rule

__all__ = ["generated_columns", "rule_problems"]


def generated_columns(layer_keys: Iterable[str]) -> set[str]:
    """Columns of the per-街镇 table that the analysis writes for these layers."""
    fixed = {"unit", "district", "area_km2", "network_share", "network", "demand_points",
             "uncovered", "reason", "reason_zh"}
    per_layer = {f"{key}_{suffix}" for key in layer_keys
                 for suffix in ("count", "demand_share", "area_share", "n", "m")}
    return fixed | per_layer


def rule_problems(rules: Sequence[Rule], layer_keys: Iterable[str]) -> list[Problem]:
    """Rules naming a likely misspelt layer, and rule ids that clash with generated columns.

    Parameters
    ----------
    rules
        From :func:`coverage15.load_targets`.
    layer_keys
        The run's facility layers.

    Returns
    -------
    list of Problem
        Errors (stops): ``rule-layer:ID`` for a typo (acceptable), and a clash of a rule's
        columns with the analysis' own (not acceptable: rename the rule).
    """
    keys = sorted(layer_keys)
    generated = generated_columns(keys)
    problems = []
    for rule in rules:
        for missing in (k for k in rule.layers if k not in keys):
            close = difflib.get_close_matches(missing, keys, n=1)
            if close:
                problems.append(Problem(
                    "error", "targets", f"rule {rule.id} names layer {missing!r}, which this "
                    f"run does not have (did you mean {close[0]!r}?): the rule would not be "
                    "evaluated; correct the layer in the targets file", 1,
                    id=f"rule-layer:{rule.id}"))
        clash = sorted({f"{rule.id}_share", f"pass_{rule.id}"} & generated)
        if clash:
            problems.append(Problem(
                "error", "targets", f"rule id {rule.id!r} would write column(s) "
                f"{', '.join(clash)} that the analysis already writes for its layers; give "
                "the rule another id", 1))
    return problems
