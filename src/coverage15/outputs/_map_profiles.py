"""The map's walking profiles: each 街镇's colour, flag and share at every profile.

:mod:`coverage15.outputs.maps` puts these in the page's data; its script switches between
them (``_static/coverage15-map.js``) without another run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from coverage15.result import Result

__all__ = ["profile_labels", "profile_views"]


def profile_labels(result: Result) -> dict[str, str]:
    """Profile id → label and speed, as the map shows them."""
    return {p.id: f"{p.label} {p.speed_mps:.2f} m/s" for p in result.check.profiles}


def profile_views(result: Result, units: pd.DataFrame, share_column: str, *,
                  colour: Callable[[Any], str], no_data: str, cell: Callable[[str, Any], str],
                  ) -> tuple[list[dict[str, str]], list[dict[str, list[Any]]]]:
    """Per walking profile: each 街镇's fill colour and flag, for the map's profile switch.

    A 街镇 is flagged at a profile when it fails a count rule or one of the profile's walking
    rules. Empty without profiles beyond the verdict's.
    """
    profiles = result.check.profiles
    if len(profiles) < 2:
        return [], [{} for _ in range(len(units))]
    passes = [c for c in units.columns if c.startswith("pass_")]
    walking = {c[len("pass_"):] for c in passes if f"{c[len('pass_'):]}_share" in units}
    views: list[dict[str, list[Any]]] = [{} for _ in range(len(units))]
    assessed = (units["network"] == "full").to_numpy()
    for position, profile in enumerate(profiles):
        suffix = "" if position == 0 else f"_{profile.id}"
        own = [f"pass_{rid}{suffix}" if rid in walking else f"pass_{rid}"
               for rid in [c[len("pass_"):] for c in passes]
               if rid in walking or not any(rid == f"{w}_{q.id}" for w in walking
                                            for q in profiles)]
        failed = (units[own].astype("boolean") == False).any(axis=1).to_numpy()  # noqa: E712
        column = f"{share_column}{suffix}" if f"{share_column}{suffix}" in units else (
            share_column)
        for i, (share, ok) in enumerate(zip(units[column], assessed, strict=True)):
            views[i][profile.id] = [colour(share) if ok else no_data,
                                    bool(failed[i]), cell(column, share)]
    return ([{"id": p.id, "label": profile_labels(result)[p.id]} for p in profiles], views)
