"""coverage15 benchmarks: one command, ratios against the baselines measured in the same run.

Usage (from the repository root)::

    COVERAGE15_DATA=../shared/data/shanghai .venv/bin/python benchmarks/run.py
    ... benchmarks/run.py compare                   # central network vs osmnx recipe, pandana
    ... benchmarks/run.py scale --edges 10k,100k,1m --facilities 100,1000,3000,5000
    ... benchmarks/run.py fullrun --edges 1m --facilities 3000     # pipeline.run at scale
    ... benchmarks/run.py profiles                  # three walking profiles against one
    ... benchmarks/run.py all --json results.json   # everything (the default), numbers saved

Every scale case and the full run execute in a fresh Python process so that the peak memory
reported (``ru_maxrss``) is that case's alone. See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _count(text: str) -> int:
    text = text.strip().lower().replace("_", "")
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text[:-1] if text[-1:] in "km" else text) * scale)


def _counts(text: str) -> list[int]:
    return [_count(t) for t in text.split(",") if t.strip()]


def _child(kind: str, edges: int, facilities: int, demand: int | None) -> dict[str, Any]:
    argv = [sys.executable, str(HERE / "run.py"), kind, str(edges), str(facilities)]
    if demand is not None:
        argv.append(str(demand))
    done = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=HERE.parent)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[len("RESULT "):])
            return result
    sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
    msg = f"{kind} {edges} {facilities} failed (exit code {done.returncode})"
    raise RuntimeError(msg)


def machine() -> str:
    """One line about this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = next(int(x.split()[1]) // 1024 // 1024 for x in
                   Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemTotal"))
    except (OSError, StopIteration, ValueError):
        mem = 0
    return (f"{os.cpu_count()} CPUs ({cpu}), {mem} GB, Python {platform.python_version()}, "
            f"load average {os.getloadavg()[0]:.2f} at start")


def run_scale(edges: list[int], facilities: list[int], demand: int | None) -> list[dict[str, Any]]:
    """Every (edges, facilities) case in its own process; print the table as it fills."""
    print("\nscale cases (kernel steps; each case in a fresh process):")
    head = (f"{'edges':>9} {'tiles':>6} {'facil.':>6} {'demand':>7} {'reach':>6} "
            f"{'polygons':>8} {'union':>6} {'snaps':>6} {'pairs':>6} {'total s':>8} "
            f"{'peak MB':>8}")
    print(head)
    rows = []
    for e in edges:
        for f in facilities:
            r = _child("_case", e, f, demand)
            s = r["steps"]
            print(f"{r['edges']:>9,} {r['tiles']:>6} {f:>6,} {r['demand']:>7,} "
                  f"{s['network_reach']:>6.2f} {s['service_area_polygons']:>8.2f} "
                  f"{s['union_areas']:>6.2f} "
                  f"{s['snap facilities'] + s['snap demand']:>6.2f} "
                  f"{s['point_distances']:>6.2f} {r['total_s']:>8.2f} {r['peak_mb']:>8.0f}",
                  flush=True)
            rows.append(r)
    return rows


def run_fullrun(edges: int, facilities: int, demand: int | None) -> dict[str, Any]:
    """``pipeline.run`` on a synthetic city in its own process; print the outcome."""
    print(f"\nfull run (pipeline.run: layers, network from cache, service areas, coverage, "
          f"targets, reports) on ~{edges:,} edges with {facilities:,} facilities:", flush=True)
    r = _child("_fullrun", edges, facilities, demand)
    steps = ", ".join(f"{k} {v:.1f} s" for k, v in r["run_steps"].items())
    print(f"  network {r['edges']:,} edges ({r['tiles']} tiles), {r['facilities']:,} "
          f"facilities, {r['demand']:,} demand points, {r['units']:,} units")
    print(f"  run: {r['run_s']:.1f} s ({steps}); peak memory {r['peak_run_mb']:.0f} MB")
    print(f"  write_outputs (GeoPackage, CSV, Excel; no map): {r['write_s']:.1f} s; "
          f"peak memory with it {r['peak_mb']:.0f} MB")
    ok = r["run_s"] < 60 and r["peak_run_mb"] < 4096
    print(f"  target (< 60 s and < 4 GB): {'met' if ok else 'NOT met'}")
    steps = ", ".join(f"{k} {v:.1f} s" for k, v in r["rerun_steps"].items())
    print(f"  the same run again: {r['rerun_s']:.1f} s ({steps}); reused from the cache: "
          f"{', '.join(r['rerun_reused']) or 'nothing'} ({r['cache_mb']:.0f} MB on disk)")
    return r


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the chosen benchmarks."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("_case", "_fullrun"):
        sys.path.insert(0, str(HERE))
        from scale import main_case

        main_case(argv)
        return 0
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", nargs="?", default="all",
                        choices=["all", "compare", "scale", "fullrun", "profiles"])
    parser.add_argument("--edges", default=None,
                        help="network sizes: for `scale` a list (default 10k,100k,1m), for "
                        "`fullrun` one size (default 1m); for `profiles` also a synthetic city "
                        "of that size")
    parser.add_argument("--facilities", default=None,
                        help="facility counts: for `scale` a list (default 100,1000,3000,5000),"
                        " for `fullrun` one count (default 3000)")
    parser.add_argument("--demand", type=_count, default=None,
                        help="demand points (default: one per 5 edges)")
    parser.add_argument("--json", type=Path, help="also save every number to this file")
    args = parser.parse_args(argv)
    if not os.environ.get("COVERAGE15_DATA"):
        parser.error("set COVERAGE15_DATA to the shared data folder (../shared/data/shanghai)")
    sys.path.insert(0, str(HERE))
    print("machine:", machine())
    results: dict[str, Any] = {"machine": machine()}
    if args.what in ("all", "compare"):
        from compare import run_compare

        results["compare"] = run_compare()
    if args.what in ("all", "scale"):
        results["scale"] = run_scale(_counts(args.edges or "10k,100k,1m"),
                                     _counts(args.facilities or "100,1000,3000,5000"),
                                     args.demand)
    if args.what in ("all", "fullrun"):
        edges = args.edges if args.what == "fullrun" and args.edges else "1m"
        facilities = args.facilities if args.what == "fullrun" and args.facilities else "3000"
        results["fullrun"] = run_fullrun(_count(edges), _count(facilities), args.demand)
    if args.what in ("all", "profiles"):
        from profiles import run_profiles, run_profiles_synthetic

        results["profiles"] = run_profiles()
        if args.what == "profiles" and args.edges:  # e.g. --edges 1m: also a synthetic city
            results["profiles_synthetic"] = run_profiles_synthetic(
                _count(args.edges), _count(args.facilities or "3000"))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
