"""A config-driven run: load → check → analyse; :func:`coverage15.write_outputs` writes it.

Each step lives in the module of its domain; this module only composes them:
:func:`~coverage15.inputs.readers.load_inputs` reads every input the config names,
:func:`~coverage15.network.graph.build_walk_network` builds (or reads from the cache) the walk
network, and :func:`~coverage15.analysis.analyse` does the rest in memory.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from coverage15._errors import CheckError, Coverage15Error
from coverage15.analysis import Progress, analyse, timed
from coverage15.inputs.checks import Problem
from coverage15.inputs.config import RunConfig
from coverage15.inputs.readers import load_inputs
from coverage15.network.graph import build_walk_network
from coverage15.outputs.bundle import write_outputs
from coverage15.reach.targets import load_targets
from coverage15.result import Result

__all__ = ["check", "fetch", "run", "write_outputs"]

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
    units_area = None
    if config.network.area == "units":
        from coverage15.inputs.layers import load_units

        units_area = load_units(config.units, what="units").to_crs("EPSG:4326").union_all()
    net = build_walk_network(config.network, working_crs=config.analysis.working_crs,
                             area=units_area)
    done.append(f"network ({config.network.source}): {net.n_nodes} nodes, {net.n_edges} edges")
    for key, spec in config.layers.items():
        if spec.osm_tags:
            assert spec.place is not None
            points = feature_points(dict(spec.osm_tags), spec.place, online=True)
            done.append(f"layer {key}: {len(points)} OpenStreetMap features cached")
        else:
            done.append(f"layer {key}: local ({spec.source_name}), nothing to fetch")
    return done


def check(config: RunConfig, *, accept: Sequence[str] = ()) -> tuple[list[str], bool, bool]:
    """Check everything a run would, short of the network: ``coverage15 layers check``.

    The units, each layer and the demand (rows set aside, CRS fit, location check, geocoding
    fallbacks, points in no 街镇), the targets against the layers, and the working CRS at the
    units' centre, with the messages a run gives.

    Returns
    -------
    (lines, stops, warnings)
        One line per input (``key<TAB>state<TAB>rows<TAB>notes``; state ``ok``, ``WARNING``,
        ``STOP`` (a run would stop) or ``UNUSABLE``), each flagged or set-aside row of the
        location check on a line of its own below its layer; whether a run would stop; whether
        anything was warned about.
    """
    from coverage15.analysis import name_districts
    from coverage15.inputs.checks import (
        check_locations,
        crs_fit_problems,
        enforce,
        outside_problems,
        set_aside_problems,
        shared_point_problems,
    )
    from coverage15.inputs.layers import load_layer, load_units
    from coverage15.network.checks import crs_scale_problems
    from coverage15.reach.coverage import assign_units
    from coverage15.reach.rule_checks import rule_problems

    accepted = (*config.accept, *accept)
    lines: list[str] = []
    stops = warned = False

    def judged(problems: list[Problem]) -> tuple[list[str], str]:
        nonlocal stops, warned
        notes, state = [], "ok"
        for problem in problems:
            if problem.severity == "error":
                try:
                    (kept,) = enforce([problem], accepted)
                except CheckError:
                    notes.append(f"STOP [{problem.id or 'must be fixed'}] {problem.message}")
                    state = "STOP"
                    continue
                problem = kept  # noqa: PLW2901
            if problem.severity == "warning":
                notes.append(f"WARNING {problem.message}")
                state = "WARNING" if state == "ok" else state
            else:
                notes.append(problem.message)
        stops |= state == "STOP"
        warned |= state == "WARNING"
        return notes, state

    units = None
    try:
        units = load_units(config.units, what="units")
        if config.districts is not None:
            units, _ = name_districts(units, load_units(config.districts, what="districts"))
    except Coverage15Error as exc:
        lines.append(f"units\tUNUSABLE\t{exc}")
        stops = True
    specs = {**config.layers, **({"demand": config.demand} if config.demand else {})}
    for key, spec in specs.items():
        try:
            layer = load_layer(spec)
        except Coverage15Error as exc:
            lines.append(f"{key}\tUNUSABLE\t{exc}")
            stops = True
            continue
        # one count per kind of problem (each row's own detail is in rejected.csv of a run)
        notes = [f"{n} {r}" for r, n in layer.set_aside_counts().items()]
        problems: list[Problem] = [*set_aside_problems(layer)]
        located = None
        if units is not None and len(layer.points):
            _, _, located = check_locations({key: layer}, units,
                                            working_crs=config.analysis.working_crs,
                                            aliases=config.units.aliases)
            if len(located):
                action = "set aside" if spec.location_check == "set_aside" else "flagged"
                notes.append(f"{len(located)} land more than {spec.location_tolerance_m:.0f} m "
                             f"outside the 街镇 or district they name ({action})")
            # a few points beyond every 街镇 are a note; most of them, a wrong crs
            for problem in outside_problems(key, assign_units(layer.points, units).to_numpy()):
                if problem.count * 2 > len(layer.points):
                    problems.append(problem)
                else:
                    notes.append(f"{problem.count} in no 街镇")
            problems += crs_fit_problems(layer, units, aliases=config.units.aliases)
        problems += shared_point_problems(layer)
        more, state = judged(problems)
        notes += more
        if len(layer.points) == 0:
            state, stops = "UNUSABLE", True
        lines.append(f"{key}\t{state}\t{len(layer.points)} usable of {layer.n_source}\t"
                     f"{'; '.join(notes) or 'no problems'}")
        if located is not None:
            lines += [f"  {key}\trow {r.source_row}\t{r.name}\tnames {r.named}\tlands in "
                      f"{r.landed}\t{r.distance_m:.0f} m outside\t{r.action}"
                      for r in located.itertuples()]
    if config.targets is not None:
        try:
            rules = load_targets(config.targets)
        except Coverage15Error as exc:
            lines.append(f"targets\tUNUSABLE\t{exc}")
            stops = True
        else:
            notes, state = judged(rule_problems(rules, config.layers))
            lines.append(f"targets\t{state}\t{len(rules)} rules\t"
                         f"{'; '.join(notes) or 'no problems'}")
    if units is not None:
        centre = units.geometry.union_all().centroid
        notes, state = judged(crs_scale_problems(config.analysis.working_crs,
                                                 centre.x, centre.y))
        a = config.analysis
        lines.append(f"analysis\t{state}\t{a.minutes:g} min at {a.walk_speed_kmh:g} km/h = "
                     f"{a.limit_m:.0f} m, working_crs {a.working_crs}\t"
                     f"{'; '.join(notes) or 'no problems'}")
    return lines, stops, warned


def run(
    config: RunConfig,
    *,
    progress: Progress | None = None,
    partitions: int = 1,
    scheduler: str | Any | None = None,
    accept: Sequence[str] = (),
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
    accept
        Ids of problems to go ahead with, besides the config's ``[accept] warnings``.

    Returns
    -------
    Result

    Raises
    ------
    CheckError
        A problem that would change a verdict, not accepted (``docs/failure-modes.md``).
    """
    timings: dict[str, float] = {}
    rules = load_targets(config.targets) if config.targets else []
    with timed(timings, "load layers", progress):
        inputs = load_inputs(config)
    with timed(timings, "network", progress):
        units_area = (inputs.units.to_crs("EPSG:4326").union_all()
                      if config.network.area == "units" else None)
        net = build_walk_network(config.network, working_crs=config.analysis.working_crs,
                                 area=units_area)
    return analyse(net, inputs.layers, inputs.units, demand=inputs.demand,
                   districts=inputs.districts, rules=rules, config=config,
                   population=inputs.population,
                   partitions=partitions, scheduler=scheduler, progress=progress,
                   timings=timings, accept=accept)
