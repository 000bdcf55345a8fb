"""Legend rows for the 街镇: every combination of fill and outline, with its meaning.

A 街镇's fill is its share (coloured when it is wholly inside the network, grey when its
walking rules could not be judged) and its outline is red when it fails a rule judged there:
so a grey 街镇 outlined red is one beyond the network that fails a count rule (e.g. no
centre in it). :func:`unit_rows` spells out the four combinations, with how many 街镇 each.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

__all__ = ["facility_count_text", "unit_rows"]


def unit_rows(units: pd.DataFrame, *, no_data: str, flag: str, sample: str) -> list[str]:
    """The legend's rows for the 街镇 fills and outlines (HTML; no text from the data).

    ``units`` has the map's ``assessed`` and ``flag`` columns; ``sample`` is a share colour
    to show a judged 街镇 with.
    """
    assessed = units["assessed"].to_numpy(dtype=bool)
    flagged = units["flag"].to_numpy(dtype=bool)
    thin = "border:1px dashed #5a5a5a"
    red = f"border:3px solid {flag}"
    combos = [
        (sample, thin, assessed & ~flagged, "已评估，各项目标均达标"),
        (sample, red, assessed & flagged, "未达标街镇（已评估）：至少一项目标未达到"),
        (no_data, thin, ~assessed & ~flagged,
         "未评估：路网外或仅部分在路网内（步行目标无法评估），数量目标达标"),
        (no_data, red, ~assessed & flagged,
         "未达标街镇（步行目标未评估）：数量目标未达标，如街镇内没有所需设施"),
    ]
    rows = ["<div class='row note'>填色：覆盖比例（灰色＝未评估）；红色粗边框＝未达标。"
            "组合含义如下（点击街镇看原因）：</div>"]
    for fill, border, mask, text in combos:
        bold = f" style='color:{flag}'" if "solid" in border else ""
        rows.append(f"<div class='row'><span class='sw' style='background:{fill};{border}'>"
                    f"</span><span{bold}>{text}（{int(mask.sum())} 个）</span></div>")
    return rows


def facility_count_text(data: Any, key: str) -> str:
    """How many facilities of a layer the map shows, in Chinese, for the legends.

    On a district map the district's own facilities are told apart from the neighbours' ones
    shown because they serve it. ``data`` is the map's
    :class:`~coverage15.outputs.maps.MapData` (``facilities`` by layer, ``district``).
    """
    shown = data.facilities[key]
    on = int(shown["on_network"].sum())
    if data.district is None:
        return f"{on} 处在路网内（图上 {len(shown)} 处）"
    own = (shown["district"] == data.district).to_numpy()
    return (f"本区 {int(own.sum())} 处（路网内 {int(shown['on_network'].to_numpy()[own].sum())}"
            f" 处），另有邻区服务本区的 {int((~own).sum())} 处")
