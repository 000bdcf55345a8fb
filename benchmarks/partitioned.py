"""Partitioned runs on Dask against the single-process run, on one synthetic city.

Usage (from the repository root)::

    COVERAGE15_DATA=../shared/data/shanghai .venv/bin/python benchmarks/partitioned.py \\
        --edges 1m --facilities 3000 --partitions 4,8

Each mode runs in a fresh Python process on the same synthetic city (``scale.synthetic_city``:
the real central network tiled and stitched, real facility and demand points copied into the
tiles). Printed per mode: wall time of ``pipeline.run``, the peak memory of the main process,
and, for the partitioned modes, the peak memory of each Dask worker (``ru_maxrss`` read on the
workers before they close). The gap reports of all modes are compared for equality.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def one_mode(edges: int, n_fac: int, partitions: int) -> dict[str, Any]:
    """Run the synthetic city once; ``partitions == 1`` means in process, no Dask."""
    import scale

    from coverage15.pipeline import run

    with tempfile.TemporaryDirectory(prefix="c15-parts-") as tmp_name:
        config, facts = scale.synthetic_city(edges, n_fac, None, Path(tmp_name))
        out: dict[str, Any] = {"edges": facts["edges"], "facilities": n_fac,
                               "partitions": partitions}
        if partitions == 1:
            start = time.perf_counter()
            result = run(config)
            out["run_s"] = time.perf_counter() - start
            out["workers_peak_mb"] = []
        else:
            from dask.distributed import Client, LocalCluster

            with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                              dashboard_address=":0") as cluster, Client(cluster) as client:
                start = time.perf_counter()
                result = run(config, partitions=partitions, scheduler=client)
                out["run_s"] = time.perf_counter() - start
                peaks = client.run(_peak_mb)
                out["workers_peak_mb"] = [round(v, 1) for v in peaks.values()]
        out["steps"] = {k: round(v, 2) for k, v in result.timings.items()}
        out["main_peak_mb"] = round(_peak_mb(), 1)
        csv = result.gap_report.to_csv(index=False)
        out["gap_report_sha256"] = hashlib.sha256(csv.encode()).hexdigest()[:16]
    return out


def main() -> None:
    """Run every mode in its own process and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edges", default="1m")
    parser.add_argument("--facilities", type=int, default=3000)
    parser.add_argument("--partitions", default="4,8")
    parser.add_argument("--json", type=Path)
    parser.add_argument("_mode", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    from run import _count, machine

    edges = _count(args.edges)
    if args._mode:  # child process
        print("RESULT " + json.dumps(one_mode(edges, args.facilities, int(args._mode[0]))))
        return
    rows = []
    for parts in [1, *[int(p) for p in args.partitions.split(",")]]:
        done = subprocess.run(
            [sys.executable, __file__, "--edges", args.edges, "--facilities",
             str(args.facilities), str(parts)],
            capture_output=True, text=True, check=False)
        line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            sys.stderr.write(done.stdout[-2000:] + done.stderr[-3000:])
            raise SystemExit(f"mode with {parts} partition(s) failed")
        rows.append(json.loads(line[len("RESULT "):]))
    print(f"machine: {machine()}")
    base = rows[0]
    print(f"synthetic city: {base['edges']:,} edges, {args.facilities:,} facilities")
    print(f"{'mode':<26}{'run s':>8}{'vs single':>11}{'main MB':>10}  workers' peak MB")
    for row in rows:
        mode = ("single process" if row["partitions"] == 1
                else f"{row['partitions']} partitions, 2 workers")
        print(f"{mode:<26}{row['run_s']:>8.1f}{base['run_s'] / row['run_s']:>10.2f}x"
              f"{row['main_peak_mb']:>10.0f}  {row['workers_peak_mb']}")
    same = all(r["gap_report_sha256"] == base["gap_report_sha256"] for r in rows)
    print(f"gap reports identical in every mode: {same}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
