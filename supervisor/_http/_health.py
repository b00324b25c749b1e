"""Liveness and readiness for load balancers and orchestrators: cheap, and outside bearer auth.

`/healthz` says the process serves HTTP at all (200 while it answers). `/readyz` says whether it
should be sent new sessions: 503 while it drains (after SIGTERM, or `shutdown()`), and at the
session cap, with a JSON detail; with a session store, the detail says whether it answers.
`/readyz?sessions=held` is the second signal a balancer needs: whether the node serves the
sessions it holds (200 while full or draining; 503 once shutdown began and they close), so a full
node stays in for its own sessions while out for new ones.
Neither touches a session, and neither walks the sessions.
"""

from __future__ import annotations

import json
from typing import Protocol

from starlette.types import ASGIApp, Receive, Scope, Send

import supervisor._http._refusals as refusals
from actors import send_refusal, send_whole
from supervisor._http._proxy import HostCheck

HELD_QUERY = b"sessions=held"
"""The readiness path's query for "serving the sessions held here"."""


class Readiness(Protocol):
    """What readiness is read from (the supervisor), in O(1)."""

    @property
    def accepting(self) -> bool: ...

    @property
    def live_sessions(self) -> int: ...

    @property
    def stopping(self) -> bool:
        """Shutdown began: the sessions held here are closing."""

    @property
    def store_up(self) -> bool | None:
        """Whether the session store answers (None: no store)."""


class HealthFront:
    """Answers the health paths itself; everything else goes on to `inner` (auth, MCP, routes)."""

    def __init__(
        self,
        inner: ASGIApp,
        readiness: Readiness,
        *,
        health_path: str | None,
        ready_path: str | None,
        max_sessions: int | None,
        hosts: HostCheck,
    ) -> None:
        self._inner = inner
        self._hosts = hosts
        self._readiness = readiness
        self._health = health_path
        self._ready = ready_path
        self._max_sessions = max_sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path") if scope["type"] == "http" else None
        if path is None or path not in (self._health, self._ready):
            await self._inner(scope, receive, send)
            return
        refusal = await self._hosts.refusal(scope, without_host_passes=True)
        if refusal is not None:
            await send_refusal(send, refusal)
            return
        if scope["method"] not in ("GET", "HEAD"):
            await send_refusal(send, refusals.method_not_allowed("GET, HEAD"))
            return
        alive: tuple[int, dict[str, object]] = (200, {"status": "ok"})
        if path == self._health:
            status, detail = alive
        elif scope.get("query_string") == HELD_QUERY:
            status, detail = self._held_detail()
        else:
            status, detail = self._readiness_detail()
        await _send_json(send, status, detail, head=scope["method"] == "HEAD")

    def _held_detail(self) -> tuple[int, dict[str, object]]:
        """Whether the sessions held here are served: full or draining, yes; once they close, no."""
        if self._readiness.stopping:
            return 503, {"serving": False, "reasons": ["stopping"]}
        return 200, {"serving": True, "reasons": []}

    def _readiness_detail(self) -> tuple[int, dict[str, object]]:
        readiness = self._readiness
        live = readiness.live_sessions
        reasons = []
        if not readiness.accepting:
            reasons.append("draining")
        if self._max_sessions is not None and live >= self._max_sessions:
            reasons.append("at the session cap")
        detail: dict[str, object] = {"ready": not reasons, "reasons": reasons}
        store = readiness.store_up
        if store is not None:
            # A node without its store still serves what it holds and opens new sessions: ready,
            # but degraded (a store outage must not take every node out of the balancer at once).
            detail["store"] = "up" if store else "down"
            detail["degraded"] = not store
        # No counts: these paths answer anyone, and the load of a server is nobody else's business.
        return (503 if reasons else 200), detail


async def _send_json(send: Send, status: int, detail: dict[str, object], *, head: bool) -> None:
    body = json.dumps(detail, separators=(",", ":")).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
    await send_whole(send, status, headers, b"" if head else body)
