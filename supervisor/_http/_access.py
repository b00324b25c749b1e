"""One access line, and one duration, for every HTTP request the supervisor's app answers.

The `AccessLog` middleware sits outside everything else of the app (health, auth, the admin API,
the endpoint), so whichever part answers (a refusal, quick open, a stream, a DELETE, the
2026-07-28 path, a forwarded request) the request is logged and timed once. The parts that learn
what the request was (its JSON-RPC method, its session) say so on the `AccessNote` this puts in
the scope. Health, readiness and metrics requests are logged at DEBUG only (a balancer polls
them every few seconds) and are not timed; every MCP request is in the duration histogram.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import attrs
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from supervisor._core import method_label

access_logger = logging.getLogger("supervisor.access")
"""Per-request lines (`--access-log`): client, method, path, status, duration, session, MCP method."""

NOTE_KEY = "supervisor.access"
"""Where in the ASGI scope the request's `AccessNote` is."""


@attrs.define
class AccessNote:
    """What the app learned about one request while answering it."""

    mcp_method: str | None = None
    """The JSON-RPC method of a POSTed message (None: no body, or not a JSON-RPC message)."""
    parsed: bool = False
    """A JSON-RPC message was read from the body (a response has no method)."""
    session_id: str | None = None
    status: int | None = None


def note_of(scope: Scope) -> AccessNote | None:
    note = scope.get(NOTE_KEY)
    return note if isinstance(note, AccessNote) else None


class AccessLog:
    """Times and logs every HTTP request of `app`; `took(label, seconds)` gets each MCP one."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        at_info: bool,
        quiet_paths: frozenset[str],
        mcp_path: str,
        took: Callable[[str, float], None],
    ) -> None:
        self._app = app
        self._level = logging.INFO if at_info else logging.DEBUG
        self._quiet = quiet_paths
        self._mcp_path = mcp_path
        self._took = took

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        note = scope[NOTE_KEY] = AccessNote()
        began = time.perf_counter()

        async def watched(message: Message) -> None:
            if message["type"] == "http.response.start":
                note.status = message["status"]
                if note.session_id is None:
                    note.session_id = _session_header(message.get("headers", ()))
            await send(message)

        try:
            await self._app(scope, receive, watched)
        finally:
            self._finished(scope, note, time.perf_counter() - began)

    def _finished(self, scope: Scope, note: AccessNote, seconds: float) -> None:
        path = scope.get("path", "")
        quiet = path in self._quiet
        if path == self._mcp_path:
            self._took(_label(scope["method"], note), seconds)
        level = logging.DEBUG if quiet else self._level
        if access_logger.isEnabledFor(level):
            _log(level, scope, note, path, seconds)


def _label(http_method: str, note: AccessNote) -> str:
    """The duration histogram's label: the JSON-RPC method of a POST, else the HTTP method."""
    if http_method != "POST":
        return http_method if http_method in ("GET", "DELETE") else "other"
    return method_label(note.mcp_method) if note.parsed else "unparsed"


def _log(level: int, scope: Scope, note: AccessNote, path: str, seconds: float) -> None:
    client = scope.get("client")
    address = f"{client[0]}:{client[1]}" if client else "-"
    fields: dict[str, Any] = {
        "client": address,
        "http_method": scope["method"],
        "path": path,
        "method": note.mcp_method,
        "status": note.status,
        "duration_ms": round(seconds * 1000, 3),
    }
    if note.session_id is not None:
        fields["session_id"] = note.session_id
    text = "%s %s %s %s %s %.1fms"
    shown = note.mcp_method or "-"
    access_logger.log(
        level, text, address, scope["method"], path, shown, note.status, seconds * 1000, extra=fields
    )


def _session_header(headers: Any) -> str | None:
    for name, value in headers:
        if bytes(name).lower() == b"mcp-session-id":
            return bytes(value).decode("latin-1")
    return None
