"""Walking profiles: three profiles against one, the same analysis in the same process.

``analyse`` on the central run's inputs (network, layers, demand, targets, districts), once
with the shipped three profiles (standard 1.11 m/s, elderly 0.76, frail 0.64) and once with
the verdict profile alone, alternating, median of ``repeats`` each. The result cache is off,
so every call does the whole distance work. The issue's target: three profiles cost at most
1.3× one. The three-profile runs include the display polygons of the map's profile switch
(each layer's union at the two slower profiles); their own seconds are timed too.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _timed_display_polygons() -> list[float]:
    """Time every call of the kernel's per-profile unions (the display polygons) into a list."""
    from coverage15.reach import kernel

    seconds: list[float] = []
    inner = kernel.profile_unions

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            seconds.append(time.perf_counter() - start)

    kernel.profile_unions = timed  # type: ignore[assignment]
    return seconds


def run_profiles(repeats: int = 3) -> dict[str, Any]:
    """Time ``analyse`` with three walking profiles and with one; print and return them."""
    import coverage15 as c15
    from coverage15 import settings
    from coverage15.inputs.readers import load_inputs
    from coverage15.network.graph import build_walk_network
    from coverage15.reach.targets import load_targets

    settings.reuse_results = False
    config = c15.load_config(ROOT / "data/shanghai-central.toml")
    assert config.targets is not None
    rules = load_targets(config.targets)
    inputs = load_inputs(config)
    net = build_walk_network(config.network, working_crs=config.analysis.working_crs)
    three = config
    verdict = three.analysis.walk_profiles[0]
    one = dataclasses.replace(config, analysis=dataclasses.replace(
        config.analysis, profiles=(verdict,), verdict_profile=verdict.id))
    times: dict[str, list[float]] = {"one": [], "three": []}
    steps: dict[str, dict[str, float]] = {}
    display = _timed_display_polygons()
    per_run: list[float] = []
    for _ in range(repeats):
        for name, cfg in (("one", one), ("three", three)):
            display.clear()
            timings: dict[str, float] = {}
            start = time.perf_counter()
            c15.analyse(net, inputs.layers, inputs.units, demand=inputs.demand,
                        districts=inputs.districts, rules=rules, config=cfg,
                        population=inputs.population, timings=timings)
            times[name].append(time.perf_counter() - start)
            steps[name] = timings
            if name == "three":
                per_run.append(sum(display))
    one_s, three_s = (statistics.median(times[k]) for k in ("one", "three"))
    display_s = statistics.median(per_run)
    ratio = three_s / one_s
    print(f"profiles (central network, {net.n_edges} edges, analyse() median of {repeats}):")
    print(f"  one profile ({verdict.id}): {one_s:.2f} s; three profiles: {three_s:.2f} s; "
          f"ratio {ratio:.2f}x (target <= 1.3x: {'met' if ratio <= 1.3 else 'NOT MET'})")
    print(f"  of which display polygons (each layer's union at the 2 other profiles): "
          f"{display_s:.2f} s")
    for name in ("one", "three"):
        parts = ", ".join(f"{k} {v:.2f} s" for k, v in steps[name].items())
        print(f"  {name}: {parts}")
    return {"one_s": one_s, "three_s": three_s, "ratio": ratio, "times": times,
            "display_s": display_s, "cpus": os.cpu_count()}


def run_profiles_synthetic(edges: int, facilities: int = 3000, repeats: int = 2,
                           ) -> dict[str, Any]:
    """The same comparison on a synthetic city (``benchmarks/scale.py``'s full-run inputs).

    The synthetic config has one walking speed; "three" gives it the shipped config's three
    profiles (the verdict profile at the same 4 km/h).
    """
    import tempfile

    from scale import synthetic_city

    import coverage15 as c15
    from coverage15 import settings
    from coverage15.inputs.readers import load_inputs
    from coverage15.network.graph import build_walk_network
    from coverage15.reach.targets import load_targets

    shipped = c15.load_config(ROOT / "data/shanghai-central.toml").analysis
    with tempfile.TemporaryDirectory(prefix="c15-profiles-") as tmp:
        one, facts = synthetic_city(edges, facilities, None, Path(tmp))
        settings.reuse_results = False
        three = dataclasses.replace(one, analysis=dataclasses.replace(
            one.analysis, profiles=shipped.profiles, verdict_profile=shipped.verdict_profile))
        assert one.targets is not None
        rules = load_targets(one.targets)
        inputs = load_inputs(one)
        net = build_walk_network(one.network, working_crs=one.analysis.working_crs)
        times: dict[str, list[float]] = {"one": [], "three": []}
        display = _timed_display_polygons()
        per_run: list[float] = []
        for _ in range(repeats):
            for name, cfg in (("one", one), ("three", three)):
                display.clear()
                start = time.perf_counter()
                c15.analyse(net, inputs.layers, inputs.units, demand=inputs.demand,
                            districts=inputs.districts, rules=rules, config=cfg)
                times[name].append(time.perf_counter() - start)
                if name == "three":
                    per_run.append(sum(display))
    one_s, three_s = (statistics.median(times[k]) for k in ("one", "three"))
    display_s = statistics.median(per_run)
    ratio = three_s / one_s
    print(f"profiles (synthetic city, {net.n_edges} edges, {facilities} facilities, analyse() "
          f"median of {repeats}):")
    print(f"  one profile: {one_s:.2f} s; three profiles: {three_s:.2f} s; ratio {ratio:.2f}x "
          f"(target <= 1.3x: {'met' if ratio <= 1.3 else 'NOT MET'})")
    print(f"  of which display polygons (each layer's union at the 2 other profiles): "
          f"{display_s:.2f} s")
    return {"one_s": one_s, "three_s": three_s, "ratio": ratio, "display_s": display_s,
            "edges": net.n_edges,
            "tiles": facts.get("tiles"), "cpus": os.cpu_count()}
