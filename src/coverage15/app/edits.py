"""One edit of a session's scenario: add, move, close or reopen a facility of a layer."""

from __future__ import annotations

from typing import Any

from coverage15.app._http import _Bad, _number, _text
from coverage15.app.engine import Base, LayerEdit, Scenario, Site
from coverage15.app.store import Session

__all__ = ["edit_scenario"]


def edit_scenario(base: Base, session: Session, payload: dict[str, Any]) -> Scenario:
    """The scenario after one edit (``add``, ``move``, ``close``, ``reopen``); nothing applied."""
    op = payload.get("op")
    layer = payload.get("layer")
    if not isinstance(layer, str) or layer not in base.layer_state:
        raise _Bad(f"layer must be one of {', '.join(base.keys)}")
    scenario = session.scenario
    edit = scenario.edit(layer)
    added = list(edit.added)
    removed = set(edit.removed)
    if op == "add":
        lon, lat = _number(payload, "lon"), _number(payload, "lat")
        session.counter += 1
        name = _text(payload, "name") or f"新增{base.labels[layer]} {session.counter}"
        added.append(Site(f"new-{session.counter}", name, lon, lat))
    elif op in ("move", "close", "reopen"):
        fid = _text(payload, "id")
        at = [i for i, s in enumerate(added) if s.id == fid]
        if op == "reopen":
            if fid not in removed:
                raise _Bad(f"facility {fid!r} is not closed in this scenario")
            removed.discard(fid)
            added = [s for s in added if s.id != f"moved-{fid}"]
        elif at:
            if op == "close":
                del added[at[0]]
            else:
                s = added[at[0]]
                added[at[0]] = Site(s.id, s.name, _number(payload, "lon"),
                                    _number(payload, "lat"))
        elif fid in base.ids[layer] and fid not in removed:
            removed.add(fid)
            if op == "move":
                points = base.layer_state[layer].points
                name = str(points.loc[points["facility_id"].astype(str) == fid,
                                      "name"].iloc[0])
                added.append(Site(f"moved-{fid}", name, _number(payload, "lon"),
                                  _number(payload, "lat")))
        else:
            raise _Bad(f"layer {layer!r} has no open facility {fid!r} in this scenario")
    else:
        raise _Bad("op must be add, move, close or reopen")
    return scenario.with_edit(layer, LayerEdit(frozenset(removed), tuple(added)))
