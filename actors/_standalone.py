"""The session's standalone GET stream, held by its actor rather than by one incarnation.

Real clients (the Python and TypeScript SDK clients) open the standalone GET stream right after
`initialize` and keep it for the whole session. Served by the SDK transport, that stream is a
request in flight for as long as it is open, so such a session never hibernates, is never
evicted and never times out. Held here instead, the stream needs no transport and no server loop:
the ASGI handler that opened it writes what arrives (and a ping comment when quiet), and whichever
incarnation is awake sends the loop's messages that belong to no request to it (the transport's
router would send them to its GET stream). In between, the session may hibernate.

Without an event store only: with one, event ids and replay are the transport's, and the stream
stays a request served by it (it then holds the session awake, as in the SDK).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

import attrs
import trio
from mcp.shared.dispatcher import CallOptions, Outbound
from mcp.shared.message import ServerMessageMetadata, SessionMessage
from mcp_types import JSONRPCError, JSONRPCResponse
from starlette.types import Send

from actors._faults import FaultPoint, FaultSink, FaultTarget
from actors._frames import SSE_HEADERS, SSE_PING, chunk, notification_body, session_header, sse_event, start
from actors._idle import IdleClock
from actors._messages import Admission, RequestTicket
from actors._reasons import CLOSE_POLICY, CloseReason
from actors._state import ActorState

PING_INTERVAL = 15.0
"""Seconds without an event after which an SSE stream (this one, or a direct answer's) gets a
comment line, as sse-starlette sends: proxies that drop quiet connections keep it."""

BUFFER = 16
"""Messages waiting for a slow client before the loop waits too (the SDK transport's own buffer)."""


@attrs.define(eq=False)
class StandaloneStream:
    """One open standalone GET stream: its frames on their way, and the ticket that ends it.

    The ticket's cancel scope is the stream's end: the client leaving, and every close of the
    session, cancel it. `retry_ms`, when set before the end, is sent as an SSE `retry` hint: the
    session lives on elsewhere (evicted, moved), and the client is to reconnect.
    """

    ticket: RequestTicket
    _owner: FaultTarget = attrs.field(alias="owner")
    """The actor: it names the session, and a fault plan may act on it once the stream is open."""
    _faults: FaultSink | None = attrs.field(default=None, alias="faults")
    _sender: trio.MemorySendChannel[bytes] = attrs.field(init=False)
    _frames: trio.MemoryReceiveChannel[bytes] = attrs.field(init=False)
    retry_ms: int | None = attrs.field(init=False, default=None)

    def __attrs_post_init__(self) -> None:
        self._sender, self._frames = trio.open_memory_channel[bytes](BUFFER)

    @property
    def open(self) -> bool:
        return not self.ticket.cancel_scope.cancel_called

    async def put(self, data: bytes) -> bool:
        """Queue one JSON-RPC message (its JSON text) for the client; False if the stream has ended."""
        if not self.open:
            return False
        try:
            await self._sender.send(sse_event(data))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return False
        return True

    def offer(self, data: bytes) -> bool:
        """Queue one message without waiting (a send from outside the loop); False if the stream
        has ended or its client is that far behind (the message is then dropped)."""
        if not self.open:
            return False
        try:
            self._sender.send_nowait(sse_event(data))
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            return False
        return True

    def end(self, *, retry_ms: int | None = None) -> None:
        """End the stream (a close, or the session leaving this node): the pump stops now."""
        if retry_ms is not None and self.open:
            self.retry_ms = retry_ms
        self.ticket.cancel_scope.cancel()

    async def pump(self, send: Send) -> None:
        """Write the stream's head, then its events (a ping when quiet), until the stream ends.

        Runs in the ASGI handler's task; the caller ends the body.
        """
        await send(start(200, [*SSE_HEADERS, session_header(self._owner.session_id)]))
        try:
            with self.ticket.cancel_scope:
                if self._faults is not None:
                    await self._faults.reached(FaultPoint.STREAM_OPEN, self._owner)
                while True:
                    with trio.move_on_after(PING_INTERVAL) as quiet:
                        frame = await self._frames.receive()
                    await send(chunk(SSE_PING if quiet.cancelled_caught else frame, more=True))
        finally:
            self._frames.close()
            self._sender.close()
        if self.retry_ms is not None:
            await send(chunk(b"retry: %d\r\n\r\n" % self.retry_ms, more=True))


RETRY_MS = 1000
"""The reconnect delay a stream that ends while its session lives on (evicted, moved, a node
stopping) suggests to the client: the Python SDK client's own default, said explicitly."""


def for_no_request(item: SessionMessage) -> bool:
    """A loop output that belongs to no request: the transport would send it on its GET stream.

    A response with an id belongs to its request, as does a message related to one; a notice, a
    server-to-client request or an error with no id does not.
    """
    message = item.message
    if isinstance(message, JSONRPCResponse | JSONRPCError) and message.id is not None:
        return False
    metadata = item.metadata
    return not (isinstance(metadata, ServerMessageMetadata) and metadata.related_request_id is not None)


class StreamOwner(FaultTarget, Protocol):
    """The actor, as its stream slot sees it."""

    @property
    def state(self) -> ActorState: ...


@attrs.define(eq=False)
class StreamSlot:
    """An actor's one standalone stream: taking it, letting it go, ending it.

    What holding a stream means to the idle clock is the clock's (`IdleClock.hold_stream`); the
    actor hears of every change (`changed`).
    """

    _clock: IdleClock = attrs.field(alias="clock")
    _owner: StreamOwner = attrs.field(alias="owner")
    _faults: FaultSink | None = attrs.field(alias="faults")
    _changed: Callable[[], None] = attrs.field(alias="changed", kw_only=True)
    stream: StandaloneStream | None = attrs.field(init=False, default=None)

    @property
    def count(self) -> int:
        return 1 if self.stream is not None else 0

    def held(self) -> StandaloneStream | None:
        """Where the loop's messages for no request go (the transport's GET stream otherwise)."""
        return self.stream

    def open(self, ticket: RequestTicket) -> StandaloneStream | Admission:
        """Hold the client's new stream: no wake, no request in flight. GONE if the actor takes
        nothing now; CONFLICT while one is open (one per session, as the SDK allows)."""
        if not self._clock.open_to(self._owner.state):
            return Admission.GONE
        if self.stream is not None:
            return Admission.CONFLICT
        self.stream = StandaloneStream(ticket, self._owner, self._faults)
        self._clock.hold_stream(True)
        self._changed()
        return self.stream

    def release(self, stream: StandaloneStream) -> None:
        """The stream's handler is done with it (the client left, or the stream was ended)."""
        if self.stream is stream:
            self.stream = None
            self._clock.hold_stream(False)
            self._changed()

    def end(self, reason: CloseReason | None) -> None:
        """End the open stream, if any; where the session lives on, the client is to reconnect."""
        if self.stream is not None:
            retry = reason is not None and CLOSE_POLICY[reason].retry
            self.stream.end(retry_ms=RETRY_MS if retry else None)


@attrs.define(eq=False)
class LastingOutbound:
    """A server loop's standalone channel (its connection's `outbound`) that outlives the loop.

    A server may keep the SDK's per-request session object and notify through it later (a
    resource changed, a list changed). Once the loop has gone (the session hibernated) the SDK's
    dispatcher drops such a notification; this sends it to the stream the actor holds instead, as
    the live loop would have. A server-to-client request still needs the loop (its answer comes
    back to it) and fails as the SDK makes it fail.
    """

    _dispatcher: Outbound = attrs.field(alias="dispatcher")
    _held: Callable[[], StandaloneStream | None] | None = attrs.field(alias="held")
    loop_ended: bool = attrs.field(init=False, default=False)

    async def send_raw_request(
        self, method: str, params: Mapping[str, Any] | None, opts: CallOptions | None = None
    ) -> dict[str, Any]:
        return await self._dispatcher.send_raw_request(method, params, opts)

    async def notify(
        self, method: str, params: Mapping[str, Any] | None, opts: CallOptions | None = None
    ) -> None:
        if not self.loop_ended or self._held is None:
            await self._dispatcher.notify(method, params, opts)
            return
        stream = self._held()
        if stream is not None:
            stream.offer(notification_body(method, params))
        await trio.lowlevel.checkpoint()
