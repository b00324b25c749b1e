"""Answer a session's plain requests through its server loop's own streams.

The SDK transport's `handle_request` is built to be an application's front door: per POST it
makes a Starlette `Request`, checks headers, parses and validates the body, makes a memory-stream
pair, and answers with a Starlette `Response` (JSON mode) or an sse-starlette `EventSourceResponse`
with its own task group, writer task and disconnect listener (SSE mode). Our ASGI front door has
made every one of those checks already (security, Accept, Content-Type, JSON-RPC shape, session id,
principal), so for the common case, a POSTed JSON-RPC request other than `initialize`, the actor
answers directly: it validates the message into the SDK's type, puts it into the server loop's
input, and writes the loop's answer (and, in SSE mode, the messages related to the request) to
the client itself.

The transport keeps everything else: `initialize`, notifications, the client's responses, GET
streams, termination, and resumable streams (with an event store direct answers are off, since event ids
and replay are the transport's). It also keeps the loop's connection: `connect()` makes the loop's
streams, and direct answers use them as they are.

- In: a direct request goes into the loop's input through the same stream the transport writes to
  (`StreamableHTTPServerTransport._read_stream_writer`: the SDK offers no public way to put a
  message in; `actors/_sdk.py` finds it, and without it direct answers are off and every request
  goes through `handle_request`). The stream takes the sender's contextvars
  with each message, so a tool sees the request's context (the auth context among them).
- Out: the loop writes to the outbox here. A response, or a message related to a request, for a
  request answered directly goes to that request's replies. Everything else goes on to the
  transport's router, as before.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from functools import partial
from types import TracebackType
from typing import Any

import anyio
import attrs
import trio
from mcp.server.streamable_http import REQUEST_CANCELLED
from mcp.shared.message import ServerMessageMetadata, SessionMessage
from mcp_types import (
    CONNECTION_CLOSED,
    INTERNAL_ERROR,
    ErrorData,
    JSONRPCError,
    JSONRPCMessage,
    JSONRPCRequest,
    JSONRPCResponse,
)
from mcp_types import jsonrpc_message_adapter as message_adapter
from pydantic import ValidationError
from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

from actors._frames import SSE_HEADERS, SSE_PING, chunk, json_headers, session_header, sse_event, start
from actors._standalone import PING_INTERVAL, StandaloneStream, for_no_request

CUT_OFF = ErrorData(code=CONNECTION_CLOSED, message="Connection closed")
"""What the SDK answers a request whose handler its cancelled loop cut off (`jsonrpc_dispatcher`)."""


def takes_direct_answer(method: str | None, request_id: object) -> bool:
    """Whether a POSTed message is one answered directly: a request (it has an id) other than initialize.

    `initialize` stays with the transport: the SDK gives it special checks and the loop runs it
    inline, and it is rare.
    """
    return request_id is not None and method is not None and method != "initialize"


def answers_directly(enabled: bool, method: str | None, request_id: object) -> bool:
    """The one decision whether a POST is answered directly (the HTTP layer makes it, the actor follows)."""
    return enabled and takes_direct_answer(method, request_id)


def as_request(message: Mapping[str, Any] | None) -> JSONRPCRequest | None:
    """The parsed body as the SDK's request type, or None to let the transport answer (and refuse) it."""
    if message is None:
        return None
    try:
        request = message_adapter.validate_python(message, by_name=False)
    except ValidationError:
        return None
    return request if isinstance(request, JSONRPCRequest) else None


@attrs.define(eq=False)
class Replies:
    """What the loop wrote for one direct request, in order; `closed` once no more can come.

    A deque and an event rather than a memory channel: one is made per request, and the loop
    must never wait on it.
    """

    _items: deque[JSONRPCMessage] = attrs.field(init=False, factory=deque)
    _ready: trio.Event = attrs.field(init=False, factory=trio.Event)
    closed: bool = attrs.field(init=False, default=False)

    def put(self, message: JSONRPCMessage) -> None:
        if not self.closed:
            self._items.append(message)
            self._ready.set()

    def close(self) -> None:
        self.closed = True
        self._ready.set()

    async def get(self) -> JSONRPCMessage | None:
        """The next message; None once closed with nothing left."""
        while not self._items:
            if self.closed:
                return None
            await self._ready.wait()
            self._ready = trio.Event()
        return self._items.popleft()


@attrs.define(eq=False)
class LoopOutbox:
    """The server loop's write stream: replies for direct requests to them, messages for no request
    to the stream the actor holds (if it holds one), the rest to the transport."""

    _answers: DirectAnswers | None
    _inner: Any
    _held: Callable[[], StandaloneStream | None] | None = None
    cut_short: str | None = attrs.field(default=None, kw_only=True)
    """Set once the session closes for a reason with words for calls the drain cuts off
    (`ClosePolicy.cut_short`): the SDK's "Connection closed" answers then say them instead."""

    async def send(self, item: SessionMessage) -> None:
        if self.cut_short is not None:
            item = _reworded(item, self.cut_short)
        if self._answers is not None and self._answers.deliver(item):
            return
        if self._held is not None and for_no_request(item):
            stream = self._held()
            if stream is not None and await stream.put(_wire(item.message)):
                return
            # No stream open: the transport drops it too (no GET stream, no event store).
        await self._inner.send(item)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> LoopOutbox:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        await self.aclose()


