"""Scenarios per browser session (in memory) and saved by name (on disk).

Every edit is computed into a new :class:`~.engine.Scenario` and :class:`~.engine.Evaluation`
first and only then swapped in under the session's lock: a failing edit leaves the session as
it was. Saved scenarios are JSON files named by a strict slug (``[a-z0-9][a-z0-9_-]{0,47}``):
no name from a request reaches the file system otherwise, and files are written atomically.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coverage15._errors import ConfigError
from coverage15.app.engine import Base, Evaluation, Scenario

__all__ = ["SLUG", "Session", "Store", "check_slug"]

SLUG = re.compile(r"[a-z0-9][a-z0-9_-]{0,47}")
MAX_SESSIONS = 200  # the oldest idle session is dropped beyond this


def check_slug(name: str) -> str:
    """``name`` if it is a scenario slug, else :class:`ConfigError`."""
    if not isinstance(name, str) or SLUG.fullmatch(name) is None:
        msg = ("a scenario name is 1–48 characters: lower-case letters a–z, digits, '-' and "
               "'_', starting with a letter or digit (e.g. tianping-2026)")
        raise ConfigError(msg)
    return name


@dataclass
class Session:
    """One browser session's scenario, its evaluation and its undo history."""

    scenario: Scenario
    evaluation: Evaluation
    history: list[Scenario] = field(default_factory=list)
    name: str | None = None
    counter: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    used: float = field(default_factory=time.monotonic)


class Store:
    """Sessions in memory and saved scenarios in ``folder``."""

    def __init__(self, base: Base, folder: Path) -> None:
        self.base = base
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.base_evaluation = base.evaluate(Scenario())
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()
        self._files = threading.Lock()

    # --- sessions ----------------------------------------------------------------------------

    def new_session(self) -> str:
        """A fresh session on the base run; its id (a random token)."""
        sid = secrets.token_urlsafe(24)
        with self._lock:
            self._sessions[sid] = Session(Scenario(), self.base_evaluation)
            while len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)
        return sid

    def session(self, sid: str | None) -> Session | None:
        """The session ``sid``, or None."""
        if not sid:
            return None
        with self._lock:
            found = self._sessions.get(sid)
            if found is not None:
                self._sessions.move_to_end(sid)
                found.used = time.monotonic()
            return found

    def apply(self, session: Session, scenario: Scenario, *, remember: bool = True,
              ) -> tuple[Evaluation, Evaluation]:
        """Evaluate ``scenario`` and make it the session's: (before, after).

        Called with ``session.lock`` held. Nothing changes when evaluation fails.
        """
        before = session.evaluation
        after = self.base.evaluate(scenario, before)
        if remember:
            session.history.append(session.scenario)
            del session.history[:-50]
        session.scenario, session.evaluation = scenario, after
        return before, after

    # --- saved scenarios ---------------------------------------------------------------------

    def path(self, name: str) -> Path:
        """The file of a saved scenario (the name checked as a slug)."""
        return self.folder / f"{check_slug(name)}.json"

    def save(self, name: str, scenario: Scenario) -> dict[str, Any]:
        """Write ``scenario`` as ``name`` (atomically); its listing entry."""
        path = self.path(name)
        data = {"name": name, "config": self.base.config.name, "saved": time.time(),
                **scenario.to_json()}
        with self._files:
            fd, tmp = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    json.dump(data, out, ensure_ascii=False, indent=1)
                Path(tmp).replace(path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return self._entry(data)

    def load(self, name: str) -> Scenario:
        """A saved scenario, checked against the base run."""
        path = self.path(name)
        if not path.is_file():
            msg = f"no saved scenario named {name!r}"
            raise ConfigError(msg)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            scenario = Scenario.from_json(data)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            msg = f"saved scenario {name!r} cannot be read: {type(exc).__name__}"
            raise ConfigError(msg) from exc
        self.base.check(scenario)
        return scenario

    def listing(self) -> list[dict[str, Any]]:
        """Saved scenarios, newest first."""
        out = []
        for path in self.folder.glob("*.json"):
            if SLUG.fullmatch(path.stem) is None:
                continue
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except ValueError:
                continue
            if isinstance(data, dict):
                out.append(self._entry({**data, "name": path.stem}))
        return sorted(out, key=lambda e: -float(e.get("saved") or 0))

    @staticmethod
    def _entry(data: dict[str, Any]) -> dict[str, Any]:
        edits = data.get("edits") or {}
        return {"name": data["name"], "saved": data.get("saved"),
                "added": sum(len(e.get("added", [])) for e in edits.values()),
                "removed": sum(len(e.get("removed", [])) for e in edits.values())}
