"""Command line: ``coverage15 run CONFIG --out DIR`` and friends.

Thin on purpose: parse, call the library, print. Any :class:`Coverage15Error` becomes a
one-line message on stderr and exit code 2; there is no traceback for bad input.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from coverage15 import settings
from coverage15._errors import ConfigError, Coverage15Error, unknown_district
from coverage15._version import __version__
from coverage15.inputs.config import MapSpec, load_config
from coverage15.outputs._staging import write_count, written_since

if TYPE_CHECKING:
    from coverage15.inputs.config import RunConfig
    from coverage15.outputs.maps import MapOptions

__all__ = ["main"]

log = logging.getLogger("coverage15")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coverage15",
        description="15-minute walking coverage of elderly and social services.",
    )
    parser.add_argument("--version", action="version", version=f"coverage15 {__version__}")
    _verbosity(parser, default=False)
    common = argparse.ArgumentParser(add_help=False)
    _verbosity(common, default=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", parents=[common],
                         help="run a coverage analysis and write all outputs")
    run.add_argument("config", type=Path, help="run config (TOML)")
    run.add_argument("--out", type=Path, default=Path("out"), help="output folder (default: out)")
    _map_options(run)
    run.add_argument("--no-map", action="store_true", help="skip map.html")
    run.add_argument("--no-png", action="store_true", help="skip the static maps in png/")
    run.add_argument("--parquet", action="store_true",
                     help="also write every layer as GeoParquet into OUT/parquet/")
    run.add_argument("--to", dest="to_database", metavar="postgresql://...",
                     help="also write every layer to this PostGIS database")
    run.add_argument("--schema", default="public", help="database schema for --to")
    run.add_argument("--scheduler", help="run partitions on Dask: 'local' starts a "
                     "LocalCluster, tcp://host:8786 uses an existing scheduler")
    run.add_argument("--workers", type=int, default=None, metavar="N",
                     help="worker processes of --scheduler local (default: the CPUs)")
    run.add_argument("--partitions", type=int, default=None,
                     help="number of tiles for --scheduler (default 4 per worker)")
    _cache_option(run)
    _accept_option(run)

    mp = sub.add_parser("map", parents=[common],
                        help="run and write only the map (e.g. for one district)")
    mp.add_argument("config", type=Path)
    _cache_option(mp)
    mp.add_argument("--out", type=Path, default=Path("maps"), help="folder (default: maps)")
    _map_options(mp)
    mp.add_argument("--png", action="store_true",
                    help="also write the static map (map.png or map-<district>.png)")
    _accept_option(mp)

    fetch = sub.add_parser("fetch", parents=[common],
                           help="download and cache online inputs so later runs work offline")
    fetch.add_argument("config", type=Path)

    cache = sub.add_parser("cache", parents=[common],
                           help="show or clear the cache (networks, OpenStreetMap answers and "
                           "earlier runs' distance work)")
    cache.add_argument("action", choices=["info", "clear"])
    cache.add_argument("--all", action="store_true",
                       help="with clear: also the cached networks and OpenStreetMap answers "
                       "(offline runs then need `coverage15 fetch` again)")

    layers = sub.add_parser("layers", parents=[common], help="inspect the layers of a config")
    layers.add_argument("action", choices=["list", "check"])
    layers.add_argument("config", type=Path)
    _accept_option(layers)
    _recommend_parser(sub, common)
    serve = sub.add_parser("serve", parents=[common], help="the live what-if web app (local)")
    serve.add_argument("config", type=Path)
    serve.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1; "
                       "any other needs --token, or one is made and printed)")
    serve.add_argument("--port", type=int, default=8015)
    serve.add_argument("--token", default=None, help="required of every request")
    serve.add_argument("--scenarios", type=Path, default=Path("scenarios"),
                       help="folder of saved scenarios (default: scenarios)")
    return parser


def _accept_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--accept", action="append", default=[], metavar="ID",
                        help="go ahead despite this problem (its id, e.g. crs-fit:centre, as "
                        "the stop message names it); repeatable; recorded in the outputs")


def _check_scale_out(args: argparse.Namespace) -> tuple[int | None, str | None]:
    """``--partitions`` and ``--scheduler`` checked before the run: one-line errors.

    Without ``--partitions`` a cluster run takes a multiple of its workers (``None`` here).
    """
    import importlib.util
    import socket
    from urllib.parse import urlparse

    scheduler = getattr(args, "scheduler", None)
    partitions = getattr(args, "partitions", None)
    if partitions is not None and partitions < 1:
        msg = f"--partitions must be at least 1, got {partitions}"
        raise ConfigError(msg)
    if scheduler is None:
        return partitions or 1, None
    if importlib.util.find_spec("distributed") is None:
        msg = (f"--scheduler {scheduler}: dask.distributed is not installed; install the "
               "extra (pip install 'coverage15[dask]') or run without --scheduler")
        raise ConfigError(msg)
    if scheduler != "local":
        parsed = urlparse(scheduler if "://" in scheduler else f"tcp://{scheduler}")
        try:
            host, port = parsed.hostname, parsed.port or 8786
        except ValueError as exc:
            msg = f"--scheduler {scheduler}: not an address such as tcp://host:8786 ({exc})"
            raise ConfigError(msg) from exc
        if not host:
            msg = f"--scheduler {scheduler}: not an address such as tcp://host:8786"
            raise ConfigError(msg)
        try:
            with socket.create_connection((host, port), timeout=5):
                pass
        except OSError as exc:
            msg = (f"--scheduler {scheduler}: no Dask scheduler answers at {host}:{port} "
                   f"({exc}); start it (dask scheduler) or use --scheduler local")
            raise ConfigError(msg) from exc
    return partitions, scheduler


def _verbosity(parser: argparse.ArgumentParser, *, default: object) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-v", "--verbose", action="store_true", default=default,
                       help="log each step")
    group.add_argument("-q", "--quiet", action="store_true", default=default,
                       help="only errors")


def _map_options_from(args: argparse.Namespace, config: RunConfig) -> MapOptions:
    """Map options from the command line, falling back to the config's ``[map]`` table."""
    from coverage15.outputs.maps import MapOptions, check_tiles

    chosen = args.tiles if args.tiles is not None else config.map.tiles
    attribution = args.tiles_attribution if args.tiles is not None else (
        config.map.tiles_attribution)
    tiles = None if chosen is None or str(chosen).lower() == "none" else chosen
    if not getattr(args, "no_map", False):  # (no interactive map: its basemap is not used)
        check_tiles(tiles, attribution)
    return MapOptions(tiles=tiles, tiles_attribution=attribution, district=args.district,
                      assets=args.assets)


