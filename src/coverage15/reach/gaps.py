"""Gap-report tables and the run summary.

Column names are stable (documented in the README); shares are 0–1, never percentages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from coverage15.reach import _reasons

if TYPE_CHECKING:
    from coverage15.reach.targets import TargetCheck

__all__ = [
    "COLUMN_LABELS_ZH",
    "bool_columns_to_text",
    "column_label_zh",
    "gap_report",
    "profile_failures",
    "profile_lines",
    "profile_table",
    "summary_lines",
    "units_by_district",
]

SHARE_DIGITS = 4


def gap_report(
    names: pd.DataFrame,
    table: pd.DataFrame,
    check: TargetCheck,
    layer_keys: Sequence[str],
    *,
    unit_column: str = "jiezhen",
) -> pd.DataFrame:
    """One row per unit: identity, network status, counts and shares per layer, rule flags.

    Parameters
    ----------
    names
        ``unit`` and ``district`` columns, indexed like ``table``.
    table
        :func:`coverage15.reach.coverage.coverage_by_unit` output.
    check
        :func:`coverage15.reach.targets.check_targets` output.
    layer_keys
        Facility layer keys, in config order.
    unit_column
        Name of the unit column (``jiezhen`` for 街镇, ``district`` for districts).

    Returns
    -------
    pandas.DataFrame
        Columns: ``district``, ``{unit_column}``, ``network``, ``network_share``, (when
        ``table`` has them: ``network_complete``, ``street_near_share``,
        ``street_density_ratio``, see :func:`coverage15.network.checks.network_completeness`)
        ``area_km2``, ``demand_points``, per layer ``{key}_count``, ``{key}_demand_share``,
        ``{key}_area_share``, per share rule ``{rule}_share``, per rule ``pass_{rule}``,
        ``uncovered`` and ``reason``; sorted by district then unit name.
    """
    # the columns are gathered first and made into one frame (a frame grown column by column
    # costs the live app a third of an edit); Series align on the index as assignment does
    out: dict[str, pd.Series] = {}
    if unit_column != "district":
        out["district"] = names["district"]
    out[unit_column] = names["unit"]
    out["network"] = table["network"]
    out["network_share"] = table["network_share"].round(SHARE_DIGITS)
    if "network_complete" in table:  # how well the network covers where people live
        out["network_complete"] = table["network_complete"]
        out["street_near_share"] = table["street_near_share"].round(SHARE_DIGITS)
        out["street_density_ratio"] = table["street_density_ratio"].round(2)
    out["area_km2"] = table["area_km2"].round(3)
    out["demand_points"] = table["demand_points"].astype("int64")
    for key in layer_keys:
        out[f"{key}_count"] = table[f"{key}_count"].astype("int64")
        for what in ("demand_share", "area_share"):
            column = f"{key}_{what}"
            if column in table:
                out[column] = table[column].round(SHARE_DIGITS)
    flags = check.flags
    special = ("uncovered", "reason", "reason_zh", "fails_at_profiles")
    for column in flags.columns:  # shares (per profile, of points and people), values
        if not column.startswith("pass_") and column not in special:
            out[column] = flags[column].round(SHARE_DIGITS)
    # walking shares are only judged where the unit is wholly inside the network: elsewhere
    # residents beyond the network's streets would count as unserved, so leave them empty
    outside = (table["network"] != "full").to_numpy()
    for column in list(out):
        if column.endswith(("_demand_share", "_area_share")) or (
                "_share" in column and column in flags.columns):
            out[column] = _blank(out[column], outside)
    for column in flags.columns:
        if column.startswith("pass_"):
            out[column] = flags[column]
    for column in ("fails_at_profiles", "uncovered", "reason", "reason_zh"):
        if column in flags or column in ("uncovered", "reason"):
            out[column] = flags[column]
    frame = pd.DataFrame(out, index=table.index)
    sort_by = ["district", unit_column] if unit_column != "district" else [unit_column]
    keys = [frame[c].tolist() for c in sort_by]
    if all(isinstance(v, str) for k in keys for v in k):  # names: sorted as pandas sorts them
        order = sorted(range(len(frame)), key=lambda i: tuple(k[i] for k in keys))
        return frame.take(order).reset_index(drop=True)
    return frame.sort_values(sort_by, kind="stable").reset_index(drop=True)


def _blank(values: pd.Series, where: np.ndarray) -> pd.Series:
    """``values`` with NaN ``where`` true (as ``mask``, faster for plain floats)."""
    if values.dtype != np.float64:
        return values.mask(where)
    array = values.to_numpy(copy=True)
    array[where] = np.nan
    return pd.Series(array, index=values.index, name=values.name)


def add_caution(gap: pd.DataFrame, cautions: Mapping[str, tuple[str, str]],
                unit_column: str = "jiezhen") -> None:
    """Append a caution to named units' ``reason`` (and ``reason_zh``), in place.

    For what the rule checks cannot see, e.g. streets missing from the network: the verdict
    stands, and the reader of the report is told to check it.
    """
    names = gap[unit_column].tolist()
    if not cautions or not any(n in cautions for n in names):
        return
    for column, part, sep in (("reason", 0, "; "), ("reason_zh", 1, "；")):
        if column in gap:
            gap[column] = [f"{r}{sep}{cautions[n][part]}" if n in cautions else r
                           for n, r in zip(names, gap[column].tolist(),
                                           strict=True)]


def units_by_district(district_report: pd.DataFrame, unit_report: pd.DataFrame,
                      unit_column: str = "jiezhen") -> pd.DataFrame:
    """Add to a district report how many of each district's 街镇 there are, and which fail.

    A district's own rule checks run on its totals (e.g. its centres summed over its 街镇),
    so a district can pass while several of its 街镇 fail; these columns say so.

    Parameters
    ----------
    district_report
        :func:`gap_report` per district (column ``district``).
    unit_report
        :func:`gap_report` per 街镇 (columns ``district``, ``unit_column``, ``uncovered``).
    unit_column
        The 街镇 name column of ``unit_report``.

    Returns
    -------
    pandas.DataFrame
        ``district_report`` with ``jiezhen_count`` (its 街镇), ``jiezhen_uncovered`` (how
        many are flagged uncovered) and ``uncovered_jiezhen`` (their names, joined by 、,
        in the 街镇 report's order; missing when there are none, so that every format,
        PostGIS included, reads it back the same), inserted before ``uncovered``.
    """
    flagged = unit_report["uncovered"].fillna(False).astype(bool)
    by = unit_report.groupby("district", sort=False)
    count = by.size()
    failing = unit_report.loc[flagged].groupby("district", sort=False)
    names = failing[unit_column].agg("、".join)
    out = district_report.copy()
    at = out.columns.get_loc("uncovered")
    districts = out["district"]
    out.insert(at, "jiezhen_count", districts.map(count).fillna(0).astype("int64"))
    out.insert(at + 1, "jiezhen_uncovered",
               districts.map(failing.size()).fillna(0).astype("int64"))
    out.insert(at + 2, "uncovered_jiezhen", districts.map(names))  # none: empty (NULL)
    _summarise_flagged(out, unit_report, unit_column)
    return out


def _summarise_flagged(out: pd.DataFrame, unit_report: pd.DataFrame, unit_column: str) -> None:
    """Append to each district row's reasons how many of its 街镇 are flagged, and which."""
    flagged = unit_report["uncovered"].fillna(False).astype(bool).to_numpy()
    partial = (unit_report["network"] != "full").to_numpy()
    district = unit_report["district"].to_numpy()
    names = unit_report[unit_column].astype(str).to_numpy()
    en_col, zh_col = [], []
    reason = out["reason"].tolist()
    reason_zh = out["reason_zh"].tolist() if "reason_zh" in out else []
    for i, d in enumerate(out["district"].to_numpy()):
        mine = district == d
        en, zh = _reasons.district_reason(int(mine.sum()), list(names[mine & flagged]),
                                          not_assessed=int((mine & partial).sum()))
        en_col.append(f"{reason[i]}; {en}")
        if "reason_zh" in out:
            zh_col.append(f"{reason_zh[i]}；{zh}")
    out["reason"] = en_col
    if "reason_zh" in out:
        out["reason_zh"] = zh_col


