"""The Starlette app of ``coverage15 serve``: the page, its JSON API, exports and uploads.

Safe by default (see docs/app.md and docs/security.md): it binds 127.0.0.1; on another
address every request must carry the token (header ``X-Coverage15-Token``, or the cookie the
page sets after opening ``/?token=...``); requests whose ``Host`` is not the server's own are
refused (DNS rebinding), and so are state-changing requests from another ``Origin``. Each
browser session (a random, HttpOnly, SameSite=Strict cookie) edits its own scenario; the base
run is never written to. Saved scenario names are strict slugs; exports are written into
temporary folders the server made; uploads are size-limited and checked (format, CRS, point
geometry, inside the study area) before any scenario changes.
"""

from __future__ import annotations

import hmac
import io
import json
import logging
import math
import tempfile
import threading
import uuid
import zipfile
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from coverage15._errors import Coverage15Error
from coverage15.app.engine import Base, Evaluation, LayerEdit, Scenario, Site
from coverage15.app.store import Session, Store

__all__ = ["MAX_UPLOAD_BYTES", "create_app", "serve"]

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 2 * 1024 * 1024
MAX_UPLOAD_SITES = 500
SESSION_COOKIE = "c15session"
TOKEN_COOKIE = "c15token"
TOKEN_HEADER = "x-coverage15-token"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
STATIC = Path(__file__).parent / "_static"
LEAFLET = Path(__file__).parents[1] / "_static" / "leaflet"
EXPORT_FILES = ("gap_report.csv", "gap_report.xlsx", "district_report.csv", "coverage.gpkg",
                "map.html", "whatif.csv", "scenario.zip")
NAME_LIMIT = 80


class _BadRequestError(Exception):
    """A request the server refuses with ``status`` and a message for the planner."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


_Bad = _BadRequestError


# --- JSON views ------------------------------------------------------------------------------


def _records(frame: pd.DataFrame | None) -> list[dict[str, Any]]:
    if frame is None:
        return []
    out = []
    for row in frame.to_dict("records"):
        out.append({str(k): _plain(v) for k, v in row.items()})
    return out


def _plain(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float | np.floating):
        return None if math.isnan(float(value)) else float(value)
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    return str(value)


def _flag(frame: pd.DataFrame) -> npt.NDArray[np.bool_]:
    flags: npt.NDArray[np.bool_] = frame["uncovered"].astype("boolean").fillna(False).to_numpy(
        bool)
    return flags


def _changes(before: pd.DataFrame, after: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of the 街镇 table that changed: before → after, and newly pass/fail."""
    keys = ["district", "jiezhen"]
    b = before.set_index(keys)
    a = after.set_index(keys).reindex(b.index)
    shares = [c for c in b.columns if c.endswith("_share") and c != "network_share"]
    passes = [c for c in b.columns if c.startswith("pass_")]
    was, now = _flag(before), _flag(a.reset_index())
    out = []
    for i, key in enumerate(b.index):
        moved = {c: (_plain(b[c].iloc[i]), _plain(a[c].iloc[i])) for c in [*shares, *passes]
                 if _plain(b[c].iloc[i]) != _plain(a[c].iloc[i])}
        counts = {c: (_plain(b[c].iloc[i]), _plain(a[c].iloc[i])) for c in b.columns
                  if c.endswith("_count") and _plain(b[c].iloc[i]) != _plain(a[c].iloc[i])}
        if not moved and not counts and was[i] == now[i]:
            continue
        change = ("newly passes" if was[i] and not now[i] else
                  "newly fails" if now[i] and not was[i] else "")
        out.append({"district": key[0], "jiezhen": key[1], "change": change,
                    "values": {c: {"before": v[0], "after": v[1]}
                               for c, v in {**counts, **moved}.items()}})
    return out


def _citywide(evaluation: Evaluation) -> list[dict[str, Any]]:
    return [{"rule": c.rule.id, "label": c.rule.label, "value": _plain(c.value),
             "target": c.rule.min_count, "passed": _plain(c.passed), "reason": c.reason}
            for c in evaluation.check.citywide]


