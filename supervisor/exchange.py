"""One HTTP request in flight between its ASGI handler and the task that serves it.

The handler is the single reader of the real `receive`: it reads the whole body first and
gives the transport a replay of it, then keeps reading to notice the client leaving. Every
`send` goes through here so the handler knows, whatever happened to the serving task, what
the client has seen and can complete the answer: a JSON error before headers, a final SSE
error event after SSE headers, and always a proper end of body.
"""

from __future__ import annotations

from typing import Any

import trio
from starlette.types import Message, Receive, Send

from actors.messages import RequestTicket
from supervisor.responses import send_error, sse_error_event


class Exchange:
    """Replay receive, tracked and shielded send, and the fallback answer for one request."""

    def __init__(
        self, body: bytes, send: Send, *, send_timeout: float, retry_after: int, ticket: RequestTicket
    ) -> None:
        self._body: bytes | None = body
        self._send = send
        self._send_timeout = send_timeout
        self._retry_after = retry_after
        self.ticket = ticket
        self.disconnected = trio.Event()
        self.status: int | None = None
        self.is_sse = False
        self.complete = False

    @property
    def started(self) -> bool:
        return self.status is not None

    async def receive(self) -> Message:
        """The body once, then nothing until the client leaves."""
        if self._body is not None:
            body, self._body = self._body, None
            return {"type": "http.request", "body": body, "more_body": False}
        await self.disconnected.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        """Forward one ASGI message, shielded so cancellation never tears a message in half.

        Bounded: a client that stops reading is treated as gone rather than allowed to hold a
        request (and so a close) forever.
        """
        if self.complete or self.disconnected.is_set():
            return
        kind = message["type"]
        if kind == "http.response.start":
            self.status = int(message["status"])
            for name, value in message.get("headers", ()):
                if bytes(name).lower() == b"content-type" and bytes(value).startswith(b"text/event-stream"):
                    self.is_sse = True
        elif kind == "http.response.body" and not message.get("more_body", False):
            # Marked before sending: hypercorn may report the (normal) disconnect that follows a
            # completed response to the watcher while this send is still being awaited.
            self.complete = True
        with trio.move_on_after(self._send_timeout, shield=True) as scope:
            await self._send(message)
        if scope.cancelled_caught:
            self.client_left()

    def client_left(self) -> None:
        """The client is gone: stop whatever serves this request."""
        self.disconnected.set()
        self.ticket.cancel_scope.cancel()

    async def watch_client(self, receive: Receive) -> None:
        """Read the real `receive` until the client leaves before the answer was complete.

        hypercorn also delivers `http.disconnect` after every completed response; that one
        only ends the watch.
        """
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                if not self.complete:
                    self.client_left()
                return

    async def answer_unfinished(self, status: int, code: int, message: str, request_id: Any) -> None:
        """Complete whatever the client has not got yet; nothing if the answer was complete."""
        if self.complete or self.disconnected.is_set():
            return
        if not self.started:
            retry = (("Retry-After", str(self._retry_after)),) if status == 503 else ()
            await send_error(self.send, status, code, message, request_id, retry)
            return
        if self.is_sse and request_id is not None:
            await self.send(
                {
                    "type": "http.response.body",
                    "body": sse_error_event(code, message, request_id),
                    "more_body": True,
                }
            )
        await self.send({"type": "http.response.body", "body": b"", "more_body": False})