def summary_lines(
    report: pd.DataFrame,
    check: TargetCheck,
    *,
    layer_counts: dict[str, tuple[str, int, int, int]],
    unit_word: str = "街镇",
) -> list[str]:
    """Short human summary of a run for the terminal.

    Parameters
    ----------
    report
        :func:`gap_report` of the 街镇.
    check
        The target check.
    layer_counts
        Per layer key: ``(label, loaded, rejected, on network)``.
    unit_word
        What a unit is called.
    """
    lines = []
    for key, (label, loaded, rejected, on_net) in layer_counts.items():
        lines.append(f"layer {key} ({label}): {loaded} loaded, {rejected} set aside, "
                     f"{on_net} on the network")
    status = report["network"].value_counts()
    lines.append(
        f"{unit_word}: {len(report)} in all; {status.get('full', 0)} inside the network, "
        f"{status.get('partial', 0)} partly, {status.get('none', 0)} outside "
        "(count rules only)"
    )
    uncovered = report.loc[report["uncovered"].fillna(False).astype(bool)]
    inside = uncovered["network"] == "full"
    lines.append(f"uncovered {unit_word} (fail at least one rule): {len(uncovered)} "
                 f"({int(inside.sum())} inside the network, {int((~inside).sum())} on count "
                 "rules beyond it)")
    # those judged on every rule first, then those judged on count rules only
    uncovered = pd.concat([uncovered.loc[inside], uncovered.loc[~inside]])
    for _, row in uncovered.head(15).iterrows():
        lines.append(f"  {row.get('district', '')} {row.iloc[1]}: {row['reason']}")
    if len(uncovered) > 15:
        lines.append(f"  ... and {len(uncovered) - 15} more (see gap_report.csv)")
    lines += profile_lines(report, check, unit_word=unit_word)
    for result in check.citywide:
        verdict = "pass" if result.passed else "FAIL"
        lines.append(f"citywide {result.rule.id}: {verdict}: {result.reason}")
    for rid, why in check.skipped.items():
        lines.append(f"rule {rid}: not evaluated ({why})")
    return lines