def _points(frame: gpd.GeoDataFrame) -> list[dict[str, Any]]:
    xy = shapely.get_coordinates(frame.geometry.to_crs("EPSG:4326").to_numpy())
    return [{"id": str(i), "name": str(n), "lon": float(x), "lat": float(y)}
            for i, n, (x, y) in zip(frame["facility_id"], frame["name"], xy, strict=True)]


def _geojson(polygons: Any, crs: str, properties: list[dict[str, Any]]) -> dict[str, Any]:
    shapes = gpd.GeoSeries(np.asarray(polygons, dtype=object), crs=crs)
    shapes = shapes.simplify(5.0).to_crs("EPSG:4326")
    features = [{"type": "Feature", "properties": p, "geometry": shapely.geometry.mapping(g)}
                for g, p in zip(shapes, properties, strict=True)
                if g is not None and not g.is_empty]
    return {"type": "FeatureCollection", "features": features}


# --- the app ---------------------------------------------------------------------------------


class App:
    """The server's state: the store, the token, exports and proposal jobs."""

    def __init__(self, base: Base, folder: Path, *, token: str | None,
                 hosts: tuple[str, ...]) -> None:
        self.base = base
        self.store = Store(base, folder)
        self.token = token
        self.hosts = hosts
        self._exports: OrderedDict[tuple[str, int], tempfile.TemporaryDirectory[str]] = (
            OrderedDict())
        self._export_lock = threading.Lock()
        self.jobs: dict[str, dict[str, Any]] = {}
        self._units_json: dict[str, Any] | None = None

    # the state a page shows
    def state(self, session: Session, before: Evaluation | None = None) -> dict[str, Any]:
        ev = session.evaluation
        base = self.store.base_evaluation
        vs_base = _changes(base.gap_report, ev.gap_report)
        out: dict[str, Any] = {
            "name": session.name,
            "edits": session.scenario.to_json()["edits"],
            "gap_report": _records(ev.gap_report),
            "district_report": _records(ev.district_report),
            "citywide": _citywide(ev),
            "citywide_base": _citywide(base),
            "vs_base": {"newly_pass": [c["jiezhen"] for c in vs_base
                                       if c["change"] == "newly passes"],
                        "newly_fail": [c["jiezhen"] for c in vs_base
                                       if c["change"] == "newly fails"]},
            "can_undo": bool(session.history),
        }
        if before is not None:
            out["changes"] = _changes(before.gap_report, ev.gap_report)
            out["district_changes"] = (
                _district_changes(before.district_report, ev.district_report))
            out["citywide_before"] = _citywide(before)
        return out


def _district_changes(before: pd.DataFrame | None, after: pd.DataFrame | None,
                      ) -> list[dict[str, Any]]:
    if before is None or after is None:
        return []
    out = []
    for b, a in zip(_records(before), _records(after), strict=True):
        diff = {k: {"before": b[k], "after": a.get(k)} for k in b if b[k] != a.get(k)}
        if diff:
            out.append({"district": b["district"], "values": diff})
    return out


def _number(payload: dict[str, Any], key: str) -> float:
    value = payload.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(
            float(value)):
        raise _Bad(f"{key} must be a finite number")
    return float(value)


def _text(payload: dict[str, Any], key: str, default: str = "") -> str:
    value = payload.get(key, default)
    if value is None:
        value = default
    if not isinstance(value, str) or len(value) > NAME_LIMIT:
        raise _Bad(f"{key} must be text of at most {NAME_LIMIT} characters")
    return value.strip()


