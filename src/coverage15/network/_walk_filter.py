"""Which OSM ways a pedestrian uses: one tag filter for files and online queries.

The walk filter is osmnx's ``network_type="walk"`` filter (public walkable ways: footways,
paths, pedestrian streets, steps, living streets, service roads, residential streets and up;
no motorways, cycleways, areas, ways tagged ``foot=no`` or private) with ``access=no`` also
excluded. It is written once, as Overpass conditions: :func:`overpass_filter` gives the
string osmnx sends to Overpass (``custom_filter``), :func:`walkable` evaluates the same
conditions on a way's tags in Python (for OSM XML and PBF files), so a file and the internet
give the same ways for the same area.

The streets filter (``ways = "streets"``) keeps streets from residential up, as the bundled
OSM XML extract has them; it is what a PBF file gives when the config asks for streets only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Final

__all__ = [
    "STREET_HIGHWAYS",
    "WALK_CONDITIONS",
    "WAYS",
    "overpass_filter",
    "tag_filter",
    "walkable",
]

WAYS: Final = ("streets", "walk")
"""The ``[network] ways`` values: streets from residential up (default), or every walkable way."""

# (key, regex, must match): Overpass's ``["key"~"regex"]`` (True) or ``["key"!~"regex"]``
# (False). Overpass matches a regex anywhere in the value (``motor`` excludes motorway and
# motorway_link), and a missing key never matches, as re.search on "" does not here.
WALK_CONDITIONS: Final[tuple[tuple[str, str, bool], ...]] = (
    ("area", "yes", False),
    ("access", "private", False),
    ("access", "^no$", False),
    ("highway", "abandoned|bus_guideway|construction|cycleway|motor|no|planned|platform|"
                "proposed|raceway|razed|rest_area|services", False),
    ("foot", "no", False),
    ("service", "private", False),
    ("sidewalk", "separate", False),
    ("sidewalk:both", "separate", False),
    ("sidewalk:left", "separate", False),
    ("sidewalk:right", "separate", False),
)

STREET_HIGHWAYS: Final = frozenset({
    "trunk", "trunk_link", "primary", "primary_link", "secondary", "secondary_link",
    "tertiary", "tertiary_link", "unclassified", "residential", "living_street",
})
"""Streets from residential up (no motorways: nobody walks on them)."""

_COMPILED = tuple((key, re.compile(rx), must) for key, rx, must in WALK_CONDITIONS)


def overpass_filter() -> str:
    """The walk filter as an Overpass way filter (osmnx ``custom_filter``)."""
    parts = ['["highway"]']
    parts += [f'["{key}"{"~" if must else "!~"}"{rx}"]' for key, rx, must in WALK_CONDITIONS]
    return "".join(parts)


def walkable(tags: Mapping[str, str]) -> bool:
    """Whether a way with these tags is in the walk network (the Overpass filter's answer)."""
    if tags.get("highway") is None:
        return False
    for key, rx, must in _COMPILED:
        value = tags.get(key)
        hit = value is not None and rx.search(value) is not None
        if hit != must:
            return False
    return True


def _street(tags: Mapping[str, str]) -> bool:
    return tags.get("highway") in STREET_HIGHWAYS and tags.get("area") != "yes"


def _any(tags: Mapping[str, str]) -> bool:
    return tags.get("highway") is not None


def tag_filter(ways: str) -> Callable[[Mapping[str, str]], bool]:
    """The predicate on a way's tags for a ``[network] ways`` value.

    ``"every"`` keeps every way with a ``highway`` tag (an OSM XML file in streets mode:
    every street in it, as osmnx reads it).
    """
    if ways == "every":
        return _any
    if ways == "walk":
        return walkable
    if ways == "streets":
        return _street
    msg = f"ways must be one of {WAYS}, not {ways!r}"
    raise ValueError(msg)
