"""SSE polling that keeps its priming event: the SDK transport with a close that waits for it.

A tool may close its own SSE stream (`ctx.close_sse_stream()`) so the client reconnects later
with `Last-Event-ID`. The client can only do that if it has seen the stream's priming event,
which carries the first event id and the retry interval. The SDK writes that event from a task
of its own; on trio the tool's close can run before that task has written anything, and then
the stream ends empty and the client hangs. This subclass holds such an early close until the
stream's first bytes are on the wire, then closes. No SDK code is changed.
"""

from __future__ import annotations

from typing import Any

from mcp.server.streamable_http import StreamableHTTPServerTransport
from starlette.types import Message, Send


class PollingTransport(StreamableHTTPServerTransport):
    """Used when streams are resumable (an event store is configured); otherwise the SDK's own."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._unwritten: dict[str, bool] = {}
        """Streams whose first event is not on the wire yet, and whether a close waits for it."""

    def watch(self, request_id: Any, send: Send) -> Send:
        """Track one POST's stream until its first event is written; returns the send to use."""
        key = str(request_id)
        self._unwritten[key] = False

        async def send_then_release(message: Message) -> None:
            await send(message)
            first_bytes = message["type"] == "http.response.body" and bool(message.get("body"))
            if first_bytes and key in self._unwritten and self._unwritten.pop(key):
                super(PollingTransport, self).close_sse_stream(key)

        return send_then_release

    def unwatch(self, request_id: Any) -> None:
        """The request is over; a close still held has nothing left to close."""
        self._unwritten.pop(str(request_id), None)

    def close_sse_stream(self, request_id: Any) -> None:
        key = str(request_id)
        if key in self._unwritten:
            self._unwritten[key] = True
            return
        super().close_sse_stream(key)