def edit_scenario(base: Base, session: Session, payload: dict[str, Any]) -> Scenario:
    """The scenario after one edit (``add``, ``move``, ``close``, ``reopen``); nothing applied."""
    op = payload.get("op")
    layer = payload.get("layer")
    if not isinstance(layer, str) or layer not in base.layer_state:
        raise _Bad(f"layer must be one of {', '.join(base.keys)}")
    scenario = session.scenario
    edit = scenario.edit(layer)
    added = list(edit.added)
    removed = set(edit.removed)
    if op == "add":
        lon, lat = _number(payload, "lon"), _number(payload, "lat")
        session.counter += 1
        name = _text(payload, "name") or f"新增{base.labels[layer]} {session.counter}"
        added.append(Site(f"new-{session.counter}", name, lon, lat))
    elif op in ("move", "close", "reopen"):
        fid = _text(payload, "id")
        at = [i for i, s in enumerate(added) if s.id == fid]
        if op == "reopen":
            if fid not in removed:
                raise _Bad(f"facility {fid!r} is not closed in this scenario")
            removed.discard(fid)
            added = [s for s in added if s.id != f"moved-{fid}"]
        elif at:
            if op == "close":
                del added[at[0]]
            else:
                s = added[at[0]]
                added[at[0]] = Site(s.id, s.name, _number(payload, "lon"),
                                    _number(payload, "lat"))
        elif fid in base.ids[layer] and fid not in removed:
            removed.add(fid)
            if op == "move":
                points = base.layer_state[layer].points
                name = str(points.loc[points["facility_id"].astype(str) == fid,
                                      "name"].iloc[0])
                added.append(Site(f"moved-{fid}", name, _number(payload, "lon"),
                                  _number(payload, "lat")))
        else:
            raise _Bad(f"layer {layer!r} has no open facility {fid!r} in this scenario")
    else:
        raise _Bad("op must be add, move, close or reopen")
    return scenario.with_edit(layer, LayerEdit(frozenset(removed), tuple(added)))


def create_app(base: Base, folder: str | Path, *, token: str | None = None,
               host: str = "127.0.0.1", port: int = 8015) -> Starlette:
    """The Starlette app on ``base`` with saved scenarios in ``folder``.

    Parameters
    ----------
    base
        The run's base state (:class:`~coverage15.app.engine.Base`).
    folder
        Where saved scenarios live.
    token
        Required of every request when given (always given for a non-local ``host``).
    host, port
        Where the server listens: requests for another ``Host`` are refused.
    """
    if host not in LOCAL_HOSTS and not token:
        msg = f"serving on {host} needs a token (only 127.0.0.1 is served without one)"
        raise Coverage15Error(msg)
    names = {host, *LOCAL_HOSTS} if host in LOCAL_HOSTS else {host}
    hosts = tuple(sorted({*names, *(f"{h}:{port}" for h in names),
                          *(f"[{h}]:{port}" for h in names if ":" in h), "testserver"}))
    app = App(base, Path(folder), token=token, hosts=hosts)
    routes = [
        Route("/", _index),
        Route("/api/base", _base_info),
        Route("/api/units", _units),
        Route("/api/state", _state),
        Route("/api/edit", _edit, methods=["POST"]),
        Route("/api/undo", _undo, methods=["POST"]),
        Route("/api/reset", _reset, methods=["POST"]),
        Route("/api/areas/{layer}", _areas),
        Route("/api/snap", _snap),
        Route("/api/scenarios", _list, methods=["GET"]),
        Route("/api/scenarios/{name}", _save, methods=["PUT"]),
        Route("/api/scenarios/{name}", _saved, methods=["GET"]),
        Route("/api/scenarios/{name}/open", _open, methods=["POST"]),
        Route("/api/compare", _compare),
        Route("/api/export/{file}", _export),
        Route("/api/upload", _upload, methods=["POST"]),
        Route("/api/propose", _propose, methods=["POST"]),
        Route("/api/propose/{job}", _job),
        Route("/api/propose/{job}/accept", _accept, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
        Mount("/leaflet", StaticFiles(directory=LEAFLET), name="leaflet"),
    ]
    starlette = Starlette(routes=routes, middleware=[Middleware(_Guard)])
    starlette.state.app = app
    return starlette


class _Guard(BaseHTTPMiddleware):
    """Host, token and origin checks, the session cookie, and errors as JSON."""

    async def dispatch(self, request: Request,
                       call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        app: App = request.app.state.app
        host = request.headers.get("host", "")
        if host not in app.hosts:
            return JSONResponse({"error": "unknown Host"}, status_code=400)
        set_token = False
        if app.token:
            given = (request.headers.get(TOKEN_HEADER) or request.cookies.get(TOKEN_COOKIE)
                     or "")
            if not given and request.url.path == "/":
                given = request.query_params.get("token", "")
                set_token = True
            if not hmac.compare_digest(given.encode(), app.token.encode()):
                return JSONResponse({"error": "a valid token is required"}, status_code=401)
        if request.method not in ("GET", "HEAD"):
            origin = request.headers.get("origin")
            if origin is not None and origin.split("://", 1)[-1] not in app.hosts:
                return JSONResponse({"error": "cross-origin request refused"},
                                    status_code=403)
        sid = request.cookies.get(SESSION_COOKIE)
        new_sid = None
        if app.store.session(sid) is None:
            new_sid = app.store.new_session()
            request.scope["c15session"] = new_sid
        else:
            request.scope["c15session"] = sid
        try:
            response = await call_next(request)
        except Exception:
            log.exception("request failed: %s", request.url.path)
            response = JSONResponse({"error": "internal error (see the server's log)"},
                                    status_code=500)
        if new_sid is not None:
            response.set_cookie(SESSION_COOKIE, new_sid, httponly=True, samesite="strict")
        if set_token and app.token:
            response.set_cookie(TOKEN_COOKIE, app.token, httponly=True, samesite="strict")
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data: https:; style-src 'self' "
            "'unsafe-inline'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'")
        return response


def _ctx(request: Request) -> tuple[App, Session]:
    app: App = request.app.state.app
    session = app.store.session(request.scope.get("c15session"))
    if session is None:  # dropped between the middleware and here
        raise _Bad("session expired: reload the page", 409)
    return app, session


def _guarded(handler: Callable[[Request, bytes | None], Any],
             ) -> Callable[[Request], Awaitable[Response]]:
    """Run a blocking handler in the thread pool; planner errors become 400 with a message."""
    from starlette.concurrency import run_in_threadpool

    async def wrapped(request: Request) -> Response:
        body = None
        if request.method in {"POST", "PUT"}:
            body = await _read_body(request, MAX_UPLOAD_BYTES)
        try:
            result = await run_in_threadpool(handler, request, body)
        except _BadRequestError as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.status)
        except Coverage15Error as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        if isinstance(result, Response):
            return result
        return JSONResponse(result)

    return wrapped


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return b"\0too-large"
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return b"\0too-large"
        chunks.append(chunk)
    return b"".join(chunks)