@attrs.define(eq=False)
class DirectAnswers:
    """One incarnation's direct answers: the loop's input, its outbox, and the requests waiting on them."""

    _session_id: str = attrs.field(alias="session_id")
    _loop_input: Any = attrs.field(alias="loop_input")
    _json: bool = attrs.field(kw_only=True, alias="json_response")
    _session_header: bytes = attrs.field(init=False)
    _ended: bool = attrs.field(init=False, default=False)
    cut_short: str | None = attrs.field(init=False, default=None)
    """The close reason's words for a request whose loop ended without answering (see LoopOutbox)."""
    _waiting: dict[str, Replies] = attrs.field(init=False, factory=dict)
    """Replies of the requests being answered directly, by str(id) as the transport keys them."""

    def __attrs_post_init__(self) -> None:
        self._session_header = self._session_id.encode()

    def loop_ended(self) -> None:
        """No loop will answer any more: every waiting request sees the end of its replies (and
        one that comes later sees it at once)."""
        self._ended = True
        for replies in self._waiting.values():
            replies.close()
        self._waiting.clear()

    def deliver(self, item: SessionMessage) -> bool:
        """Hand a loop output to the direct request it belongs to; False if it belongs to none."""
        message = item.message
        key: Any
        if isinstance(message, JSONRPCResponse | JSONRPCError):
            is_response = True
            key = message.id
        else:
            is_response = False
            metadata = item.metadata
            key = metadata.related_request_id if isinstance(metadata, ServerMessageMetadata) else None
        if key is None:
            return False
        replies = self._waiting.get(str(key))
        if replies is None:
            return False
        if is_response or not self._json:
            # A JSON body carries only the response: anything else related has no wire (the
            # transport drops those too).
            replies.put(message)
        return True

    async def answer(self, request: JSONRPCRequest, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request through the loop and write its answer (JSON body or SSE stream) to `send`."""
        key = str(request.id)
        replies = self._waiting[key] = Replies()
        if self._ended:
            replies.close()
        try:
            metadata = ServerMessageMetadata(
                request_context=Request(scope, receive),
                on_request_unanswered=partial(self._unanswered, replies, request.id),
                can_send_request=not self._json,
            )
            try:
                await self._loop_input.send(SessionMessage(request, metadata=metadata))
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                # The loop's input is closed: the session is ending under this request.
                replies.close()
            if self._json:
                await self._answer_json(replies, send, request.id)
            else:
                await self._answer_sse(replies, send)
        finally:
            if self._waiting.get(key) is replies:
                del self._waiting[key]
            replies.close()

    async def inject(self, body: bytes, scope: Scope) -> None:
        """A message the actor sends its own loop (a replayed handshake message): straight into the
        loop's input; a request's answer is waited for and dropped."""
        message = message_adapter.validate_json(body, by_name=False)
        if isinstance(message, JSONRPCRequest):
            await self.answer(message, scope, _nothing_more, _discard)
            return
        metadata = ServerMessageMetadata(request_context=Request(scope, _nothing_more))
        await self._loop_input.send(SessionMessage(message, metadata=metadata))

    async def _unanswered(self, replies: Replies, request_id: Any) -> None:
        """The loop settled the request without a response: end it with an error, as the transport does."""
        error = ErrorData(code=REQUEST_CANCELLED, message="Request cancelled")
        replies.put(JSONRPCError(jsonrpc="2.0", id=request_id, error=error))
        await trio.lowlevel.checkpoint()

    async def _answer_json(self, replies: Replies, send: Send, request_id: Any) -> None:
        message = await replies.get()
        status, body = (500, _ended(request_id, self.cut_short)) if message is None else (200, _wire(message))
        await send(start(status, json_headers(len(body), session_header(self._session_header))))
        await send(chunk(body, more=False))

    async def _answer_sse(self, replies: Replies, send: Send) -> None:
        await send(start(200, [*SSE_HEADERS, session_header(self._session_header)]))
        while True:
            message: JSONRPCMessage | None = None
            with trio.move_on_after(PING_INTERVAL) as quiet:
                message = await replies.get()
            if quiet.cancelled_caught:
                await send(chunk(SSE_PING, more=True))
                continue
            if message is None:
                # The loop went away without answering: leave the stream unanswered, as the
                # transport's own stream would be; the ASGI handler ends it with the error that
                # fits how the session went.
                return
            await send(chunk(sse_event(_wire(message)), more=True))
            if isinstance(message, JSONRPCResponse | JSONRPCError):
                break
        await send(chunk(b"", more=False))


def _reworded(item: SessionMessage, text: str) -> SessionMessage:
    """The SDK's answer for a request its cancelled loop cut off, with the close reason's words;
    any other message as it is."""
    message = item.message
    if isinstance(message, JSONRPCError) and message.error == CUT_OFF:
        error = ErrorData(code=CONNECTION_CLOSED, message=text)
        return SessionMessage(JSONRPCError(jsonrpc="2.0", id=message.id, error=error), metadata=item.metadata)
    return item


def _wire(message: JSONRPCMessage) -> bytes:
    return message.model_dump_json(by_alias=True, exclude_unset=True).encode()


def _ended(request_id: Any, cut_short: str | None) -> bytes:
    """What the transport answers a request its session's loop ended under (with the request's id),
    or the close reason's words for it."""
    if cut_short is not None:
        error = ErrorData(code=CONNECTION_CLOSED, message=cut_short)
        return _wire(JSONRPCError(jsonrpc="2.0", id=request_id, error=error))
    error = ErrorData(code=INTERNAL_ERROR, message="Session terminated before the request completed")
    return _wire(JSONRPCError(jsonrpc="2.0", id=request_id, error=error))


async def _nothing_more() -> Message:
    """The `receive` of a message the actor sent itself: its body is in hand, no client to leave."""
    await trio.sleep_forever()
    raise AssertionError("unreachable")


async def _discard(_: Message) -> None:
    return None
