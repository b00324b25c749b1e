"""One wake of a session: a fresh SDK transport, its server loop, direct answers and request nursery.

An actor makes a new incarnation each time it wakes (the first start included) and drops it when
it hibernates or closes. Everything here lives exactly as long as that: its cancel scopes are new
by construction, so nothing of a previous wake (a cancelled scope, a finished loop) can leak in.
Requests run as children of its request nursery; the live request count is that nursery's size.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import attrs
import trio
from mcp.server.connection import Connection
from mcp.server.streamable_http import StreamableHTTPServerTransport
from mcp.shared.dispatcher import Outbound

from actors._answer_watch import AnswerWatch, WatchedEventStore
from actors._asyncio import AsyncioBridge
from actors._direct_answers import DirectAnswers, LoopOutbox
from actors._faults import FaultSink, FaultTarget, tap_tool_calls
from actors._inject import injected_scope, post_to_transport
from actors._log import SessionLog
from actors._messages import RequestTicket, ServeRequest
from actors._polling import PollingTransport
from actors._reasons import CloseReason
from actors._record import SessionRecord
from actors._sdk import loop_input_of, negotiated, seed_handshake, serve_handshake_loop
from actors._settings import CLEANUP_TIMEOUT, ActorSettings, TransportOptions
from actors._standalone import LastingOutbound, StandaloneStream, StreamSlot
from actors._tracing import context_of, session_span


class Owner(FaultTarget, Protocol):
    """What an incarnation tells (and asks) the actor it belongs to."""

    @property
    def log(self) -> SessionLog: ...

    @property
    def closing(self) -> bool: ...

    def begin_close(self, reason: CloseReason, grace: float) -> None:
        """Start closing the session (the loop crashed or ended on its own: only this one ends)."""

    def loop_cancelled(self) -> None:
        """The server loop was cancelled (the drain grace ran out, or the incarnation ended)."""

    def requests_done(self) -> None:
        """Every request task of the incarnation has ended; the loop is cancelled next."""

    def request_finished(self, ticket: RequestTicket) -> None:
        """A request task is about to end (it is still among the nursery's children)."""

    @property
    def streams(self) -> StreamSlot:
        """The standalone stream the actor holds, if one is open."""


def transport_for(
    session_id: str, options: TransportOptions, answers: AnswerWatch | None
) -> StreamableHTTPServerTransport:
    # Resumable streams allow SSE polling, whose close must not lose the priming event.
    kind = StreamableHTTPServerTransport if options.event_store is None else PollingTransport
    store = options.event_store
    return kind(
        mcp_session_id=session_id,
        is_json_response_enabled=options.json_response,
        event_store=WatchedEventStore(store, answers) if store is not None and answers is not None else store,
        # Host/Origin checks run once at the front of the ASGI app, for every request.
        security_settings=None,
        retry_interval=options.retry_interval,
        idle_timeout=None,
    )


def handshake_of(record: SessionRecord) -> tuple[tuple[Any, str], bool] | None:
    """What a wake's fresh connection starts with: the client's handshake as the SDK commits it,
    and whether the client sent `initialized` (None: replay it through the loop instead)."""
    params = record.initialize_params
    found = negotiated(params) if params is not None else None
    return (found, record.initialized) if found is not None else None


@attrs.define(eq=False)
class Incarnation:
    """The live objects of one wake, and the scopes that end them."""

    _session_id: str = attrs.field(alias="session_id")
    _settings: ActorSettings = attrs.field(alias="settings")
    _owner: Owner = attrs.field(alias="owner")
    handshake: tuple[tuple[Any, str], bool] | None = attrs.field(default=None, kw_only=True)
    """A wake's handshake as the SDK commits it, and whether the client sent `initialized`: set
    on the fresh loop's connection before it reads anything (`_seen`), so the replay leaves it out."""
    watch: AnswerWatch | None = attrs.field(init=False)
    """With an event store: what shows that a request whose client left is settled."""
    transport: StreamableHTTPServerTransport = attrs.field(init=False)
    serve_scope: trio.CancelScope = attrs.field(init=False, factory=trio.CancelScope)
    """Around the SDK server loop; its deadline is the end of the drain grace."""
    requests_scope: trio.CancelScope = attrs.field(init=False, factory=trio.CancelScope)
    """Around the request nursery; its deadline is the drain grace plus the kill grace."""
    _requests: trio.Nursery | None = attrs.field(init=False, default=None)
    _answers: DirectAnswers | None = attrs.field(init=False, default=None)
    """The loop's own streams, when the SDK lets us reach its input: direct answers (if on) and
    the replay at wake go through them."""
    streams: set[RequestTicket] | None = attrs.field(init=False, default=None)
    """Open GET streams (made with the first): a drain ends them instead of waiting for them."""
    _posts: set[trio.CancelScope] = attrs.field(init=False, factory=set)
    """Messages on their way to the loop from inside the actor; the loop's end lets them go."""
    _loop_ended: bool = attrs.field(init=False, default=False)
    _outbound: LastingOutbound | None = attrs.field(init=False, default=None)
    """The loop's standalone channel, told when the loop is gone (`_standalone.LastingOutbound`)."""
    _connection: Connection | None = attrs.field(init=False, default=None)
    _loop_outbox: LoopOutbox | None = attrs.field(init=False, default=None)
    _cut_short: str | None = attrs.field(init=False, default=None)
    """The SDK's connection object of this wake's loop: what a server keeps per connection is on it."""

    def __attrs_post_init__(self) -> None:
        self.watch = AnswerWatch() if self._settings.transport.event_store is not None else None
        self.transport = transport_for(self._session_id, self._settings.transport, self.watch)

    @property
    def running(self) -> bool:
        """Requests may be started (between entering and leaving `live`)."""
        return self._requests is not None

    @property
    def in_flight(self) -> int:
        """Requests being served now (GET streams included): the request nursery's child count."""
        return len(self._requests.child_tasks) if self._requests is not None else 0

    @property
    def requests_pending(self) -> int:
        """Requests being served, GET streams aside: what the per-session cap counts."""
        return self.in_flight - len(self.streams or ())

    @property
    def direct(self) -> DirectAnswers | None:
        """Direct answers for client requests, if they are on."""
        return self._answers if self._settings.direct_answers else None

    @property
    def faults(self) -> FaultSink | None:
        return self._settings.faults

    @property
    def asyncio(self) -> AsyncioBridge | None:
        return self._settings.asyncio

    def set_drain_deadlines(self, drain_end: float) -> None:
        self.serve_scope.deadline = drain_end
        self.requests_scope.deadline = drain_end + self._settings.kill_grace

    def claim_stream(self, ticket: RequestTicket) -> bool:
        """Count a GET stream in; False for a second standalone one (one per session).

        Decided here with no checkpoint between the check and the claim (the transport's own
        check can be raced).
        """
        if self.streams is None:
            self.streams = set()
        elif ticket.is_standalone and any(open_.is_standalone for open_ in self.streams):
            return False
        self.streams.add(ticket)
        return True

    def end_streams(self) -> None:
        for ticket in list(self.streams or ()):
            ticket.cancel_scope.cancel()

    def start_request(
        self, serve: Callable[..., Awaitable[None]], owner: Owner, message: ServeRequest
    ) -> None:
        """Run `serve(self, owner, message)` in the request nursery, in the request's own context."""
        assert self._requests is not None, "requests start only while the incarnation runs"
        message.context.run(self._requests.start_soon, serve, self, owner, message)

    async def live(self, body: Callable[[], Awaitable[bool]]) -> bool:
        """Connect the transport, run the loop, and run `body` as the request nursery's own task.

        Returns what `body` does, once every request has ended, the loop is cancelled and the
        transport terminated.
        """
        transport = self.transport
        async with transport.connect() as (read_stream, write_stream), trio.open_nursery() as loop_nursery:
            loop_output = self._outbox(write_stream)
            faults = self._settings.faults
            loop_input_stream = (
                read_stream
                if faults is None
                else tap_tool_calls(read_stream, faults, self._owner, loop_nursery)
            )
            loop_nursery.start_soon(self._run_server_loop, loop_input_stream, loop_output)
            # Cancelled (a kill grace ran out, or the loop failed) before `body` returned: closing.
            result = False
            try:
                with self.requests_scope:
                    async with trio.open_nursery() as requests:
                        self._requests = requests
                        result = await body()
            finally:
                self._requests = None
                self._owner.requests_done()
                # Cancel the loop before terminating, and terminate while the loop still unwinds:
                # its final shielded writes then fail fast instead of blocking on a router that is
                # going away.
                self.serve_scope.cancel()
                # Traced when it is a hibernation (a close is traced whole, by `Closing`).
                tracer = self._settings.tracer if result else None
                with session_span(tracer, "mcp.session.hibernate", self._session_id, own_trace=True):
                    with trio.move_on_after(CLEANUP_TIMEOUT, shield=True):
                        await transport.terminate()
                    self._loop_gone()
        return result

    def _outbox(self, write_stream: Any) -> Any:
        """What the loop writes to: the transport's stream, or ours in front of it (direct answers,
        a standalone stream the actor holds)."""
        loop_input = loop_input_of(self.transport)
        if loop_input is not None:
            json_response = self._settings.transport.json_response
            self._answers = DirectAnswers(self._session_id, loop_input, json_response=json_response)
            self._answers.cut_short = self._cut_short
        held = self._owner.streams.held if self._settings.holds_streams else None
        self._loop_outbox = LoopOutbox(self._answers, write_stream, held, cut_short=self._cut_short)
        return self._loop_outbox

    def say_when_cut(self, text: str) -> None:
        """Calls the loop's cancellation cuts off are told `text` (the close reason's words)."""
        self._cut_short = text
        if self._loop_outbox is not None:
            self._loop_outbox.cut_short = text
        if self._answers is not None:
            self._answers.cut_short = text

    @property
    def keeps_state(self) -> bool:
        """The server keeps state on this wake's connection (`Connection.state`), which a fresh loop
        would not have: the session must not hibernate (or be evicted)."""
        connection = self._connection
        if connection is None or not connection.state:
            return False
        if self._settings.first_time("connection_state"):
            self._owner.log.warning(
                "the server keeps per-connection state (Connection.state: %s): its sessions that "
                "hold some stay awake instead of hibernating (said once)",
                ", ".join(sorted(map(str, connection.state))[:5]),
            )
        return True

    def _loop_stopped(self) -> None:
        """The server loop has ended: what waits for its answers (direct ones, posts) stops waiting."""
        self._loop_ended = True
        if self._outbound is not None:
            self._outbound.loop_ended = True
        for post in self._posts:
            post.cancel()
        if self._answers is not None:
            self._answers.loop_ended()

    def _loop_gone(self) -> None:
        """No loop will answer any more, and the transport is terminated: nothing may wait for it."""
        self._loop_stopped()
        if self.watch is not None:
            self.watch.ended()

    async def replay(self, record: SessionRecord, woken_by: contextvars.Context) -> None:
        """Bring the fresh loop to where `record` says the session was: initialized, same client,
        same level (the handshake left out when the connection was given it: `handshake`).

        Straight into the loop's input where the SDK lets us reach it: nothing of the replay then
        touches the transport (no priming event, nothing in an event store, no event ids used up).
        Traced as the wake, a child of the request that woke the session (`woken_by` its context).
        """
        bodies = record.replay(handshake=self.handshake is None)
        tracer = self._settings.tracer
        parent = context_of(woken_by) if tracer is not None else None
        attributes = {"mcp.session.replayed": len(bodies)}
        with session_span(tracer, "mcp.session.wake", self._session_id, parent=parent, attributes=attributes):
            for body in bodies:
                if self._loop_ended or self._owner.closing:
                    return  # closing began during the wake: the loop will not serve what follows
                await self.post(body, {}, into_loop=self._answers is not None)

    async def post(self, body: bytes, like: Mapping[str, Any], *, into_loop: bool = False) -> None:
        """POST `body` to this incarnation's transport from inside the actor, discarding the answer
        (`into_loop`: to the loop's input itself, past the transport)."""
        owner = self._owner
        if self._loop_ended:
            return
        # Shielded (a cancelled request still tells the loop), bounded, and let go with the loop:
        # a loop that ends never answers, and the caller must not wait for it.
        try:
            with trio.move_on_after(CLEANUP_TIMEOUT, shield=True) as scope:
                self._posts.add(scope)
                try:
                    if into_loop and self._answers is not None:
                        await self._answers.inject(body, injected_scope(body, self._session_id, like))
                    else:
                        await post_to_transport(self.transport, body, self._session_id, like)
                finally:
                    self._posts.discard(scope)
        except Exception:  # a group too: the SDK's task group, less our own cancellation
            if owner.closing or self._loop_ended:
                # The session began closing while the message was on its way: expected.
                owner.log.debug("the closing session's loop did not take a message", exc_info=True)
            else:
                owner.log.exception("could not pass a message to the session's own loop")

    async def _run_server_loop(self, read_stream: Any, write_stream: Any) -> None:
        """Run the SDK server loop; if it crashes or ends on its own, only this session ends."""
        owner = self._owner
        try:
            with self.serve_scope:
                faults = self._settings.faults
                if faults is None:
                    await self._serve_loop(read_stream, write_stream)
                else:
                    async with trio.open_nursery() as watched:
                        watched.start_soon(faults.watch_loop, owner)
                        await self._serve_loop(read_stream, write_stream)
                        watched.cancel_scope.cancel()
        except Exception:
            owner.log.exception("server loop crashed")
            self._fail()
            return
        finally:
            self._loop_stopped()
            if self.serve_scope.cancelled_caught:
                # The drain grace ran out: the SDK has answered what was left with errors.
                owner.loop_cancelled()
        if not self.serve_scope.cancel_called:
            owner.log.warning("server loop ended on its own")
            self._fail()

    def _fail(self) -> None:
        """No loop answers any more: close at once and cancel what is in flight."""
        self._owner.begin_close(CloseReason.CRASHED, 0.0)
        self.requests_scope.cancel()

    async def _serve_loop(self, read_stream: Any, write_stream: Any) -> None:
        held = self._owner.streams.held if self._settings.holds_streams else None
        await serve_handshake_loop(
            self._settings.server,
            read_stream,
            write_stream,
            lifespan_state=self._settings.lifespan_state,
            session_id=self._session_id,
            standalone=functools.partial(self._standalone_channel, held),
            seen=self._seen,
        )

    def _standalone_channel(
        self, held: Callable[[], StandaloneStream | None] | None, dispatcher: Outbound
    ) -> Outbound:
        self._outbound = LastingOutbound(dispatcher, held)
        return self._outbound

    def _seen(self, connection: Connection) -> None:
        self._connection = connection
        if self.handshake is not None:
            seed_handshake(connection, *self.handshake)