def _json_body(body: bytes | None) -> dict[str, Any]:
    if body == b"\0too-large":
        raise _Bad(f"request larger than {MAX_UPLOAD_BYTES // 1024 // 1024} MB", 413)
    try:
        data = json.loads(body or b"{}")
    except ValueError as exc:
        raise _Bad("the request body must be JSON") from exc
    if not isinstance(data, dict):
        raise _Bad("the request body must be a JSON object")
    return data


# --- handlers --------------------------------------------------------------------------------


async def _index(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", media_type="text/html")


@_guarded
def _base_info(request: Request, _: bytes | None) -> dict[str, Any]:
    app, _session = _ctx(request)
    base = app.base
    return {"name": base.config.name,
            "layers": [{"key": k, "label": base.labels[k],
                        "facilities": _points(base.layer_state[k].points)} for k in base.keys],
            "rules": [{"id": r.id, "label": r.label, "kind": r.kind} for r in base.rules],
            # walking profiles (#18) plug in here: the page shows a switch when this is set
            "profiles": [],
            "tiles": _tiles(app.base.config.map.tiles, app.base.config.map.tiles_attribution),
            "bounds": [float(v) for v in gpd.GeoSeries([base.net.extent], crs=base.net.crs)
                       .to_crs("EPSG:4326").total_bounds]}


def _tiles(tiles: str | None, attribution: str | None) -> dict[str, str] | None:
    """The basemap as a URL template and attribution (OpenStreetMap unless a URL is given)."""
    if tiles is None or tiles.lower() == "none":
        return None
    if "{z}" in tiles and tiles.startswith("https://"):
        return {"url": tiles, "attribution": attribution or ""}
    return {"url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
            "attribution": "© OpenStreetMap contributors"}


@_guarded
def _units(request: Request, _: bytes | None) -> dict[str, Any]:
    app, _session = _ctx(request)
    if app._units_json is None:
        units = app.base.units
        app._units_json = _geojson(
            units.geometry.to_crs(app.base.analysis.working_crs).to_numpy(),
            app.base.analysis.working_crs,
            [{"jiezhen": str(u), "district": str(d)}
             for u, d in zip(units["unit"], units["district"], strict=True)])
    return app._units_json


@_guarded
def _state(request: Request, _: bytes | None) -> dict[str, Any]:
    app, session = _ctx(request)
    with session.lock:
        return app.state(session)


@_guarded
def _edit(request: Request, body: bytes | None) -> dict[str, Any]:
    app, session = _ctx(request)
    payload = _json_body(body)
    with session.lock:
        counter = session.counter
        try:
            scenario = edit_scenario(app.base, session, payload)
            before, _after = app.store.apply(session, scenario)
        except BaseException:
            session.counter = counter
            raise
        out = app.state(session, before)
    layer = str(payload["layer"])
    if payload.get("op") in ("add", "move"):
        sid = (f"new-{session.counter}" if payload["op"] == "add" else
               next((s.id for s in scenario.edit(layer).added
                     if s.id in (payload.get("id"), f"moved-{payload.get('id')}")), None))
        site = next((s for s in scenario.edit(layer).added if s.id == sid), None)
        if site is not None:
            out["site"] = _site_view(app.base, layer, site)
    return out


def _site_view(base: Base, layer: str, site: Site) -> dict[str, Any]:
    reach = base.site_areas(site)
    snap = base.snap_of(site.lon, site.lat)
    return {"layer": layer, "id": site.id, "name": site.name, "lon": site.lon, "lat": site.lat,
            "snap": None if snap is None else {"lon": snap[0], "lat": snap[1], "m": snap[2]},
            "on_network": bool(reach.on_network[0]),
            "area": _geojson(reach.polygons, base.net.crs, [{"id": site.id}])}


@_guarded
def _undo(request: Request, _: bytes | None) -> dict[str, Any]:
    app, session = _ctx(request)
    with session.lock:
        if not session.history:
            raise _Bad("nothing to undo")
        before, _after = app.store.apply(session, session.history[-1], remember=False)
        session.history.pop()
        return app.state(session, before)


@_guarded
def _reset(request: Request, _: bytes | None) -> dict[str, Any]:
    app, session = _ctx(request)
    with session.lock:
        before, _after = app.store.apply(session, Scenario())
        session.name = None
        return app.state(session, before)


@_guarded
def _areas(request: Request, _: bytes | None) -> dict[str, Any]:
    app, session = _ctx(request)
    layer = request.path_params["layer"]
    if layer not in app.base.layer_state:
        raise _Bad(f"layer must be one of {', '.join(app.base.keys)}", 404)
    state = session.evaluation.layers[layer]
    return _geojson(state.areas.polygons, app.base.net.crs,
                    [{"id": str(i)} for i in state.points["facility_id"]])


@_guarded
def _snap(request: Request, _: bytes | None) -> dict[str, Any]:
    app, _session = _ctx(request)
    q = request.query_params
    try:
        lon, lat = float(q.get("lon", "")), float(q.get("lat", ""))
    except ValueError as exc:
        raise _Bad("lon and lat must be numbers") from exc
    app.base.check_site(lon, lat)
    snap = app.base.snap_of(lon, lat)
    return {"snap": None if snap is None else {"lon": snap[0], "lat": snap[1], "m": snap[2]}}


@_guarded
def _list(request: Request, _: bytes | None) -> dict[str, Any]:
    app, _session = _ctx(request)
    return {"scenarios": app.store.listing()}


@_guarded
def _save(request: Request, _: bytes | None) -> dict[str, Any]:
    app, session = _ctx(request)
    name = request.path_params["name"]
    with session.lock:
        entry = app.store.save(name, session.scenario)
        session.name = name
    return entry


@_guarded
def _saved(request: Request, _: bytes | None) -> dict[str, Any]:
    app, _session = _ctx(request)
    name = request.path_params["name"]
    scenario = app.store.load(name)
    ev = app.base.evaluate(scenario)
    return {"name": name, "edits": scenario.to_json()["edits"],
            "gap_report": _records(ev.gap_report), "citywide": _citywide(ev)}


@_guarded
def _open(request: Request, _: bytes | None) -> dict[str, Any]:
    app, session = _ctx(request)
    name = request.path_params["name"]
    scenario = app.store.load(name)
    with session.lock:
        before, _after = app.store.apply(session, scenario)
        session.name = name
        session.counter = max([session.counter, *(
            int(s.id.removeprefix("new-")) for e in scenario.edits.values() for s in e.added
            if s.id.startswith("new-") and s.id.removeprefix("new-").isdigit())])
        return app.state(session, before)


@_guarded
def _compare(request: Request, _: bytes | None) -> dict[str, Any]:
    """Two scenarios side by side (``a``, ``b``: saved names, or ``current`` / ``base``)."""
    app, session = _ctx(request)

    def evaluation(name: str) -> Evaluation:
        if name == "base":
            return app.store.base_evaluation
        if name == "current":
            return session.evaluation
        return app.base.evaluate(app.store.load(name))

    a, b = request.query_params.get("a", "base"), request.query_params.get("b", "current")
    ea, eb = evaluation(a), evaluation(b)
    return {"a": a, "b": b, "changes": _changes(ea.gap_report, eb.gap_report),
            "citywide": {"a": _citywide(ea), "b": _citywide(eb)},
            "uncovered": {"a": int(_flag(ea.gap_report).sum()),
                          "b": int(_flag(eb.gap_report).sum())}}


# --- exports ---------------------------------------------------------------------------------


def _sites_frame(sites: tuple[Site, ...]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"facility_id": [s.id for s in sites],
                             "name": [s.name for s in sites]},
                            geometry=[shapely.Point(s.lon, s.lat) for s in sites],
                            crs="EPSG:4326")


