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
import tempfile
import threading
import uuid
import zipfile
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import shapely
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from coverage15._errors import Coverage15Error
from coverage15.app._http import (
    MAX_UPLOAD_BYTES,
    NAME_LIMIT,
    _Bad,
    _guarded,
    _json_body,
)
from coverage15.app.edits import edit_scenario
from coverage15.app.engine import Base, Evaluation, LayerEdit, Scenario, Site
from coverage15.app.files import EXPORT_FILES, export_scenario, read_upload, scenario_result
from coverage15.app.store import Session, Store
from coverage15.app.views import (
    _changes,
    _citywide,
    _district_changes,
    _flag,
    _geojson,
    _points,
    _site_view,
    _tiles,
    profile_verdicts,
    profiles_info,
    rows,
    walking_rules,
)

__all__ = ["MAX_UPLOAD_BYTES", "create_app", "edit_scenario", "serve"]

log = logging.getLogger(__name__)

SESSION_COOKIE = "c15session"
TOKEN_COOKIE = "c15token"
TOKEN_HEADER = "x-coverage15-token"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
STATIC = Path(__file__).parent / "_static"
LEAFLET = Path(__file__).parents[1] / "_static" / "leaflet"


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
        vs_base = _changes(base, ev)
        out: dict[str, Any] = {
            "name": session.name,
            "edits": session.scenario.to_json()["edits"],
            "gap_report": rows(ev),
            "district_report": rows(ev, "district_report"),
            "citywide": _citywide(ev),
            "citywide_base": _citywide(base),
            "vs_base": {"newly_pass": [c["jiezhen"] for c in vs_base
                                       if c["change"] == "newly passes"],
                        "newly_fail": [c["jiezhen"] for c in vs_base
                                       if c["change"] == "newly fails"]},
            "can_undo": bool(session.history),
            "profile_verdicts": profile_verdicts(ev, self.base),
        }
        if before is not None:
            out["changes"] = _changes(before, ev)
            out["district_changes"] = (
                _district_changes(before, ev))
            out["citywide_before"] = _citywide(before)
        return out


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
            # walking profiles, the verdict's first: the page's switch (shares and colours)
            "profiles": profiles_info(base),
            "walking_rules": walking_rules(app.store.base_evaluation),
            "tiles": _tiles(app.base.config.map.tiles, app.base.config.map.tiles_attribution),
            "bounds": [float(v) for v in gpd.GeoSeries([base.net.extent], crs=base.net.crs)
                       .to_crs("EPSG:4326").total_bounds]}


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
            "gap_report": rows(ev), "citywide": _citywide(ev)}


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
    return {"a": a, "b": b, "changes": _changes(ea, eb),
            "citywide": {"a": _citywide(ea), "b": _citywide(eb)},
            "uncovered": {"a": int(_flag(ea.gap_report).sum()),
                          "b": int(_flag(eb.gap_report).sum())}}


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
    """Start a site recommendation on the session's scenario in the background; its job id.

    The recommendation sees the scenario's facilities (the base run's after the session's
    adds, moves and closes): the scenario is made a result (as an export makes it) first.
    """
    app, session = _ctx(request)
    payload = _json_body(body)
    layer, k = payload.get("layer"), payload.get("k", 5)
    if layer not in app.base.layer_state:
        raise _Bad(f"layer must be one of {', '.join(app.base.keys)}")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 50:
        raise _Bad("k must be a whole number from 1 to 50")
    running = sum(j["state"] == "running" for j in app.jobs.values())
    if running >= 2:
        raise _Bad("two proposals are already running; wait for one", 429)
    with session.lock:
        scenario = session.scenario
    job = uuid.uuid4().hex
    app.jobs[job] = {"state": "running", "step": "starting", "done": 0, "total": 0,
                     "layer": layer, "session": request.scope["c15session"],
                     "scenario": {"name": session.name, "edits": scenario.to_json()["edits"]}}

    def work() -> None:
        from coverage15.planning.recommend import recommend

        def progress(step: str, done: int, total: int) -> None:
            app.jobs[job].update(step=step, done=done, total=total)

        try:
            result = app.base.result
            if scenario.edits:
                progress("scenario", 0, 0)  # the scenario as a run (seconds)
                result = scenario_result(app.base, scenario)[0]
            rec = recommend(result, layer=str(layer), k=int(k), progress=progress)
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
