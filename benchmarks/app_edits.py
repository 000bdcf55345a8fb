"""Server time per edit of the live what-if app (``coverage15 serve``), central network.

1. 50 scripted edits in one session (add, move, close in turn; each answer carries the updated
   街镇 table), timed around the request: p50/p95 per edit and per kind.
2. ``--sessions`` concurrent sessions (default 20), each making ``--per-session`` edits
   against a real uvicorn server on 127.0.0.1: errors, cross-talk (each session sees only its
   own sites) and p50/p95.

With ``--edges 1m --facilities 3000`` the same edits run on the synthetic city of
``scale.py``'s full run (the central network tiled to about a million edges, 3 km square
units) instead of the central network; ``--sessions 0`` leaves out part 2.

Run: ``COVERAGE15_DATA=... python benchmarks/app_edits.py [--edits 50] [--sessions 20]``.
Results go to benchmarks/README.md by hand.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import shapely
import uvicorn
from starlette.testclient import TestClient

from coverage15.app.engine import Base
from coverage15.app.server import create_app
from coverage15.inputs.config import load_config
from coverage15.pipeline import run

ROOT = Path(__file__).resolve().parents[1]


def percentiles(values: list[float]) -> str:
    a = np.asarray(values) * 1000
    return (f"n={len(a)} p50={np.percentile(a, 50):.0f} ms p95={np.percentile(a, 95):.0f} ms "
            f"max={a.max():.0f} ms")


def sites(base: Base, n: int, seed: int) -> list[tuple[float, float]]:
    """Random points in 街镇 wholly inside the network."""
    rng = np.random.default_rng(seed)
    gap = base.result.gap_report
    full = set(gap.loc[gap["network"] == "full", "jiezhen"])
    shapes = base.units.loc[base.units["unit"].isin(full)].geometry.to_numpy()
    out: list[tuple[float, float]] = []
    while len(out) < n:
        shape = shapes[rng.integers(len(shapes))]
        x0, y0, x1, y1 = shape.bounds
        x, y = rng.uniform(x0, x1), rng.uniform(y0, y1)
        if shape.covers(shapely.Point(x, y)):
            out.append((float(x), float(y)))
    return out


def script(post, base: Base, n: int, seed: int) -> tuple[dict[str, list[float]], list[str]]:
    """add → move (that site) → close (a base facility) …, n edits; times per kind."""
    rng = np.random.default_rng(seed)
    points = sites(base, n, seed)
    ids = sorted(base.ids["centre"])
    times: dict[str, list[float]] = {"add": [], "move": [], "close": [], "cpu": []}
    mine: list[str] = []
    last = None
    for i in range(n):
        kind = ("add", "move", "close")[i % 3]
        lon, lat = points[i]
        if kind == "add":
            payload = {"op": "add", "layer": "centre", "lon": lon, "lat": lat}
        elif kind == "move":
            payload = {"op": "move", "layer": "centre", "id": last, "lon": lon, "lat": lat}
        else:
            payload = {"op": "close", "layer": "centre",
                       "id": ids[int(rng.integers(len(ids)))]}
        start, cpu = time.perf_counter(), time.process_time()
        answer = post("/api/edit", payload)
        times[kind].append(time.perf_counter() - start)
        times["cpu"].append(time.process_time() - cpu)
        if answer.status_code != 200:
            if "no open facility" in answer.text:  # closed already: fine, not timed
                times[kind].pop()
                times["cpu"].pop()
                continue
            raise RuntimeError(f"{payload}: {answer.status_code} {answer.text}")
        body = answer.json()
        assert len(body["gap_report"]) == len(base.units)
        if kind == "add":
            last = body["site"]["id"]
            mine.append(last)
    return times, mine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default=str(ROOT / "data/shanghai-central.toml"))
    parser.add_argument("--edits", type=int, default=50)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--per-session", type=int, default=6)
    parser.add_argument("--edges", default=None,
                        help="e.g. 1m: a synthetic city of about that many edges (scale.py)")
    parser.add_argument("--facilities", type=int, default=3000,
                        help="facilities of the synthetic city (with --edges)")
    args = parser.parse_args()
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        config = load_config(args.config)
        if args.edges:
            from run import _count
            from scale import synthetic_city

            (Path(tmp) / "city").mkdir()
            config, facts = synthetic_city(_count(args.edges), args.facilities, None,
                                           Path(tmp) / "city")
            print(f"synthetic city: {facts}", flush=True)
        result = run(config)
        print(f"run: {time.perf_counter() - start:.1f} s ({result.network.n_edges} edges, "
              f"{len(result.units)} units)", flush=True)
        base = Base(result)
        print(f"run + base state: {time.perf_counter() - start:.1f} s", flush=True)
        app = create_app(base, Path(tmp) / "scenarios")
        with TestClient(app) as client:
            times, _ = script(lambda p, j: client.post(p, json=j), base, args.edits, 1)
        cpu = times.pop("cpu")
        every = [t for v in times.values() for t in v]
        print(f"one session, {args.edits} edits: {percentiles(every)}", flush=True)
        for kind, v in times.items():
            print(f"  {kind}: {percentiles(v)}", flush=True)
        print(f"  CPU time of this process per edit (all threads): {percentiles(cpu)}",
              flush=True)
        if args.sessions < 1:
            return

        port = free_port()
        served = uvicorn.Config(create_app(base, Path(tmp) / "s2", port=port),
                                host="127.0.0.1", port=port, log_level="warning")
        server = uvicorn.Server(served)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        errors: list[str] = []
        all_times: list[float] = []
        lock = threading.Lock()

        def session(i: int) -> None:
            try:
                with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as c:
                    c.get("/api/state")
                    t, mine = script(lambda p, j: c.post(p, json=j), base, args.per_session,
                                     100 + i)
                    added = [s["id"] for s in c.get("/api/state").json()["edits"]
                             .get("centre", {}).get("added", [])]
                    if added != mine:
                        errors.append(f"session {i}: cross-talk {added} != {mine}")
                    t.pop("cpu")
                    with lock:
                        all_times.extend(x for v in t.values() for x in v)
            except Exception as exc:
                errors.append(f"session {i}: {exc!r}")

        begin = time.perf_counter()
        workers = [threading.Thread(target=session, args=(i,)) for i in range(args.sessions)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        wall = time.perf_counter() - begin
        server.should_exit = True
        thread.join(timeout=10)
        print(f"{args.sessions} concurrent sessions × {args.per_session} edits over HTTP "
              f"(uvicorn, 127.0.0.1): {percentiles(all_times)}; wall {wall:.1f} s; "
              f"errors {len(errors)}")
        for e in errors[:10]:
            print("  ", e)
        print(f"p50 of all: {statistics.median(all_times) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
