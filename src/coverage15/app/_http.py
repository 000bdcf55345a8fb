"""Request plumbing of the app.

Refusals with a message, bodies read within a size limit, blocking handlers run in the thread
pool, and checked JSON values.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from coverage15._errors import Coverage15Error

MAX_UPLOAD_BYTES = 2 * 1024 * 1024
NAME_LIMIT = 80
TOO_LARGE = b"\0too-large"  # what a body over the limit reads as


class _BadRequestError(Exception):
    """A request the server refuses with ``status`` and a message for the planner."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


_Bad = _BadRequestError


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


def _guarded(handler: Callable[[Request, bytes | None], Any],
             ) -> Callable[[Request], Awaitable[Response]]:
    """Run a blocking handler in the thread pool; planner errors become 400 with a message."""
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
        return TOO_LARGE
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return TOO_LARGE
        chunks.append(chunk)
    return b"".join(chunks)


def _json_body(body: bytes | None) -> dict[str, Any]:
    if body == TOO_LARGE:
        raise _Bad(f"request larger than {MAX_UPLOAD_BYTES // 1024 // 1024} MB", 413)
    try:
        data = json.loads(body or b"{}")
    except ValueError as exc:
        raise _Bad("the request body must be JSON") from exc
    if not isinstance(data, dict):
        raise _Bad("the request body must be a JSON object")
    return data

