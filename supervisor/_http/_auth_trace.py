"""A trace of every refused authentication: counted by cause, and logged, at a bounded rate.

Wraps the MCP route's auth check (ours or the SDK's `RequireAuthMiddleware`, whichever answers)
and reads the status it sends: a 401 is `missing_token` (no Authorization header) or
`invalid_token`, a 403 `insufficient_scope`. Each is counted in `mcp_refusals_total{status,
cause}`; a WARNING names the cause, method, path and client address (never the token), at most
one line per cause every `interval` seconds, saying how many were left unsaid in between.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import trio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from supervisor._http._envelope import header

logger = logging.getLogger("supervisor.auth")

LOG_INTERVAL = 10.0
"""Seconds between two WARNING lines of one cause: a flood of bad tokens is one line a while."""


class AuthTrace:
    """Counts and logs the 401s and 403s that `app` (an auth check) answers."""

    def __init__(
        self, app: ASGIApp, refused: Callable[[int, str], None], interval: float = LOG_INTERVAL
    ) -> None:
        self._app = app
        self._refused = refused
        self._interval = interval
        self._last: dict[str, float] = {}
        self._unsaid: dict[str, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def watched(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] in (401, 403):
                self._note(scope, message["status"])
            await send(message)

        await self._app(scope, receive, watched)

    def _note(self, scope: Scope, status: int) -> None:
        if status == 403:
            cause = "insufficient_scope"
        else:
            cause = "invalid_token" if header(scope["headers"], b"authorization") else "missing_token"
        self._refused(status, cause)
        now = trio.current_time()
        if now - self._last.get(cause, -self._interval) < self._interval:
            self._unsaid[cause] = self._unsaid.get(cause, 0) + 1
            return
        self._last[cause] = now
        unsaid = self._unsaid.pop(cause, 0)
        client = scope.get("client")
        logger.warning(
            "authentication refused (%s): %s %s from %s%s",
            cause,
            scope.get("method"),
            scope.get("path"),
            client[0] if client else "an unknown address",
            f"; {unsaid} more since the last line" if unsaid else "",
        )