def _before_the_run(args: argparse.Namespace, config: RunConfig, *, gpkg: str | None,
                    ) -> tuple[RunConfig, MapOptions]:
    """Check what can be checked before the work: the output folder, basemap and district.

    The config gets the command line's ``--tiles``, so the run's input checks (a Chinese
    provider's offset basemap) judge the basemap the map will use.
    """
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        msg = f"--out {out}: is a file, not a folder; give a folder for the outputs"
        raise ConfigError(msg)
    in_the_way = next((p for p in out.parents if p.exists() and not p.is_dir()), None)
    if in_the_way is not None:
        msg = f"--out {out}: {in_the_way} is a file, not a folder; give a folder for the outputs"
        raise ConfigError(msg)
    from coverage15.outputs._staging import check_not_in_use

    if gpkg is not None:  # the GeoPackage it writes open in QGIS: say so now, not after
        check_not_in_use(out, [gpkg])
    if args.tiles is not None:
        config = dataclasses.replace(config, map=MapSpec(
            tiles=args.tiles, tiles_attribution=args.tiles_attribution))
    options = _map_options_from(args, config)
    if args.district:
        _check_district(args.district, config)
    return config, options


def _check_district(district: str, config: RunConfig) -> None:
    """Refuse a ``--district`` the run's result will not have, before the run.

    The same districts as :func:`coverage15.outputs.maps.check_district` finds after a run: with a
    districts layer, its names (every 街镇 is given one of them); otherwise the 街镇 layer's
    own district names.
    """
    from coverage15.inputs.layers import load_units

    if config.districts is not None:
        source = f"the districts layer ({config.districts.path.name})"
        known = set(load_units(config.districts, what="districts")["unit"].dropna())
    else:
        source = f"the 街镇 layer ({config.units.path.name})"
        units = load_units(config.units)
        known = set(units["district"].dropna()) if "district" in units else set()
    known.discard("")
    if not known:
        msg = (f"--district {district!r}: {source} names no districts; set "
               "district_field in [units] or add a [districts] layer")
        raise ConfigError(msg)
    if district not in known:
        raise unknown_district(district, known, source, option="--district")


