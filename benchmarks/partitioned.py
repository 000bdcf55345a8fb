"""Partitioned runs on Dask against the single-process run, on one synthetic city.

Usage (from the repository root)::

    COVERAGE15_DATA=../shared/data/shanghai .venv/bin/python benchmarks/partitioned.py \\
        --edges 1m --facilities 3000 --workers 2,4 [--partitions 8,16]

Each mode runs in a fresh Python process on the same synthetic city (``scale.synthetic_city``:
the real central network tiled and stitched, real facility and demand points copied into the
tiles). ``--workers`` lists the LocalCluster sizes (one single-threaded process each);
``--partitions`` the tile counts to pair with them (default: 4 per worker).

Printed per mode: wall time of ``pipeline.run`` and of each of its steps, the time the main
process spent working (the run less the time it waited on the workers) and its share of the
run, the peak memory of the main process and of each Dask worker (``ru_maxrss`` read on the
workers before they close, and their peak before the run: the stated overhead of a worker
process), the largest tile's share of the network, and the SHA-256 of each mode's gap report
(all must be equal). The network's tile store is written once per network (like the network
cache) before the timed run; its time is printed apart. From the single run and the
main-process time of the largest partitioned mode: the serial fraction and the speed-up that
Amdahl's law allows at 16 workers.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
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
    """This process's peak resident memory (VmHWM: ``ru_maxrss`` is no use on workers, as
    Linux carries it over from the parent through fork and exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _folder_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6


def one_mode(edges: int, n_fac: int, workers: int, partitions: int) -> dict[str, Any]:
    """Run the synthetic city once; ``workers == 0`` means in process, no Dask."""
    import scale

    from coverage15.pipeline import run
    from coverage15.scale import partition

    with tempfile.TemporaryDirectory(prefix="c15-parts-") as tmp_name:
        config, facts = scale.synthetic_city(edges, n_fac, None, Path(tmp_name))
        out: dict[str, Any] = {"edges": facts["edges"], "facilities": n_fac,
                               "workers": workers, "partitions": partitions}
        waited = [0.0, 0.0]  # wall and CPU seconds of the main process spent in the gather
        cpu0 = time.process_time()
        if workers == 0:
            start = time.perf_counter()
            result = run(config)
            out["run_s"] = time.perf_counter() - start
            out["cpu_s"] = round(time.process_time() - cpu0, 2)
            out["workers_peak_mb"] = []
        else:
            from coverage15.network.graph import build_walk_network
            from coverage15.scale import tiles

            start = time.perf_counter()
            net = build_walk_network(config.network, working_crs=config.analysis.working_crs)
            store, _ = tiles.store_for(net)
            out["store_s"] = round(time.perf_counter() - start, 2)
            out["store_mb"] = round(_folder_mb(Path(store.path)), 1)
            real_make, real_gather = partition._make_tasks, partition._gather_with_retries
            tile_boxes: list[tuple[float, float, float, float]] = []

            def make(*args: Any, **kwargs: Any) -> Any:
                tasks, grid = real_make(*args, **kwargs)
                tile_boxes.extend(t.bounds for t in tasks)  # measured after the run
                return tasks, grid

            def gather(*args: Any, **kwargs: Any) -> Any:
                begin, begin_cpu = time.perf_counter(), time.process_time()
                try:
                    return real_gather(*args, **kwargs)
                finally:
                    waited[0] += time.perf_counter() - begin
                    waited[1] += time.process_time() - begin_cpu

            partition._make_tasks = make
            partition._gather_with_retries = gather
            out["network_edges"] = net.n_edges
            del net  # the run loads its own, as a run without this benchmark would
            from coverage15.scale.cluster import open_client

            start = time.perf_counter()
            with open_client("local", workers) as client:  # as `--scheduler local` starts it
                out["cluster_start_s"] = round(time.perf_counter() - start, 2)
                out["workers_idle_mb"] = [round(v, 1) for v in client.run(_peak_mb).values()]
                start, cpu0 = time.perf_counter(), time.process_time()
                t0 = time.perf_counter()

                def progress(step: str, done: int, total: int) -> None:
                    if os.environ.get("C15_BENCH_TRACE"):
                        print(f"{time.perf_counter() - t0:8.2f} {step} {done}/{total}",
                              file=sys.stderr)

                result = run(config, partitions=partitions, scheduler=client,
                             progress=progress)
                out["run_s"] = time.perf_counter() - start
                out["cpu_s"] = round(time.process_time() - cpu0, 2)
                peaks = client.run(_peak_mb)
                out["workers_peak_mb"] = [round(v, 1) for v in peaks.values()]
                client.cluster.close()
            out["main_peak_mb"] = round(_peak_mb(), 1)  # before the network is read again
            import shapely

            net = build_walk_network(config.network, working_crs=config.analysis.working_crs)
            sizes = [len(net.tree.query(shapely.box(*b), predicate="intersects"))
                     for b in tile_boxes]
            out["largest_tile_share"] = round(max(sizes) / out["network_edges"], 4)
            out["tiles"] = len(sizes)
            del net
        out["waited_s"] = round(waited[0], 2)
        out["main_s"] = round(out["run_s"] - waited[0], 2)
        # CPU seconds of the main process outside the gather (all its threads): on a busy
        # machine a steadier measure of its serial work than wall time
        out["main_cpu_s"] = round(out["cpu_s"] - waited[1], 2)
        out["steps"] = {k: round(v, 2) for k, v in result.timings.items()}
        out.setdefault("main_peak_mb", round(_peak_mb(), 1))
        csv = result.gap_report.to_csv(index=False)
        out["gap_report_sha256"] = hashlib.sha256(csv.encode()).hexdigest()
    return out


