"""Why a unit fails: reason texts, in English and Chinese, per rule kind.

Used by :func:`coverage15.reach.targets.check_targets` and
:func:`coverage15.reach.gaps.units_by_district`. Every reason names what fails and by how
much; "1+N" names its failing side (the centres or the stations) with each side's share.
Shares print with as many decimals as it takes never to show 0 % (or 100 %) for a share
that is not (:func:`pct`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

Rule = Any  # a coverage15.reach.targets.Rule (not imported: targets imports this module)

__all__ = ["NO_WEIGHTS", "citywide_reason_zh", "count_reason", "counts", "district_reason",
           "network_reason", "one_plus_n_sides", "pct", "share_reason", "slower_walkers"]

NO_WEIGHTS = ("not evaluated (no population weights: [analysis] share_basis = \"people\" needs a "
              "[demand] weight_field or a [population] table)",
              "未评估（无人口权重：按居民比例判定需要居住点人数字段或人口表）")
"""The reason (English, Chinese) a walking rule is not judged on people without weights."""


def pct(share: float, digits: int = 0) -> str:
    """A share as a percentage that never shows 0 % (or 100 %) for a share that is not.

    ``digits`` decimals at least, more where they are needed: 0.0014 → "0.1%", 0.27 → "27%".
    """
    if pd.isna(share):
        return "–"
    value = 100.0 * float(share)
    for d in range(digits, 7):
        text = f"{value:.{d}f}"
        if (float(text) != 0.0 or value == 0.0) and (float(text) != 100.0 or value == 100.0):
            return f"{text}%"
    return "< 0.000001%" if value < 50 else "> 99.999999%"


def _labels(keys: Sequence[str], labels: dict[str, str]) -> str:
    return "/".join(labels.get(k, k) for k in keys)


def count_reason(rule: Rule, count: int, labels: dict[str, str]) -> tuple[str, str]:
    """``full_coverage``: how many sites there are, how many are needed, how many are missing."""
    label = labels.get(rule.layer or "", rule.layer or "")
    short = rule.min_count - int(count)
    return (f"{rule.id}: {count} {label} (needs ≥ {rule.min_count}; {short} more)",
            f"{label} {count} 处（需 ≥ {rule.min_count}，缺 {short} 处）")


def _short_by(rule: Rule, n_points: int, n_pass: float) -> int:
    return max(math.ceil(float(rule.min_share) * n_points - 1e-9) - round(n_pass), 0)


def counts(demand_unit: np.ndarray, passing: np.ndarray, n_units: int,
           weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per unit: its points, and those that pass (with ``weights``: persons, unknown left out)."""
    located = demand_unit >= 0
    w = np.ones(len(demand_unit)) if weights is None else np.asarray(weights, dtype=float)
    located &= ~np.isnan(w)
    unit = demand_unit[located]
    return (np.bincount(unit, weights=w[located], minlength=n_units),
            np.bincount(unit, weights=w[located] * passing[located], minlength=n_units))


def share_reason(rule: Rule, share: float, *, n_points: int, n_pass: float,
                 labels: dict[str, str], people: bool = False,
                 sides: tuple[float, float] | None = None) -> tuple[str, str]:
    """A share rule's reason: the share, the target, the residential points short.

    For ``one_plus_n``, ``sides`` are the shares of the unit's points within reach of a
    centre, and of enough stations: the reason names the side (or sides) below the target,
    or says that each side suffices alone but not at the same points.
    """
    en, zh = _share_reason(rule, share, n_points=n_points, n_pass=n_pass, labels=labels,
                           sides=sides)
    if people:  # judged on persons (``share_basis = "people"``); the sides stay on points
        return (en.replace("residential points", "residents"),
                zh.replace("个居住点", "名居民").replace("居住点", "居民"))
    return en, zh


