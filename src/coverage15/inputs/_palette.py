"""The facility layers' colours on the maps (light: no map library is imported).

The run's input checks use it to warn when two layers would share a colour.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from coverage15.inputs.config import LayerSpec

__all__ = ["LAYER_COLOURS", "layer_colours"]

# ten colours apart from each other and from the map's own (flag red, grey outlines, black
# district borders, the share fills)
LAYER_COLOURS = ["#1f78b4", "#6a3d9a", "#b15928", "#e7298a", "#33a02c", "#e6ab02", "#01665e",
                 "#17becf", "#bcbd22", "#ff7f00"]


def layer_colours(layers: dict[str, LayerSpec]) -> dict[str, str]:
    """Each layer's colour on the maps: its ``colour`` if set, else the palette's by position.

    The ``i``-th layer of the config takes ``LAYER_COLOURS[i]`` (the palette starts again
    after ten), whatever the other layers' own colours, so a layer keeps its colour when
    another one's is set. Two layers may end up with one colour; the run's input checks
    warn then.
    """
    return {key: (spec.colour.lower() if spec.colour else LAYER_COLOURS[i % len(LAYER_COLOURS)])
            for i, (key, spec) in enumerate(layers.items())}
