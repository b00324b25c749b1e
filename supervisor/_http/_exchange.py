"""One HTTP request in flight between its ASGI handler and the task that serves it.

The handler is the single reader of the real `receive`: it reads the whole body first and
gives the transport a replay of it, then keeps reading to notice the client leaving. Every
`send` goes through here so the handler knows, whatever happened to the serving task, what
the client has seen and can complete the answer: a JSON error before headers, a final SSE
error event after SSE headers, and always a proper end of body.
"""

from __future__ import annotations

import enum
import json
import logging
from typing import Any

import trio
from starlette.types import Message, Receive, Send

from actors import RequestTicket, SessionLog, chunk, send_error, sse_error_event

logger = logging.getLogger("supervisor._exchange")


class ExchangeState(enum.Enum):
    """What the client has seen of its answer (as hypercorn's `ASGIHTTPState` for a stream)."""

    NOTHING_SENT = "nothing_sent"
    HEAD_HELD = "head_held"
    """A plain (not SSE) head is held back until its body comes: both go out under one bounded
    scope, and a 5xx body can name the request (the SDK says `"id": null`)."""
    STREAMING = "streaming"
    """The head went out; the body is open."""
    COMPLETE = "complete"
    """The whole answer went out."""
    CLIENT_GONE = "client_gone"
    """The client left, or stopped reading, before the answer was complete."""


_FINISHED = (ExchangeState.COMPLETE, ExchangeState.CLIENT_GONE)


class Exchange:
    """Replay receive, tracked and shielded send, and the fallback answer for one request."""

    def __init__(
        self,
        body: bytes,
        send: Send,
        *,
        send_timeout: float,
        retry_after: int,
        ticket: RequestTicket,
        request_id: Any = None,
        cancel_if_client_leaves: bool = True,
        session_id: str | None = None,
        capture_response: bool = False,
        client_receive: Receive | None = None,
    ) -> None:
        self._body: bytes | None = body
        self._send = send
        self._send_timeout = send_timeout
        self._retry_after = retry_after
        self.ticket = ticket
        self.state = ExchangeState.NOTHING_SENT
        self.disconnected = trio.Event()
        """Set when `http.disconnect` arrives (after a complete answer too): wakes a waiting `receive`."""
        self.status: int | None = None
        self.is_sse = False
        self._last_with_id: bytes | None = None
        """The last SSE chunk that mentions an id: the response, if one went out, is the last one."""
        self._request_id = request_id
        self._held: Message | None = None
        self._client_receive = client_receive
        self._reading: trio.CancelScope | None = None
        """Around a pass-through read of the client's `receive`: ended when the client is gone."""
        """Given when the transport itself keeps reading `receive` while it streams (SSE): then its
        reads pass through to the client's, and notice the client leaving, with no watcher task."""
        self._capture = capture_response
        self.response: dict[str, Any] | None = None
        """With `capture_response`: the JSON-RPC response to this request as sent (quick open learns it)."""
        self._session_id = session_id
        self._cancel_if_client_leaves = cancel_if_client_leaves
        """Whether the client leaving cancels what serves the request: for a standalone stream
        and a 2026-07-28 request. A handshake-era request runs on to its end (its session stays
        valid, and with an event store its answer can be resumed)."""

    @property
    def answered(self) -> bool:
        """An SSE event carrying a response (result or error) went out; parsed only when asked.

        The SDK ends a POST stream with the request's response, so if one went out it is the last
        chunk that mentions an id (server-to-client requests and progress carry ids too, before it).
        """
        return self._last_with_id is not None and _carries_response(self._last_with_id)

    @property
    def started(self) -> bool:
        return self.state is not ExchangeState.NOTHING_SENT and self.status is not None

    @property
    def complete(self) -> bool:
        return self.state is ExchangeState.COMPLETE

    async def receive(self) -> Message:
        """The body once; then the client's own receive, or nothing until the client leaves."""
        if self._body is not None:
            body, self._body = self._body, None
            return {"type": "http.request", "body": body, "more_body": False}
        if self._client_receive is None or self.disconnected.is_set():
            await self.disconnected.wait()
            return {"type": "http.disconnect"}
        with trio.CancelScope() as self._reading:
            message = await self._client_receive()
            if message["type"] == "http.disconnect":
                self._client_gone()
            return message
        # The handler went away while the transport waited on the client (an ASGI server that
        # cancels its app on disconnect, say): to the transport that is the client leaving.
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        """Forward one ASGI message, shielded so cancellation never tears a message in half.

        Bounded: a client that stops reading is treated as gone rather than allowed to hold a
        request (and so a close) forever.
        """
        if self.state in _FINISHED or self.disconnected.is_set():
            return
        kind = message["type"]
        if kind == "http.response.start":
            self.status = int(message["status"])
            for name, value in message.get("headers", ()):
                if bytes(name).lower() == b"content-type" and bytes(value).startswith(b"text/event-stream"):
                    self.is_sse = True
            if not self.is_sse:
                self._held = message
                self.state = ExchangeState.HEAD_HELD
                return
            self.state = ExchangeState.STREAMING
        elif kind == "http.response.body":
            body = bytes(message.get("body", b""))
            if self._capture and self.response is None and body:
                self.response = _response_in(body, self._request_id, sse=self.is_sse)
            if self.is_sse and b'"id"' in body:
                self._last_with_id = body
            held = self._held
            # Marked before sending: hypercorn may report the (normal) disconnect that follows a
            # completed response to the watcher while this send is still being awaited.
            more = message.get("more_body", False)
            self.state = ExchangeState.STREAMING if more else ExchangeState.COMPLETE
            if held is not None:
                self._held = None
                if self.status is not None and self.status >= 500 and self._request_id is not None:
                    # The SDK answers a request its loop could not take with `"id": null`: the
                    # body names the request (its length may change).
                    held, message = _naming_request(held, message, body, self._request_id)
                await self._forward(held, message)
                return
        await self._forward(message)

    async def _forward(self, *messages: Message) -> None:
        with trio.move_on_after(self._send_timeout, shield=True) as scope:
            for message in messages:
                await self._send(message)
        if scope.cancelled_caught:
            self.client_left()

    def client_left(self) -> None:
        """The client is gone: drop what is still to send; cancel the request only if told to."""
        if self.state is not ExchangeState.COMPLETE:
            self.state = ExchangeState.CLIENT_GONE
        self.disconnected.set()
        self.ticket.client_left = True
        if self._reading is not None:
            self._reading.cancel()
        if self._cancel_if_client_leaves:
            self.ticket.cancel_scope.cancel()
        elif self._session_id is not None:
            SessionLog(logger, self._session_id).debug(
                "client left before its answer; request %r runs on", self._request_id
            )

    @property
    def runs_on_without_client(self) -> bool:
        """A handshake-era request: it is served to its end even when no one reads the answer."""
        return not self._cancel_if_client_leaves

    @property
    def watched_by_transport(self) -> bool:
        return self._client_receive is not None

    async def watch_client(self, receive: Receive) -> None:
        """Read the real `receive` until the client leaves before the answer was complete.

        hypercorn also delivers `http.disconnect` after every completed response; that one
        only ends the watch.
        """
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self._client_gone()
                return

    def _client_gone(self) -> None:
        """`http.disconnect` arrived: the client left, unless it is the one after a full answer."""
        if not self.complete:
            self.client_left()
        else:
            self.disconnected.set()

    async def answer_unfinished(self, status: int, code: int, message: str, request_id: Any) -> None:
        """Complete whatever the client has not got yet; nothing if the answer was complete."""
        if self.state in _FINISHED or self.disconnected.is_set():
            return
        if self.state is ExchangeState.HEAD_HELD:
            # Headers held back but never sent: the client has seen nothing yet.
            self._held = None
            self.status = None
            self.state = ExchangeState.NOTHING_SENT
        if not self.started:
            retry = (("Retry-After", str(self._retry_after)),) if status == 503 else ()
            await send_error(self.send, status, code, message, request_id, retry)
            return
        if self.is_sse and request_id is not None and not self.answered:
            await self.send(chunk(sse_error_event(code, message, request_id), more=True))
        await self.send(chunk(b"", more=False))