def export_scenario(base: Base, scenario: Scenario, out: Path) -> list[str]:
    """Write a scenario as a run writes its outputs, through :func:`whatif` (files' names).

    Each edited layer is a :func:`coverage15.planning.scenarios.whatif` on the previous
    result, so the files equal those of ``coverage15 recommend --layer L --add FILE
    --remove IDS``; ``whatif.csv`` (its per-街镇 comparison) is written when one layer is
    edited.
    """
    from coverage15.outputs.bundle import write_outputs
    from coverage15.planning.scenarios import whatif, write_whatif

    result = base.result
    last = None
    for layer, edit in scenario.edits.items():
        last = whatif(result, layer=layer, add=_sites_frame(edit.added) if edit.added else None,
                      remove=sorted(edit.removed))
        result = last.after
    write_outputs(result, out, map_png=False)
    if last is not None and len(scenario.edits) == 1:
        written = write_whatif(last, out / "whatif", map_html=False)
        (out / "whatif.csv").write_bytes(written["whatif.csv"].read_bytes())
    return sorted(p.name for p in out.iterdir() if p.is_file())


@_guarded
def _export(request: Request, _: bytes | None) -> Response:
    app, session = _ctx(request)
    file = request.path_params["file"]
    if file not in EXPORT_FILES:
        raise _Bad(f"export one of {', '.join(EXPORT_FILES)}", 404)
    with session.lock:
        scenario = session.scenario
    key = (request.scope["c15session"], hash(json.dumps(scenario.to_json(), sort_keys=True)))
    with app._export_lock:
        folder = app._exports.get(key)
        if folder is None:
            folder = tempfile.TemporaryDirectory(prefix="coverage15-app-export-")
            export_scenario(app.base, scenario, Path(folder.name) / "out")
            app._exports[key] = folder
            while len(app._exports) > 8:
                app._exports.popitem(last=False)[1].cleanup()
    out = Path(folder.name) / "out"
    if file == "scenario.zip":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
            for path in sorted(out.iterdir()):
                if path.is_file():
                    z.write(path, path.name)
        return Response(buffer.getvalue(), media_type="application/zip",
                        headers={"Content-Disposition": 'attachment; filename="scenario.zip"'})
    path = out / file
    if not path.is_file():
        raise _Bad(f"{file} is not written for this scenario", 404)
    return FileResponse(path, filename=file)