def profile_failures(report: pd.DataFrame,
                     profile_ids: Sequence[str]) -> dict[str, np.ndarray]:
    """Per walking profile (the verdict's first), which rows fail a rule judged there.

    The walking rules (a ``pass_{rule}`` beside a ``{rule}_share``) count at the profile's
    own speed (``pass_{rule}_{profile}``; the verdict's unsuffixed), every other rule as it
    is. Where a row is True, it would be ``uncovered`` at that profile, as
    :func:`~coverage15.reach.targets.check_targets` decides ``uncovered``; a rule not judged
    there (empty) fails nothing.
    """
    rules = [c[len("pass_"):] for c in report.columns if c.startswith("pass_")]
    walking = [r for r in rules if f"{r}_share" in report]
    variants = {f"{w}_{p}" for w in walking for p in profile_ids}
    others = [r for r in rules if r not in walking and r not in variants]
    out = {}
    for position, pid in enumerate(profile_ids):
        suffix = "" if position == 0 else f"_{pid}"
        columns = [c for c in [f"pass_{r}{suffix}" for r in walking] if c in report]
        columns += [f"pass_{r}" for r in others]
        passes = report[columns].astype("boolean").to_numpy(dtype=bool, na_value=True)
        out[pid] = ~passes.all(axis=1)
    return out


def profile_table(report: pd.DataFrame, check: TargetCheck) -> pd.DataFrame:
    """Per walking rule and profile: units judged, failing, and the mean share.

    Returns
    -------
    pandas.DataFrame
        Columns ``rule``, ``profile``, ``label``, ``speed_mps``, ``judged``, ``failing`` and
        ``mean_share`` (the mean of the judged units' shares of residential points); one
        row per profile, the verdict profile first. Empty without profiles.
    """
    rows = []
    rules = [c[len("pass_"):] for c in report.columns
             if c.startswith("pass_") and f"{c[len('pass_'):]}_share" in report.columns]
    for rid in rules:
        for position, profile in enumerate(check.profiles):
            suffix = "" if position == 0 else f"_{profile.id}"
            verdict = report[f"pass_{rid}{suffix}"].astype("boolean")
            judged = verdict.notna().to_numpy()
            rows.append({"rule": rid, "profile": profile.id, "label": profile.label,
                         "speed_mps": round(profile.speed_mps, 2),
                         "judged": int(judged.sum()),
                         "failing": int((verdict == False).sum()),  # noqa: E712
                         "mean_share": float(report[f"{rid}_share{suffix}"][judged].mean())})
    return pd.DataFrame(rows, columns=["rule", "profile", "label", "speed_mps", "judged",
                                       "failing", "mean_share"])


