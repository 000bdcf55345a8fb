"""A config-driven run: load → check → analyse; :func:`coverage15.write_outputs` writes it.

Each step lives in the module of its domain; this module only composes them:
:func:`~coverage15.inputs.readers.load_inputs` reads every input the config names,
:func:`~coverage15.network.graph.build_walk_network` builds (or reads from the cache) the walk
network, and :func:`~coverage15.analysis.analyse` does the rest in memory.
"""

from __future__ import annotations

import logging
from typing import Any

from coverage15.analysis import Progress, analyse, timed
from coverage15.inputs.config import RunConfig
from coverage15.inputs.readers import load_inputs
from coverage15.network.graph import build_walk_network
from coverage15.outputs.bundle import write_outputs
from coverage15.reach.targets import load_targets
from coverage15.result import Result

__all__ = ["fetch", "run", "write_outputs"]

log = logging.getLogger(__name__)


def fetch(config: RunConfig) -> list[str]:
    """Download and cache everything a config needs from OpenStreetMap.

    Networks given by place, polygon or bbox and layers given by ``osm_tags`` are queried
    once (internet needed) and cached; later runs then work offline. Local files are only
    checked.

    Returns
    -------
    list of str
        One line per input saying what was done.
    """
    from coverage15.inputs.osm import feature_points

    done = []
    net = build_walk_network(config.network, working_crs=config.analysis.working_crs)
    done.append(f"network ({config.network.source}): {net.n_nodes} nodes, {net.n_edges} edges")
    for key, spec in config.layers.items():
        if spec.osm_tags:
            assert spec.place is not None
            points = feature_points(dict(spec.osm_tags), spec.place, online=True)
            done.append(f"layer {key}: {len(points)} OpenStreetMap features cached")
        else:
            done.append(f"layer {key}: local ({spec.source_name}), nothing to fetch")
    return done


def run(
    config: RunConfig,
    *,
    progress: Progress | None = None,
    partitions: int = 1,
    scheduler: str | Any | None = None,
) -> Result:
    """Run the coverage analysis a config describes.

    Parameters
    ----------
    config
        From :func:`coverage15.load_config`.
    progress
        Called as ``progress(step, done, total)`` during long steps (``total == 0`` when a
        step starts).
    partitions, scheduler
        Split the reach work into this many tiles on a Dask cluster: ``"local"`` for a new
        ``LocalCluster``, a ``tcp://host:port`` address, or a ``dask.distributed.Client``
        (see :mod:`coverage15.scale.partition`).

    Returns
    -------
    Result
    """
    timings: dict[str, float] = {}
    rules = load_targets(config.targets) if config.targets else []
    with timed(timings, "load layers", progress):
        inputs = load_inputs(config)
    with timed(timings, "network", progress):
        net = build_walk_network(config.network, working_crs=config.analysis.working_crs)
    return analyse(net, inputs.layers, inputs.units, demand=inputs.demand,
                   districts=inputs.districts, rules=rules, config=config,
                   population=inputs.population,
                   partitions=partitions, scheduler=scheduler, progress=progress,
                   timings=timings)