# --- uploads ---------------------------------------------------------------------------------


def read_upload(base: Base, body: bytes, kind: str) -> gpd.GeoDataFrame:
    """Points of an uploaded GeoJSON or GeoPackage, checked; EPSG:4326."""
    if body == b"\0too-large":
        raise _Bad(f"the file is larger than {MAX_UPLOAD_BYTES // 1024 // 1024} MB", 413)
    if not body:
        raise _Bad("the file is empty")
    if kind not in ("geojson", "gpkg"):
        raise _Bad("format must be geojson or gpkg")
    if kind == "geojson":
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise _Bad("the file is not GeoJSON (not valid JSON)") from exc
        if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
            raise _Bad("the GeoJSON must be a FeatureCollection")
    elif not body.startswith(b"SQLite format 3\0"):
        raise _Bad("the file is not a GeoPackage")
    with tempfile.TemporaryDirectory(prefix="coverage15-upload-") as tmp:
        path = Path(tmp) / f"upload.{kind}"  # the server's name, never the client's
        path.write_bytes(body)
        try:
            frame = gpd.read_file(path, engine="pyogrio")
        except Exception as exc:
            raise _Bad(f"the file cannot be read as {kind}: {type(exc).__name__}") from exc
    if len(frame) == 0:
        raise _Bad("the file holds no features")
    if len(frame) > MAX_UPLOAD_SITES:
        raise _Bad(f"at most {MAX_UPLOAD_SITES} sites per upload, the file holds {len(frame)}")
    if frame.crs is None:
        raise _Bad("the file has no coordinate system (CRS); save it with one, e.g. EPSG:4326")
    types = set(frame.geometry.geom_type.dropna())
    if frame.geometry.isna().any() or frame.geometry.is_empty.any() or types != {"Point"}:
        raise _Bad(f"every feature must be a point; found {', '.join(sorted(types)) or 'none'}")
    frame = frame.to_crs("EPSG:4326")
    inside = frame.geometry.apply(base.study_area.covers).to_numpy(bool)
    if not inside.all():
        raise _Bad(f"{int((~inside).sum())} of {len(frame)} sites lie outside the study area "
                   "(check the file's CRS: GCJ-02 or BD-09 coordinates must be converted)")
    return frame


