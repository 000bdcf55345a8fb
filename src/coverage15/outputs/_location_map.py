"""The map's location check: rows that land outside the place they name, where they landed.

The location check (:mod:`coverage15.inputs.places`) finds facilities whose point lies more
than the layer's tolerance outside the 街镇 or district their row names. A planner should see
them on the map before trusting a verdict: a flagged row counts where it landed (it may give
a 街镇 a centre that serves another), a row set aside counts nowhere. Each is drawn as a
dashed ring in its layer's colour on an overlay of its own, named with the count, with a
popup that says what the row names, where it landed, how far outside, and what was done.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import folium
import pandas as pd

from coverage15.inputs._palette import layer_colours
from coverage15.outputs._safe_text import html_text

if TYPE_CHECKING:
    from coverage15.result import Result

__all__ = ["add_location_overlays", "location_overlay_names", "location_rows"]

ACTIONS_ZH = {"flag": "仍按落点计入", "set_aside": "已剔除，不计入"}
"""What was done with a row, in the popup: flagged rows count where they landed."""


def location_rows(result: Result, district: str | None = None,
                  jiezhen: set[str] | None = None) -> list[list[Any]]:
    """The misplaced rows a map draws: ``[lat, lon, layer key, name, named, landed, m, action]``.

    A district's map keeps the rows that land in the district or name it or one of its 街镇
    (``jiezhen``).
    """
    rows = result.misplaced
    if rows is None or not len(rows):
        return []
    if district:
        names = {district, *(jiezhen or set())}
        keep = (rows["landed"].astype(str).str.startswith(f"{district} ")
                | rows["named"].astype(str).isin(names))
        rows = rows.loc[keep.to_numpy()]
    return [[float(r.lat), float(r.lon), str(r.layer), str(r.name), str(r.named),
             str(r.landed), None if pd.isna(r.distance_m) else int(r.distance_m),
             ACTIONS_ZH.get(str(r.action), str(r.action))]
            for r in rows.itertuples(index=False)]


def _by_kind(rows: list[list[Any]]) -> list[tuple[str, str, list[list[Any]]]]:
    """Facilities and residential points apart: (overlay name, what, rows), non-empty only."""
    kinds = (("设施", [r for r in rows if r[2] != "demand"]),
             ("居住点", [r for r in rows if r[2] == "demand"]))
    return [(f"位置存疑的{what}（{len(mine)} 处）", what, mine) for what, mine in kinds if mine]


def location_overlay_names(result: Result, district: str | None = None) -> list[str]:
    """Names of the location check's overlays on a map of ``result`` (after the others)."""
    jiezhen = (set(result.units.loc[result.units["district"] == district, "unit"].astype(str))
               if district else None)
    return [name for name, _, _ in _by_kind(location_rows(result, district, jiezhen))]


def add_location_overlays(fmap: folium.Map, result: Result, data: Any,
                          ) -> list[tuple[str, dict[str, Any]]]:
    """Add the overlays of misplaced rows to ``fmap``: their JavaScript names and page data.

    One overlay for the facilities, one for the residential points (the demand), each only
    where the map's area has such rows. Call it before the map's layer control is added (the
    control names its overlays). ``data`` is the map's
    :class:`coverage15.outputs.maps.MapData` (not imported: maps imports this module).
    """
    jiezhen = set(data.units["jiezhen"].astype(str)) if data.district else None
    rows = location_rows(result, data.district, jiezhen)
    colours = layer_colours(result.config.layers)
    labels = {key: spec.label for key, spec in result.config.layers.items()}
    out = []
    for name, what, mine in _by_kind(rows):
        group = folium.FeatureGroup(name=html_text(name), show=False)
        group.add_to(fmap)
        layers = {key: {"label": labels.get(key, "居住点"), "colour": colours.get(key, "#555555")}
                  for key in {r[2] for r in mine}}
        out.append((str(group.get_name()), {"overlay": name, "what": what, "rows": mine,
                                            "layers": layers}))
    return out