def _map_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--district", help="restrict the map to one district, e.g. 黄浦区")
    parser.add_argument("--tiles", default=None,
                        help="basemap: OpenStreetMap (default, or the config's [map] tiles), "
                             "a folium tile name or URL template, or 'none' for offline maps")
    parser.add_argument("--tiles-attribution", help="attribution text for a tile URL")
    parser.add_argument("--assets", choices=["inline", "cdn"], default="inline",
                        help="inline Leaflet into the HTML so it works offline (default), or "
                             "link it from a CDN (smaller file, needs internet)")


def _setup_logging(args: argparse.Namespace) -> None:
    level = logging.INFO if args.verbose else logging.ERROR if args.quiet else logging.WARNING
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("coverage15")
    root.handlers[:] = [handler]
    root.setLevel(level)


class _Progress:
    """tqdm bars for the pipeline's progress callback."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: tqdm | None = None
        self.step = ""

    def __call__(self, step: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        if step != self.step:
            self.close()
            self.step = step
            print(f"• {step}", file=sys.stderr, flush=True)
        if total > 0:
            if self.bar is None:
                self.bar = tqdm(total=total, desc=step, unit="facility", leave=False,
                                mininterval=0.5, file=sys.stderr,
                                disable=None)  # no bar (and no \r litter) in logs
            self.bar.n = done
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _cache_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--recompute", action="store_true",
                        help="compute every layer's distance work afresh instead of reusing an "
                        "earlier run's (cached networks and OpenStreetMap answers are still "
                        "used)")


def _cmd_run(args: argparse.Namespace, *, map_only: bool = False) -> int:
    if not getattr(args, "recompute", False):
        return _run_and_write(args, map_only=map_only)
    saved = settings.reuse_results
    settings.reuse_results = False
    try:
        return _run_and_write(args, map_only=map_only)
    finally:
        settings.reuse_results = saved


def _run_and_write(args: argparse.Namespace, *, map_only: bool) -> int:
    from coverage15.pipeline import run, write_outputs

    config, options = _before_the_run(args, load_config(args.config),
                                      gpkg=None if map_only else "coverage.gpkg")
    if getattr(args, "to_database", None):
        from coverage15.inputs._sql import check_identifier
        from coverage15.inputs.postgis import check_database

        check_identifier(args.schema, what="--schema")  # before any output is replaced
        check_database(args.to_database)  # fail now, not after the run
    partitions, scheduler = _check_scale_out(args)
    start = time.perf_counter()
    progress = _Progress(enabled=not args.quiet)
    client = None
    try:
        if scheduler:
            from coverage15.scale.cluster import open_client
            from coverage15.scale.partition import PARTITIONS_PER_WORKER

            # --workers and --partitions, else the config's [scale], else the defaults
            client = open_client(scheduler,
                                 getattr(args, "workers", None) or config.scale.workers)
            workers = len(client.scheduler_info().get("workers", {})) or 1
            partitions = (partitions or config.scale.partitions
                          or PARTITIONS_PER_WORKER * workers)
        result = run(config, progress=progress, partitions=partitions or 1, scheduler=client,
                     accept=args.accept)
    finally:
        progress.close()
        if client is not None:
            cluster = getattr(client, "cluster", None)
            client.close()
            if cluster is not None:
                cluster.close()
    if map_only:
        from coverage15.outputs._staging import staged_outputs
        from coverage15.outputs.maps import render_map

        stem = f"map-{args.district}" if args.district else "map"
        with staged_outputs(args.out, kind=stem) as stage:
            render_map(result, options=options).save(str(stage / f"{stem}.html"))
            if args.png:
                from coverage15.outputs.static_maps import render_png

                render_png(result, stage / f"{stem}.png", district=args.district)
        target = args.out / f"{stem}.html"
        if not args.quiet:
            print(f"wrote {target} ({target.stat().st_size / 1e6:.1f} MB)")
            if args.png:
                print(f"wrote {args.out / f'{stem}.png'}")
        return 0
    written = write_outputs(result, args.out, map_html=not args.no_map,
                            map_png=not (args.no_map or args.no_png), map_options=options,
                            parquet=args.parquet, to_database=args.to_database,
                            schema=args.schema)
    if not args.quiet:
        for line in result.summary():
            print(line)
        print(f"outputs in {args.out}/: {', '.join(written)} "
              f"({time.perf_counter() - start:.1f} s)")
    return 0


def _cmd_layers(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if args.action == "list":
        for key, spec in config.layers.items():
            print(f"{key}\t{spec.label}\t{spec.role}\t{spec.crs or '(file)'}\t{spec.path}"
                  + (f"\t{spec.filter}" if spec.filter else ""))
        return 0
    from coverage15.pipeline import check

    lines, stops, warned = check(config, accept=args.accept)
    for line in lines:
        print(line)
    return 1 if stops or warned else 0


def _recommend_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    rec = sub.add_parser("recommend", parents=[common],
                         help="propose new sites for a layer (maximal or set covering), or "
                              "re-run with sites added or removed (what-if)")
    rec.add_argument("config", type=Path, help="run config (TOML)")
    rec.add_argument("--layer", required=True, help="the layer to extend, e.g. centre")
    rec.add_argument("--k", type=int, help="number of new sites (default 10)")
    rec.add_argument("--cover-rule", action="append", metavar="RULE",
                     help="instead of --k: the fewest new sites so that every flagged 街镇 "
                          "passes RULE (repeatable; 'all': every per-街镇 rule on the layer)")
    rec.add_argument("--objective", metavar="RULE",
                     help="count residents newly passing RULE (e.g. one_plus_n) instead of "
                          "residents newly within reach of the layer")
    rec.add_argument("--candidates", default="nodes",
                     help="'nodes' (street nodes; default), 'layer:KEY' (a layer of the "
                          "config, e.g. day-care centres) or a site file")
    rec.add_argument("--spacing-m", type=float, default=0.0,
                     help="street-node candidates: keep one per square of this size "
                          "(default 0: every node)")
    rec.add_argument("--scope", choices=["assessed", "flagged", "network"], default="assessed",
                     help="demand counted: 街镇 wholly inside the network (default), flagged "
                          "街镇, or every point on the network")
    rec.add_argument("--method", choices=["greedy", "exact", "both"], default="greedy",
                     help="lazy greedy (default), exact integer programme (HiGHS), or both "
                          "with the gap between them")
    rec.add_argument("--time-limit", type=float, default=60.0,
                     help="seconds for the exact solver (default 60)")
    rec.add_argument("--add", type=Path, metavar="FILE",
                     help="what-if: add the sites in FILE to the layer and compare")
    rec.add_argument("--remove", metavar="IDS",
                     help="what-if: remove these facility ids (comma-separated) and compare")
    for name, what in (("x", "x (longitude) column"), ("y", "y (latitude) column"),
                       ("crs", "coordinate system (gcj02, bd09, EPSG:4326...)"),
                       ("name-field", "name column"), ("id-field", "id column")):
        rec.add_argument(f"--{name}", help=f"{what} of a site file (--add, --candidates)")
    rec.add_argument("--out", type=Path, default=Path("recommend"),
                     help="output folder (default: recommend)")
    rec.add_argument("--no-map", action="store_true", help="skip map.html")
    _map_options(rec)
    _accept_option(rec)


def _cmd_recommend(args: argparse.Namespace) -> int:
    from coverage15.pipeline import run
    from coverage15.planning import recommend as rc
    from coverage15.planning import scenarios

    if args.spacing_m < 0 or not 0 < args.time_limit < float("inf"):
        msg = (f"--spacing-m must be >= 0, got {args.spacing_m:g}" if args.spacing_m < 0
               else f"--time-limit must be a number of seconds > 0, got {args.time_limit:g}")
        raise ConfigError(msg)
    what_if = args.add is not None or args.remove is not None
    config, options = _before_the_run(args, load_config(args.config),
                                      gpkg="whatif.gpkg" if what_if else "recommend.gpkg")
    if what_if and (args.k is not None or args.cover_rule or args.objective):
        msg = "--add/--remove (a what-if) do not combine with --k, --cover-rule or --objective"
        raise ConfigError(msg)
    if args.cover_rule and (args.k is not None or args.objective):
        msg = ("--cover-rule finds the fewest sites that meet the rules; it does not combine "
               "with --k or --objective (those are for maximal covering)")
        raise ConfigError(msg)
    if args.spacing_m > 0 and args.candidates != "nodes":
        msg = (f"--spacing-m thins street-node candidates; it does not apply to --candidates "
               f"{args.candidates}")
        raise ConfigError(msg)
    scenarios.check_not_a_run_folder(args.out)  # before the run, not after it
    if args.add is not None and not Path(args.add).is_file():
        msg = f"--add {args.add}: file not found"
        raise ConfigError(msg)
    if args.layer not in config.layers or (args.k is not None and args.k < 1):
        msg = (f"--k must be at least 1, got {args.k}" if args.layer in config.layers else
               f"--layer {args.layer!r} is not in {args.config}; layers: "
               f"{', '.join(config.layers)}")
        raise ConfigError(msg)  # checked before the run, not after it
    files = {"x": args.x, "y": args.y, "crs": args.crs or "", "name_field": args.name_field,
             "id_field": args.id_field}
    start = time.perf_counter()
    progress = _Progress(enabled=not args.quiet)
    try:
        result = run(config, progress=progress, accept=args.accept)
        if what_if:
            add = scenarios.load_sites(args.add, key="added", **files) if args.add else None
            change = scenarios.whatif(result, layer=args.layer, add=add,
                                      remove=(args.remove or "").split(","), progress=progress)
            written = scenarios.write_whatif(change, args.out, map_html=not args.no_map,
                                             map_options=options)
            lines = change.summary()
        else:
            shared = {"layer": args.layer, "candidates": args.candidates, "method": args.method,
                      "spacing_m": args.spacing_m, "time_limit_s": args.time_limit,
                      "progress": progress, **files}
            if args.cover_rule:
                rules = None if "all" in args.cover_rule else args.cover_rule
                rec = rc.cover(result, rules=rules, **shared)
            else:
                rec = rc.recommend(result, k=10 if args.k is None else args.k,
                                   objective=args.objective,
                                   scope=args.scope, **shared)
            after = (scenarios.whatif(result, layer=args.layer, add=rec.proposals,
                                      added_label="拟建", progress=progress)
                     if len(rec.proposals) else None)
            written = rc.write_recommendation(rec, result, args.out, after=after,
                                              map_html=not args.no_map, map_options=options)
            lines = rec.summary(after)
    finally:
        progress.close()
    if not args.quiet:
        for line in lines:
            print(line)
        print(f"outputs in {args.out}/: {', '.join(written)} "
              f"({time.perf_counter() - start:.1f} s)")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from coverage15.app.server import serve

    serve(args.config, host=args.host, port=args.port, token=args.token, folder=args.scenarios)
    return 0


def _cmd_fetch(args: argparse.Namespace) -> int:
    from coverage15.pipeline import fetch

    for line in fetch(load_config(args.config)):
        print(line)
    return 0


def _cmd_cache(args: argparse.Namespace) -> int:
    from coverage15.network import _cache

    if args.action == "clear":
        removed = _cache.clear(None if args.all else _cache.RESULT_KINDS)
        what = "everything" if args.all else "earlier runs' distance work"
        print(f"removed {removed} file(s) from {settings.cache_folder} ({what})")
        return 0
    kinds = _cache.usage()
    print(f"cache folder: {settings.cache_folder}")
    if not kinds:
        print("  empty")
    for kind, (files, size) in kinds.items():
        role = "results" if kind in _cache.RESULT_KINDS else "inputs"
        print(f"  {kind:<9} {files:>6} file(s) {size / 1e6:>9.1f} MB  ({role})")
    print(f"results are kept within {settings.results_cache_mb:g} MB, the least recently used "
          "deleted first (COVERAGE15_RESULTS_CACHE_MB); inputs are kept until cleared")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``coverage15`` command."""
    args = _parser().parse_args(argv)
    logger = logging.getLogger("coverage15")
    saved = (logger.handlers[:], logger.level)  # restored on return (notebooks, tests)
    _setup_logging(args)
    commands: dict[str, Callable[[argparse.Namespace], int]] = {
        "run": _cmd_run, "map": partial(_cmd_run, map_only=True), "fetch": _cmd_fetch,
        "cache": _cmd_cache, "recommend": _cmd_recommend, "layers": _cmd_layers,
        "serve": _cmd_serve}
    previous = _stop_on_sigterm()
    mark = write_count()
    try:
        return commands[args.command](args)
    except Coverage15Error as exc:
        message = " ".join(str(exc).split()) if "\n" not in str(exc) else str(exc)
        print(f"coverage15: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (see _stop_on_sigterm)
        done = written_since(mark)
        if done:  # the outputs stood before the interrupt (it may have been held back)
            print(f"coverage15: interrupted after the outputs in {', '.join(map(str, done))} "
                  "were in place; they are new and complete (anything after them, such as a "
                  "database write, was not done)", file=sys.stderr)
        else:
            print("coverage15: interrupted; earlier outputs are unchanged", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        logger.handlers[:] = saved[0]
        logger.setLevel(saved[1])


def _stop_on_sigterm() -> Any:
    """Make SIGTERM (``kill``, a batch scheduler's stop) interrupt the run like Ctrl-C.

    So outputs being written are rolled back as on Ctrl-C instead of being cut off midway.
    Returns the previous handler, or None where it cannot be set (not the main thread).
    """
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        return signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not in the main thread (e.g. called from a notebook's worker)
        return None


if __name__ == "__main__":
    sys.exit(main())