@_guarded
def _upload(request: Request, body: bytes | None) -> dict[str, Any]:
    """Add (``action=add``) or close (``action=remove``, by ``facility_id``) uploaded sites."""
    app, session = _ctx(request)
    q = request.query_params
    layer, action, kind = q.get("layer", ""), q.get("action", "add"), q.get("format", "")
    if layer not in app.base.layer_state:
        raise _Bad(f"layer must be one of {', '.join(app.base.keys)}")
    if action not in ("add", "remove"):
        raise _Bad("action must be add or remove")
    frame = read_upload(app.base, body or b"", kind)
    with session.lock:
        edit = session.scenario.edit(layer)
        added, removed = list(edit.added), set(edit.removed)
        counter = session.counter
        if action == "add":
            names = (frame["name"].astype(str).tolist() if "name" in frame
                     else [""] * len(frame))
            for name, point in zip(names, frame.geometry, strict=True):
                counter += 1
                added.append(Site(f"new-{counter}", name[:NAME_LIMIT] or f"上传 {counter}",
                                  float(point.x), float(point.y)))
        else:
            if "facility_id" not in frame:
                raise _Bad("to close facilities the file needs a facility_id column")
            ids = frame["facility_id"].astype(str).tolist()
            unknown = [i for i in ids if i not in app.base.ids[layer]]
            if unknown:
                raise _Bad(f"{len(unknown)} facility_id(s) are not in layer {layer!r}, e.g. "
                           f"{unknown[0][:40]!r}")
            removed |= set(ids)
        scenario = session.scenario.with_edit(layer, LayerEdit(frozenset(removed),
                                                                tuple(added)))
        before, _after = app.store.apply(session, scenario)
        session.counter = counter
        return app.state(session, before)


# --- proposals -------------------------------------------------------------------------------