def _naming_request(head: Message, message: Message, body: bytes, request_id: Any) -> tuple[Message, Message]:
    """A held 5xx head and its body, the body naming the request and the length fitted to it."""
    body = _with_request_id(body, request_id)
    headers = [(n, v) for n, v in head.get("headers", ()) if bytes(n).lower() != b"content-length"]
    headers.append((b"content-length", str(len(body)).encode()))
    return {**head, "headers": headers}, {**message, "body": body}


def _carries_response(chunk: bytes) -> bool:
    """Whether an SSE chunk holds a JSON-RPC response (result or error), not a request or notice."""
    for line in chunk.splitlines():
        if line.startswith(b"data:"):
            try:
                data = json.loads(line[5:])
            except ValueError:
                continue
            if isinstance(data, dict) and "id" in data and ("result" in data or "error" in data):
                return True
    return False


def _response_in(chunk: bytes, request_id: Any, *, sse: bool) -> dict[str, Any] | None:
    """The JSON-RPC response to `request_id` in one body chunk (an SSE event or a JSON body), if any."""
    candidates = [line[5:] for line in chunk.splitlines() if line.startswith(b"data:")] if sse else [chunk]
    for candidate in candidates:
        try:
            data = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(data, dict) and data.get("id") == request_id and "result" in data:
            return data
    return None


def _with_request_id(body: bytes, request_id: Any) -> bytes:
    """A JSON-RPC error body with `"id": null` given the request's id; anything else unchanged."""
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if isinstance(data, dict) and data.get("id", 0) is None and "error" in data:
        data["id"] = request_id
        return json.dumps(data, separators=(",", ":")).encode()
    return body