def profile_lines(report: pd.DataFrame, check: TargetCheck, *,
                  unit_word: str = "街镇") -> list[str]:
    """Terminal lines: per profile, units failing each walking rule and its mean share.

    Then the units that pass at the verdict speed but fail for slower walkers.
    """
    if len(check.profiles) < 2:
        return []
    lines = []
    for row in profile_table(report, check).itertuples():
        lines.append(f"profile {row.profile} ({row.label}, {row.speed_mps:.2f} m/s): "
                     f"{row.failing} of {row.judged} {unit_word} fail {row.rule}; mean "
                     f"{row.rule} share {row.mean_share:.1%}")
    if "fails_at_profiles" in report:
        only = report.loc[report["fails_at_profiles"].notna()
                          & (report["uncovered"] == False)]  # noqa: E712
        names = "、".join(only.iloc[:, 1].astype(str))
        lines.append(f"{unit_word} passing at the verdict speed but failing for slower "
                     f"walkers: {len(only)}" + (f" ({names})" if names else ""))
    return lines


def bool_columns_to_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Nullable booleans as ``true``/``false``/empty, for CSV that reads the same everywhere."""
    out = frame.copy()
    for column in out.columns:
        if isinstance(out[column].dtype, pd.BooleanDtype) or out[column].dtype == bool:
            values = out[column].astype("boolean")
            out[column] = np.where(values.isna(), "", np.where(values.fillna(False),
                                                                 "true", "false"))
    return out


COLUMN_LABELS_ZH = {
    "district": "区",
    "jiezhen": "街镇",
    "network": "路网覆盖",
    "network_share": "路网覆盖比例",
    "network_complete": "路网完整度",
    "street_near_share": "距道路50米内居住点比例",
    "street_density_ratio": "道路密度（相对中位数）",
    "area_km2": "面积 (km²)",
    "demand_points": "居住点数",
    "fails_at_profiles": "步速较慢时不达标的步行画像",
    "uncovered": "未达标",
    "jiezhen_count": "街镇数",
    "jiezhen_uncovered": "未达标街镇数",
    "uncovered_jiezhen": "未达标街镇",
    "reason": "原因（英文）",
    "reason_zh": "原因",
}
NETWORK_ZH = {"full": "完整", "partial": "部分", "none": "无"}  # values of ``network``
COMPLETE_ZH = {"complete": "完整", "thin": "偏稀", "sparse": "缺路较多"}  # ``network_complete``
_LAYER_SUFFIXES_ZH = (("_count", "数量"), ("_demand_share", "居住点覆盖率"),
                      ("_area_share", "面积覆盖率"))


def column_label_zh(column: str, layer_labels: dict[str, str],
                    rule_labels: dict[str, str],
                    profile_labels: Mapping[str, str] | None = None) -> str:
    """Chinese label of a gap-report column (the column name itself when unknown).

    Parameters
    ----------
    column
        A gap-report column name.
    layer_labels
        Layer key → label (e.g. ``centre`` → 社区综合为老服务中心).
    rule_labels
        Rule id → label.
    profile_labels
        Walking profile id → label (for the columns of profiles other than the verdict's).
    """
    if column in COLUMN_LABELS_ZH:
        return COLUMN_LABELS_ZH[column]
    for key, label in layer_labels.items():
        for suffix, zh in _LAYER_SUFFIXES_ZH:
            if column == f"{key}{suffix}":
                return f"{label}{zh}"
    names: dict[str, str] = {}
    for rid, label in rule_labels.items():
        names |= {f"pass_{rid}": f"达标：{label}", f"{rid}_share": f"{label} 达标居住点比例",
                  f"{rid}_people_share": f"{label} 达标居民比例", f"{rid}_value": label}
        for pid, plabel in (profile_labels or {}).items():
            names |= {f"pass_{rid}_{pid}": f"达标（{plabel}）：{label}",
                      f"{rid}_share_{pid}": f"{label} 达标居住点比例（{plabel}）",
                      f"{rid}_people_share_{pid}": f"{label} 达标居民比例（{plabel}）"}
    return names.get(column, column)