@_guarded
def _propose(request: Request, body: bytes | None) -> dict[str, Any]:
    """Start a site recommendation (on the base run) in the background; its job id."""
    app, _session = _ctx(request)
    payload = _json_body(body)
    layer, k = payload.get("layer"), payload.get("k", 5)
    if layer not in app.base.layer_state:
        raise _Bad(f"layer must be one of {', '.join(app.base.keys)}")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 50:
        raise _Bad("k must be a whole number from 1 to 50")
    running = sum(j["state"] == "running" for j in app.jobs.values())
    if running >= 2:
        raise _Bad("two proposals are already running; wait for one", 429)
    job = uuid.uuid4().hex
    app.jobs[job] = {"state": "running", "step": "starting", "done": 0, "total": 0,
                     "layer": layer, "session": request.scope["c15session"]}

    def work() -> None:
        from coverage15.planning.recommend import recommend

        def progress(step: str, done: int, total: int) -> None:
            app.jobs[job].update(step=step, done=done, total=total)

        try:
            rec = recommend(app.base.result, layer=str(layer), k=int(k), progress=progress)
            props = rec.proposals
            xy = shapely.get_coordinates(props.geometry.to_numpy())
            app.jobs[job].update(state="done", proposals=[
                {"rank": int(r), "name": str(n), "jiezhen": str(j), "newly_covered": int(c),
                 "lon": float(x), "lat": float(y)}
                for r, n, j, c, (x, y) in zip(props["rank"], props["name"], props["jiezhen"],
                                              props["newly_covered"], xy, strict=True)])
        except Exception as exc:
            log.exception("proposal failed")
            app.jobs[job].update(state="failed", error=str(exc)[:300])

    threading.Thread(target=work, daemon=True, name=f"propose-{job[:8]}").start()
    return {"job": job}


def _job_of(app: App, request: Request) -> dict[str, Any]:
    job = app.jobs.get(request.path_params["job"])
    if job is None or job["session"] != request.scope["c15session"]:
        raise _Bad("no such proposal job", 404)
    return job


@_guarded
def _job(request: Request, _: bytes | None) -> dict[str, Any]:
    app, _session = _ctx(request)
    job = _job_of(app, request)
    return {k: v for k, v in job.items() if k != "session"}


@_guarded
def _accept(request: Request, body: bytes | None) -> dict[str, Any]:
    """Add the proposals ranked ``ranks`` to the session's scenario."""
    app, session = _ctx(request)
    job = _job_of(app, request)
    if job["state"] != "done":
        raise _Bad("the proposal is not finished")
    ranks = _json_body(body).get("ranks")
    if not isinstance(ranks, list) or not all(isinstance(r, int) for r in ranks):
        raise _Bad("ranks must be a list of proposal numbers")
    chosen = [p for p in job["proposals"] if p["rank"] in set(ranks)]
    if len(chosen) != len(set(ranks)):
        raise _Bad("ranks must be numbers of this proposal")
    layer = job["layer"]
    with session.lock:
        edit = session.scenario.edit(layer)
        counter = session.counter
        added = list(edit.added)
        for p in chosen:
            counter += 1
            added.append(Site(f"new-{counter}", f"拟建 {p['rank']}", p["lon"], p["lat"]))
        scenario = session.scenario.with_edit(layer, LayerEdit(edit.removed, tuple(added)))
        before, _after = app.store.apply(session, scenario)
        session.counter = counter
        return app.state(session, before)


# --- serving ---------------------------------------------------------------------------------


def serve(config_path: str | Path, *, host: str = "127.0.0.1", port: int = 8015,
          token: str | None = None, folder: str | Path | None = None) -> None:
    """Run the config, then serve the app until interrupted (``coverage15 serve``)."""
    import secrets

    import uvicorn

    from coverage15.inputs.config import load_config
    from coverage15.pipeline import run

    config = load_config(config_path)
    if host not in LOCAL_HOSTS and not token:
        token = secrets.token_urlsafe(24)
        print(f"serving on {host}: open http://{host}:{port}/?token={token}")
    result = run(config)
    base = Base(result)
    where = Path(folder) if folder is not None else Path("scenarios")
    app = create_app(base, where, token=token, host=host, port=port)
    print(f"coverage15 serve: http://{host}:{port}/ (scenarios in {where.resolve()})")
    uvicorn.run(app, host=host, port=port, log_level="warning")
