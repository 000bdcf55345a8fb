"""The recommendation map: the state after the proposals, with the sites numbered.

:func:`coverage15.planning.recommend.write_recommendation` maps the re-run with the proposals
(their layer ``{layer}_added``) and hands the proposals over as ``MapOptions.proposals``.
Here the map's data is marked up for that: each proposed site carries its rank (drawn as a
numbered marker) and its effect (shown on a click), its service areas are on at start, and
the title and legend say that the map shows the state after the proposals.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from coverage15.outputs._safe_text import html_text

if TYPE_CHECKING:
    from coverage15.result import Result

__all__ = ["mark_proposals", "proposal_overlays"]


def _layer_key(result: Result, proposals: pd.DataFrame | None) -> str | None:
    """The layer of the run that holds the proposed sites (matched on their ids)."""
    if proposals is None or not len(proposals):
        return None
    ids = set(proposals["facility_id"].astype(str))
    for key, points in result.facilities.items():
        if ids & set(points["facility_id"].astype(str)):
            return key
    return None


def proposal_overlays(result: Result, proposals: pd.DataFrame | None) -> set[str]:
    """Overlay names to show at start: the proposed sites' service areas."""
    key = _layer_key(result, proposals)
    return set() if key is None else {f"{result.config.layers[key].label} 15分钟服务圈"}


def mark_proposals(payload: dict[str, Any], result: Result, data: Any,
                   proposals: pd.DataFrame | None) -> None:
    """Number the proposed sites, attach their effect, and retitle the map (in place).

    ``data`` is the map's :class:`coverage15.outputs.maps.MapData` (not imported: maps
    imports this module).

    ``proposals``: ``facility_id`` (as on the map's layer), ``rank``, and optionally
    ``place``, ``jiezhen``, ``newly_covered``, ``effect`` and ``now_passes``.
    """
    key = _layer_key(result, proposals)
    if key is None or proposals is None:
        return
    by_id = proposals.assign(facility_id=proposals["facility_id"].astype(str)).set_index(
        "facility_id")
    layer = next(lyr for lyr in payload["layers"] if lyr["key"] == key)
    sites: list[dict[str, Any] | None] = []
    # the layer's rows are the map's facilities of the layer, in order
    for fid in data.facilities[key]["facility_id"].astype(str):
        if fid not in by_id.index:
            sites.append(None)
            continue
        p = by_id.loc[fid]

        def text(column: str, p: Any = p) -> str:
            value = p.get(column)
            return "" if value is None or (not isinstance(value, str) and pd.isna(value)) \
                else str(value)

        sites.append({"rank": int(p["rank"]), "place": text("place"),
                      "newly": text("newly_covered"), "effect": text("effect"),
                      "passes": text("now_passes")})
    layer["sites"] = sites
    layer["top"] = True
    label = result.config.layers[key].label
    n = len(proposals)
    payload["title"] = {
        "heading": f"{payload['title']['heading']} · 拟建 {n} 处后",
        "detail": f"图示为新增 {n} 处{label}后的状况（按推荐顺序编号 1–{n}）· "
                  f"{payload['title']['detail']}"}
    colour = layer["colour"]
    payload["legend"] = (
        "<h2>推荐方案（拟建后）</h2>"
        f"<div class='row'><span class='c15-site-sample' style='background:{colour}'>1</span>"
        f"{html_text(label)}：{n} 处，按推荐顺序编号；点击编号查看其效果</div>"
        f"<div class='row'><span class='sw' style='background:{colour}40;border:2px solid "
        f"{colour}'></span>拟建设施的15分钟服务圈（打开地图即显示）</div>"
        "<div class='row note'>街镇颜色与未达标标注均为拟建后的状况</div>" + payload["legend"])