def _share_reason(rule: Rule, share: float, *, n_points: int, n_pass: float,
                  labels: dict[str, str],
                  sides: tuple[float, float] | None = None) -> tuple[str, str]:
    need = _short_by(rule, n_points, n_pass)
    target = pct(rule.min_share)
    if rule.kind != "one_plus_n" or sides is None:
        label = labels.get(rule.layer or "", rule.id)
        return (f"{rule.id}: {pct(share)} of residential points within reach of {label} (needs ≥ "
                f"{target}; {need} more residential points)",
                f"步行可达{label}：{pct(share)} 居住点（需 ≥ {target}，尚差 {need} 个居住点）")
    centre, station = sides
    c_label = _labels(rule.centre_layers, labels)
    s_label = _labels(rule.station_layers, labels)
    low_c, low_s = centre < rule.min_share, station < rule.min_share
    side_en = ("both sides" if low_c and low_s else "the centre side" if low_c
               else "the station side" if low_s else
               "neither side alone (too few residential points have both)")
    side_zh = ("中心和站点都不足" if low_c and low_s else "缺中心" if low_c
               else "缺站点" if low_s else "两侧各自够，但同时有中心和站点的居住点不足")
    n = f"≥ {rule.n} " if rule.n != 1 else ""
    return (f"{rule.id}: {pct(share)} of residential points pass 1+N (needs ≥ {target}; "
            f"{need} more residential points); fails on {side_en}: centre ({c_label}) "
            f"{pct(centre)}, stations ({n}{s_label}) {pct(station)}",
            f"1+N：{pct(share)} 居住点达标（需 ≥ {target}，尚差 {need} 个居住点）；{side_zh}："
            f"中心（{c_label}）覆盖 {pct(centre)}，站点（{n}{s_label}）覆盖 {pct(station)}")


def one_plus_n_sides(centres_ok: np.ndarray, stations_ok: np.ndarray, demand_unit: np.ndarray,
                     n_units: int) -> tuple[np.ndarray, np.ndarray]:
    """Per unit: the share of its points with a centre within reach, and with enough stations."""
    located = demand_unit >= 0
    n_points = np.maximum(np.bincount(demand_unit[located], minlength=n_units), 1)
    return tuple(np.bincount(demand_unit[located], weights=ok[located].astype(float),
                             minlength=n_units) / n_points
                 for ok in (centres_ok, stations_ok))  # type: ignore[return-value]


def network_reason(status: str, share_in: float) -> tuple[str, str]:
    """Why walking rules were not judged: the unit is partly or wholly beyond the network."""
    return (f"{'no' if status == 'none' else 'partial'} network ({pct(share_in)} of the area): "
            "walking rules not evaluated",
            f"{'不在路网内' if status == 'none' else '仅部分在路网内'}（路网内面积 "
            f"{pct(share_in)}）：步行目标未评估")


def district_reason(n_units: int, flagged: Sequence[str], *, not_assessed: int = 0,
                    unit_word: str = "街镇") -> tuple[str, str]:
    """A district row's summary of its 街镇: how many are flagged (which), how many not assessed."""
    en = f"{len(flagged)} of its {n_units} {unit_word} flagged"
    zh = f"{n_units} 个{unit_word}中 {len(flagged)} 个未达标"
    if flagged:
        en, zh = en + f": {', '.join(flagged)}", zh + f"：{'、'.join(flagged)}"
    if not_assessed:
        en += f" ({not_assessed} not wholly inside the network: walking rules not judged there)"
        zh += f"（{not_assessed} 个不全在路网内，未评估步行目标）"
    return en, zh


def citywide_reason_zh(rule: Rule, total: int, labels: dict[str, str]) -> str:
    """A citywide count rule's outcome, in Chinese."""
    label = labels.get(rule.layer or "", rule.layer or "")
    short = rule.min_count - total
    return (f"全市共 {total} 处{label}（目标 ≥ {rule.min_count}"
            + (f"，尚差 {short} 处）" if short > 0 else "，已达标）"))


def slower_walkers(flags: Any, profs: Sequence[Any],
                    fails: list[list[str]], reasons: list[list[str]],
                    reasons_zh: list[list[str]]) -> None:
    """``fails_at_profiles`` and a reason for units that fail walking rules at other speeds."""
    if len(profs) < 2 or profs[0] is None:
        return
    verdict = profs[0]
    labels = {p.id: p for p in profs if p is not None}
    names: list[str | None] = []
    for i, items in enumerate(fails):
        ids = list(dict.fromkeys(item.split(":")[0] for item in items))
        names.append(",".join(ids) or None)
        if not items:
            continue
        detail = ", ".join(f"{rid} {share} at {pid} ({labels[pid].speed_mps:.2f} m/s)"
                           for pid, rid, share in (item.split(":") for item in items))
        reasons[i].append(("passes at the verdict speed "
                           f"({verdict.id}, {verdict.speed_mps:.2f} m/s) but fails for "
                           if not reasons[i] else "also fails for ")
                          + f"slower walkers: {detail}")
        zh = "、".join(f"{labels[pid].label} {labels[pid].speed_mps:.2f} m/s" for pid in ids)
        reasons_zh[i].append(f"按{verdict.label}步速达标，但步速较慢者（{zh}）不达标"
                             if not reasons_zh[i] else f"步速较慢者（{zh}）亦不达标")
    flags["fails_at_profiles"] = pd.array(names, dtype="object")