def _amdahl(serial: float, n: int) -> float:
    return 1.0 / (serial + (1.0 - serial) / n)


def main() -> None:
    """Run every mode in its own process and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edges", default="1m")
    parser.add_argument("--facilities", type=int, default=3000)
    parser.add_argument("--workers", default="2", help="LocalCluster sizes, e.g. 2,4")
    parser.add_argument("--partitions", default="",
                        help="tiles per mode, paired with --workers (default 4 per worker)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("_mode", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    from run import _count

    edges = _count(args.edges)
    if args._mode:  # child process
        workers, parts = (int(x) for x in args._mode[:2])
        print("RESULT " + json.dumps(one_mode(edges, args.facilities, workers, parts)))
        return
    workers = [int(w) for w in args.workers.split(",") if w.strip()]
    parts = ([int(p) for p in args.partitions.split(",") if p.strip()]
             or [4 * w for w in workers])
    if len(parts) != len(workers):
        raise SystemExit("--partitions needs one count per --workers entry")
    rows = []
    for w, p in [(0, 1), *zip(workers, parts, strict=True)]:
        done = subprocess.run(
            [sys.executable, __file__, "--edges", args.edges, "--facilities",
             str(args.facilities), str(w), str(p)],
            capture_output=True, text=True, check=False)
        line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            sys.stderr.write(done.stdout[-2000:] + done.stderr[-3000:])
            raise SystemExit(f"mode with {w} worker(s), {p} partition(s) failed")
        rows.append(json.loads(line[len("RESULT "):]))
    _print(rows, args.facilities)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


def _print(rows: list[dict[str, Any]], facilities: int) -> None:
    from run import machine

    load = " ".join(Path("/proc/loadavg").read_text(encoding="ascii").split()[:3])
    print(f"machine: {machine()}; load average after the runs: {load}")
    base = rows[0]
    print(f"synthetic city: {base['edges']:,} edges, {facilities:,} facilities")
    steps = list(base["steps"])
    head = "".join(f"{s[:12]:>13}" for s in steps)
    print(f"{'mode':<24}{'run s':>7}{'speed-up':>9}{'main s':>8}{'main %':>7}{head}")
    for row in rows:
        mode = ("single process" if row["workers"] == 0
                else f"{row['workers']} workers, {row['partitions']} tiles")
        cells = "".join(f"{row['steps'].get(s, float('nan')):>13.2f}" for s in steps)
        print(f"{mode:<24}{row['run_s']:>7.1f}{base['run_s'] / row['run_s']:>8.2f}x"
              f"{row['main_s']:>8.1f}{100 * row['main_s'] / row['run_s']:>6.0f}%{cells}")
    print("memory (MB): main peak; workers' peak [idle peak before the run = overhead]; "
          "largest tile's share of the network's store")
    for row in rows[1:]:
        tile_mb = row["largest_tile_share"] * row["store_mb"]
        print(f"  {row['workers']} workers: main {row['main_peak_mb']:.0f}; workers "
              f"{row['workers_peak_mb']} [idle {row['workers_idle_mb']}]; largest of "
              f"{row['tiles']} tiles {100 * row['largest_tile_share']:.1f}% of "
              f"{row['store_mb']:.0f} MB = {tile_mb:.0f} MB; store written once in "
              f"{row['store_s']:.1f} s; cluster started in {row['cluster_start_s']:.1f} s")
    print(f"  single process: main {base['main_peak_mb']:.0f}")
    if len(rows) > 1:
        big = rows[-1]
        serial = min(1.0, big["main_s"] / base["run_s"])
        print(f"serial fraction (main-process time of the {big['workers']}-worker run / single "
              f"run): {serial:.3f}; Amdahl bound: {_amdahl(serial, 8):.1f}x at 8 workers, "
              f"{_amdahl(serial, 16):.1f}x at 16, {1 / max(serial, 1e-9):.0f}x at most")
        serial = min(1.0, big["main_cpu_s"] / base["cpu_s"])
        print(f"  in CPU seconds (main process outside the gather {big['main_cpu_s']:.1f} / "
              f"single run {base['cpu_s']:.1f}, all threads): {serial:.3f}; Amdahl bound "
              f"{_amdahl(serial, 16):.1f}x at 16 workers")
    for row in rows:
        print(f"  gap report sha256 ({row['workers']} workers): {row['gap_report_sha256']}")
    same = all(r["gap_report_sha256"] == base["gap_report_sha256"] for r in rows)
    print(f"gap reports identical in every mode: {same}")


if __name__ == "__main__":
    main()
