"""One MCP session as a trio actor: a task with a mailbox that owns the SDK transport and server loop.

Structure does the bookkeeping. Requests run as children of the actor's request nursery, so the
live request count is that nursery's child count, "wait for in-flight requests" is leaving the
nursery, and the idle deadline is one cancel-scope deadline: `inf` while anything is in flight or
queued, `last completion + idle_timeout` otherwise.

Close ordering (graceful): deregister -> close the mailbox and reject what is left in it -> close
the standalone GET stream -> wait for in-flight requests up to the grace -> cancel the server loop
(the SDK then answers each remaining request with a JSON-RPC error carrying its id) -> after the
kill grace cancel the request nursery -> shielded, bounded `transport.terminate()` -> leave
`connect()`. `kill()` skips straight to cancelling everything; the ASGI handler answers for it.
"""

from __future__ import annotations

import enum
import json
import logging
import math
from typing import Any, Protocol

import attrs
import trio
from mcp.server.lowlevel.server import Server
from mcp.server.runner import serve_loop
from mcp.server.streamable_http import EventStore, StreamableHTTPServerTransport
from starlette.types import Message, Scope, Send

from actors._answer_watch import AnswerWatch, WatchedEventStore
from actors._direct_answers import DirectLane, loop_input_of, parse_request, takes_direct_answer
from actors._faults import FaultPoint, FaultSink, ToolCallTap
from actors._log import SERVING, SessionLog
from actors._messages import RequestTicket, ServeRequest
from actors._polling import PollingTransport
from actors._reasons import CloseReason, CloseStep, RequestOutcome
from actors._state import ActorEvent, ActorState, accepts_requests, next_state

logger = logging.getLogger(__name__)

_HANDSHAKE_METHODS = frozenset(
    {"initialize", "logging/setLevel", "resources/subscribe", "resources/unsubscribe"}
)
_INITIALIZED = b'{"jsonrpc":"2.0","method":"notifications/initialized"}'

CLEANUP_TIMEOUT = 5.0
"""Upper bound for shielded cleanup (transport termination): a hung cleanup must not wedge shutdown."""


class ActorHooks(Protocol):
    """What an actor tells its owner; kept narrow so actors do not depend on the supervisor."""

    def actor_closing(self, actor: SessionActor) -> None:
        """The actor stopped taking requests: forget its id now, so it answers 404 at once."""

    def actor_stopped(self, actor: SessionActor) -> None:
        """The actor task is about to end: nothing of the session is left."""


@attrs.frozen
class TransportOptions:
    """How each session's SDK transport is built."""

    json_response: bool = False
    event_store: EventStore | None = None
    retry_interval: int | None = None


@attrs.frozen
class ActorSettings:
    """What every actor of one supervisor shares: held once, referenced by each actor."""

    server: Server[Any]
    lifespan_state: Any
    hooks: ActorHooks
    transport: TransportOptions = TransportOptions()
    idle_timeout: float | None = None
    mailbox_size: int = 64
    kill_grace: float = 1.0
    hibernate_after: float | None = None
    """Idle seconds after which an actor drops its transport and loop until the next request."""
    direct_answers: bool = True
    """Answer plain requests through the loop's streams (actors/_direct_answers.py); off with a store."""
    faults: FaultSink | None = None


class Admission(enum.Enum):
    """Answer of `SessionActor.submit`: why a request was or was not handed over."""

    ACCEPTED = "accepted"
    GONE = "gone"
    """The actor is closing or closed: answer like an unknown session (404)."""
    BUSY = "busy"
    """The mailbox stayed full for the whole wait: answer 503 with Retry-After."""


def _transport_for(
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


def _ended(ticket: RequestTicket) -> RequestOutcome:
    """How a request that ran to its end ended: answered, or answered to a client that had left."""
    return RequestOutcome.CLIENT_GONE if ticket.client_left else RequestOutcome.COMPLETED


class SessionActor:
    """The actor of one MCP session; created and owned by a supervisor nursery."""

    __slots__ = (
        "_answers",
        "_drain_end",
        "_handshake",
        "_lane",
        "_last_active",
        "_life_scope",
        "_mailbox_receive",
        "_mailbox_scope",
        "_mailbox_send",
        "_requests",
        "_requests_scope",
        "_serve_scope",
        "_settings",
        "_state",
        "_streams",
        "_wake",
        "close_reason",
        "close_steps",
        "created_at",
        "principal",
        "ready",
        "session_id",
        "stopped",
        "transport",
    )

    def __init__(
        self,
        session_id: str,
        settings: ActorSettings,
        *,
        principal: object = None,
        dormant_with: bytes | None = None,
    ) -> None:
        self.session_id = session_id
        self.principal = principal
        self._settings = settings
        self._state = ActorState.STARTING
        self.close_reason: CloseReason | None = None
        self.close_steps: list[CloseStep] = []
        """What closing has done so far, in order: observable close ordering."""
        self._answers: AnswerWatch | None = (
            AnswerWatch() if settings.transport.event_store is not None else None
        )
        """With an event store: what shows that a request whose client left is settled."""
        self.transport: StreamableHTTPServerTransport | None = (
            _transport_for(session_id, settings.transport, self._answers) if dormant_with is None else None
        )
        """The SDK transport while awake; None while hibernating (or born dormant)."""
        self._wake: ServeRequest | None = None
        """The request that woke a hibernating actor, until it is spawned."""
        self._mailbox_send, self._mailbox_receive = trio.open_memory_channel[ServeRequest](
            settings.mailbox_size
        )
        # Cancel scopes exist before the task enters them, so a close or kill that comes while
        # the actor is still starting takes effect the moment it gets there.
        self._life_scope = trio.CancelScope()
        """Cancelled by kill(): ends everything at once."""
        self._mailbox_scope = trio.CancelScope()
        """Around the mailbox loop; its deadline is the idle deadline; cancelled when closing begins."""
        self._serve_scope = trio.CancelScope()
        """Around the SDK server loop; its deadline is the end of the drain grace."""
        self._requests_scope = trio.CancelScope()
        """Around the request nursery; its deadline is the drain grace plus the kill grace."""
        self._requests: trio.Nursery | None = None
        self._drain_end = math.inf
        """When in-flight requests stop being waited for (set by closing); scopes made later keep it."""
        self._lane: DirectLane | None = None
        """While awake with direct answers on: the lane between the transport's streams and the loop."""
        self._streams: set[RequestTicket] | None = None
        """Open GET streams (made on the first): a drain ends them instead of waiting for them."""
        self.ready = trio.Event()
        """Set once the actor runs (or, if it never got there, once it stopped)."""
        self.stopped = trio.Event()
        self.created_at = trio.current_time()
        self._last_active = self.created_at
        """When the last request finished (or the actor started): idle and hibernation count from it."""
        self._handshake: dict[str, bytes] | None = (
            None if dormant_with is None else {"initialize": dormant_with, "initialized": _INITIALIZED}
        )
        """With hibernation on: what to replay on waking, in order (see `_remember`)."""

    @property
    def log(self) -> SessionLog:
        """A logger whose records carry this session's id (made on use: actors log rarely)."""
        return SessionLog(logger, self.session_id)

    # ---------------------------------------------------------------- what others may ask

    @property
    def state(self) -> ActorState:
        return self._state

    @property
    def in_flight(self) -> int:
        """Requests being served now (GET streams included): the request nursery's child count."""
        return len(self._requests.child_tasks) if self._requests is not None else 0

    @property
    def awake(self) -> bool:
        """Whether the actor holds a transport and a server loop now (False while hibernating)."""
        return self._requests is not None

    @property
    def closing(self) -> bool:
        """Closing (or closed): it takes no more requests, and what it still serves is ending."""
        return not accepts_requests(self._state)

    @property
    def dormant(self) -> bool:
        """Hibernating (or born dormant) and still taking requests: no transport, no loop."""
        return self.transport is None and accepts_requests(self._state)

    def answers_directly(self, method: str | None, request_id: object) -> bool:
        """Whether this POST is for the direct lane, not the transport (which reads `receive`)."""
        return self._settings.direct_answers and takes_direct_answer(method, request_id)

    @property
    def open_streams(self) -> int:
        """Standalone GET streams among the in-flight requests."""
        return len(self._streams) if self._streams is not None else 0

    @property
    def queued(self) -> int:
        """Requests waiting in the mailbox or waiting for room in it."""
        stats = self._mailbox_send.statistics()
        return stats.current_buffer_used + stats.tasks_waiting_send

    @property
    def idle_deadline(self) -> float:
        """trio time at which the idle timeout fires (`inf` while busy or without timeout)."""
        return self._mailbox_scope.deadline

    async def submit(self, message: ServeRequest, timeout: float) -> Admission:
        """Hand a request to this actor, waiting at most `timeout` for room in the mailbox.

        From the caller's registry lookup to here there is no checkpoint, and the first thing
        done is to suspend the idle deadline, so the idle timeout cannot reap a session that a
        request was just routed to.
        """
        if not self._admit():
            return Admission.GONE
        admission = Admission.BUSY
        try:
            try:
                # Room in the mailbox is the usual case: no timer needed for it.
                self._mailbox_send.send_nowait(message)
                admission = Admission.ACCEPTED
            except trio.WouldBlock:
                with trio.move_on_after(timeout):
                    await self._mailbox_send.send(message)
                    admission = Admission.ACCEPTED
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            admission = Admission.GONE
        finally:
            # An accepted request may sit between the mailbox and its spawn, counted nowhere:
            # the actor restarts the countdown when it is done with it, not us.
            if admission is not Admission.ACCEPTED:
                self._refresh_idle_deadline(finishing_child=False)
        return admission

    def begin_close(self, reason: CloseReason, grace: float) -> None:
        """Start a graceful close: deregister, stop the mailbox, and set the drain deadlines.

        Synchronous so that, the moment it returns, the id answers 404 and nothing new gets
        in. Calling it again (shutdown after close_session) can only shorten the deadlines.
        """
        first = self._state in (ActorState.STARTING, ActorState.RUNNING)
        self._state = next_state(self._state, ActorEvent.CLOSE)
        if self._state is ActorState.CLOSED:
            return
        if first:
            self.close_reason = reason
            self.log.info("closing (%s, grace %.3gs)", reason.value, grace)
            self._settings.hooks.actor_closing(self)
            self.close_steps.append(CloseStep.DEREGISTERED)
            self._mailbox_send.close()
            self._mailbox_scope.cancel()
            self.close_steps.append(CloseStep.MAILBOX_CLOSED)
        drain_end = min(self._drain_end, trio.current_time() + max(grace, 0.0))
        if drain_end < self._drain_end:
            self._drain_end = drain_end
            if self.transport is not None:
                # Awake: the deadlines of its loop and requests. A dormant actor has neither;
                # should it be waking right now, `_rebuild` gives the new scopes these deadlines.
                self._set_drain_deadlines()
        if grace <= 0 or reason is CloseReason.KILLED:
            # Nothing to wait for: end the streams now as well.
            self._end_streams()

    def touch(self) -> None:
        """Something for this session was handled without waking it: restart its idle countdown."""
        if self._requests is None and accepts_requests(self._state) and not self.queued:
            self._last_active = trio.current_time()
            self._mailbox_scope.deadline = self._idle_deadline()

    def kill(self) -> None:
        """Hard cancellation: no drain. Every in-flight request is answered by its ASGI handler."""
        if self._state is ActorState.CLOSED:
            return
        self.begin_close(CloseReason.KILLED, 0.0)
        self._life_scope.cancel()

    # ---------------------------------------------------------------- the actor task

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The actor's whole life; `task_status.started()` once requests may be handed over.

        Awake, it holds a transport and a server loop. With hibernation on, an idle actor drops
        both and waits on its mailbox alone; the next request wakes it with a fresh transport
        for the same session id, into which the session's handshake is replayed first.
        """
        SERVING.set(self)
        try:
            with self._life_scope:
                dormant = self.transport is None
                if dormant:
                    # Born dormant (quick open): running at once, with nothing to run yet.
                    self._state = next_state(self._state, ActorEvent.STARTED)
                    task_status.started()
                    task_status = trio.TASK_STATUS_IGNORED
                    self.ready.set()
                while not dormant or await self._dormant():
                    if not await self._awake(task_status):
                        break
                    task_status = trio.TASK_STATUS_IGNORED
                    dormant = True
        except Exception:
            # Whatever broke, it breaks this session only.
            self.log.exception("actor failed")
            if self.close_reason is None:
                self.close_reason = CloseReason.CRASHED
        finally:
            if self.close_reason is None:
                # Cancelled from outside (the supervisor nursery itself): a shutdown.
                self.close_reason = CloseReason.SHUTDOWN
                self._settings.hooks.actor_closing(self)
            self._state = next_state(self._state, ActorEvent.STOPPED)
            self._requests = None
            self.close_steps.append(CloseStep.STOPPED)
            self.log.info("stopped (%s)", self.close_reason.value)
            self._settings.hooks.actor_stopped(self)
            self.ready.set()
            self.stopped.set()

    async def _awake(self, task_status: trio.TaskStatus[None]) -> bool:
        """One transport lifetime. True if it ended by hibernating, False if the actor is closing."""
        transport = self.transport if self.transport is not None else self._rebuild()
        hibernating = False
        async with (
            transport.connect() as (read_stream, write_stream),
            trio.open_nursery() as loop_nursery,
        ):
            loop_output: Any = write_stream
            loop_input = loop_input_of(transport)
            if self._settings.direct_answers and loop_input is not None:
                self._lane = DirectLane(
                    self.session_id,
                    loop_input,
                    write_stream,
                    json_response=self._settings.transport.json_response,
                )
                loop_output = self._lane.outbox
            loop_nursery.start_soon(
                self._run_server_loop,
                read_stream if self._settings.faults is None else self._tap(read_stream, loop_nursery),
                loop_output,
            )
            try:
                with self._requests_scope:
                    async with trio.open_nursery() as requests:
                        self._requests = requests
                        if self._state is ActorState.STARTING:
                            self._state = next_state(self._state, ActorEvent.STARTED)
                        task_status.started()
                        self.ready.set()
                        if self._wake is not None:
                            await self._replay_handshake()
                            wake, self._wake = self._wake, None
                            self._spawn(wake)
                            del wake
                        await self._process_mailbox()
                        hibernating = self._may_hibernate()
                        if not hibernating:
                            self._after_mailbox()
                            if self._settings.faults is not None:
                                await self._settings.faults.reached(FaultPoint.DURING_CLOSE, self)
                    # Leaving the nursery waited for every in-flight request.
            finally:
                self._requests = None
                if not hibernating:
                    self.close_steps.append(CloseStep.REQUESTS_DONE)
                # Cancel the loop before terminating, and terminate while the loop still
                # unwinds: its final shielded writes then fail fast instead of blocking on a
                # router that is going away.
                self._serve_scope.cancel()
                if not hibernating:
                    self._note_loop_cancelled()
                with trio.move_on_after(CLEANUP_TIMEOUT, shield=True):
                    await transport.terminate()
                if self._lane is not None:
                    self._lane.loop_ended()
                    self._lane = None
                if self._answers is not None:
                    self._answers.ended()
                if not hibernating:
                    self.close_steps.append(CloseStep.TERMINATED)
        if hibernating:
            self.transport = None
            self.log.debug("hibernating")
        return hibernating

    def _may_hibernate(self) -> bool:
        """The mailbox loop ended on its deadline: hibernate unless the idle timeout is due too."""
        return (
            self._settings.hibernate_after is not None
            and self.close_reason is None
            and trio.current_time() < self._idle_deadline()
        )

    async def _dormant(self) -> bool:
        """Wait, with no transport, for a request to wake the actor; False if it closes instead."""
        self._mailbox_scope = trio.CancelScope(deadline=self._idle_deadline())
        if not accepts_requests(self._state):
            self._mailbox_scope.cancel()
        elif self.queued:
            self._mailbox_scope.deadline = math.inf
        with self._mailbox_scope:
            try:
                self._wake = await self._mailbox_receive.receive()
                return True
            except (trio.EndOfChannel, trio.ClosedResourceError):
                pass
        if self.close_reason is None:
            self.log.info("idle for %ss", self._settings.idle_timeout)
            self.begin_close(CloseReason.IDLE, 0.0)
        self._reject_leftovers()
        return False

    def _rebuild(self) -> StreamableHTTPServerTransport:
        """A fresh transport (a terminated one cannot be reused) and fresh scopes for waking."""
        options = self._settings.transport
        self._answers = AnswerWatch() if options.event_store is not None else None
        transport = self.transport = _transport_for(self.session_id, options, self._answers)
        self._serve_scope = trio.CancelScope()
        self._requests_scope = trio.CancelScope()
        self._mailbox_scope = trio.CancelScope()
        if not accepts_requests(self._state):
            # Closing began while the request that woke it was on its way: drain as told.
            self._mailbox_scope.cancel()
            self._set_drain_deadlines()
        return transport

    def _set_drain_deadlines(self) -> None:
        self._serve_scope.deadline = self._drain_end
        self._requests_scope.deadline = self._drain_end + self._settings.kill_grace

    async def _replay_handshake(self) -> None:
        """Bring the new server loop to where the old one was: initialized, same client, same level."""
        for body in list((self._handshake or {}).values()):
            await self._inject(body, {})

    async def _process_mailbox(self) -> None:
        """Spawn each request as a child task until closing begins or the idle deadline fires."""
        if self._mailbox_scope.deadline == math.inf:
            self._refresh_idle_deadline(finishing_child=False)
        with self._mailbox_scope:
            async for message in self._mailbox_receive:
                self._spawn(message)
                # Do not keep the last request (its scope, closures and context) alive while idle.
                del message

    def _after_mailbox(self) -> None:
        """The mailbox loop ended: by a close, or by the idle deadline (then close now)."""
        if self.close_reason is None:
            self.log.info("idle for %ss", self._settings.idle_timeout)
            self.begin_close(CloseReason.IDLE, 0.0)
        self._reject_leftovers()
        self._end_streams()

    def _spawn(self, message: ServeRequest) -> None:
        """Start the request as a child task inside the caller's contextvars context."""
        ticket = message.ticket
        if ticket.cancel_scope.cancel_called:
            # The client left while the request waited in the mailbox.
            ticket.finish(RequestOutcome.CLIENT_GONE)
            self._refresh_idle_deadline(finishing_child=False)
            return
        if not accepts_requests(self._state):
            # Never hand a request to a transport whose loop has ended.
            ticket.finish(RequestOutcome.REJECTED)
            return
        assert self._requests is not None
        if self._settings.hibernate_after is not None and message.method in _HANDSHAKE_METHODS:
            self._remember(message)
        if ticket.is_stream:
            if self._streams is None:
                self._streams = set()
            if ticket.is_standalone and any(open_.is_standalone for open_ in self._streams):
                # One standalone stream per session, decided here with no checkpoint between the
                # check and the claim (the transport's own check can be raced).
                ticket.finish(RequestOutcome.CONFLICT)
                self._refresh_idle_deadline(finishing_child=False)
                return
            self._streams.add(ticket)
        message.context.run(self._requests.start_soon, self._serve_request, message)

    async def _serve_request(self, message: ServeRequest) -> None:
        SERVING.set(self)
        ticket = message.ticket
        outcome = RequestOutcome.ABORTED
        try:
            with ticket.cancel_scope:
                outcome = await self._handoff(message)
            if ticket.cancel_scope.cancelled_caught:
                # Cancelled through the ticket: the client left, or a drain ended its stream.
                outcome = RequestOutcome.CLIENT_GONE if not ticket.is_stream else RequestOutcome.COMPLETED
                if outcome is RequestOutcome.CLIENT_GONE and message.request_id is not None:
                    await self._cancel_in_loop(message)
        except* Exception:
            # The SDK can raise a group (its own task group) when the loop dies under a request;
            # a Cancelled in the same group still propagates.
            if accepts_requests(self._state):
                self.log.exception("transport raised while serving a request")
                outcome = RequestOutcome.FAILED
            else:
                # The session is closing and its loop went away under the request: that is
                # the close's doing, answered as such, not a failure of the request.
                self.log.debug("transport gave up on a request while the session closed")
                outcome = RequestOutcome.ABORTED
        finally:
            ticket.finish(outcome)
            if self._streams is not None:
                self._streams.discard(ticket)
            self._refresh_idle_deadline(finishing_child=True)

    async def _handoff(self, message: ServeRequest) -> RequestOutcome:
        send = message.send
        if self._settings.faults is not None:
            send = await self._before_handoff(message)
            if not accepts_requests(self._state):
                # Closing began at the fault point: the loop may be gone already.
                return RequestOutcome.REJECTED
        transport = self.transport
        assert transport is not None, "requests are spawned only while awake"
        lane = self._lane
        if (
            lane is not None
            and self.answers_directly(message.method, message.request_id)
            and not transport.is_terminated
        ):
            request = parse_request(message.body)
            if request is not None:
                # The lane waits for the loop's answer even if the client has left.
                await lane.answer(request, message.scope, message.receive, send)
                return _ended(message.ticket)
            # Not a valid request after all: the transport answers it with its own 400.
        answers = self._answers if message.request_id is not None else None
        answered = answers.watch(message.request_id) if answers is not None else None
        try:
            if isinstance(transport, PollingTransport) and message.request_id is not None:
                try:
                    watched = transport.watch(message.request_id, send)
                    await transport.handle_request(message.scope, message.receive, watched)
                finally:
                    transport.unwatch(message.request_id)
            else:
                await transport.handle_request(message.scope, message.receive, send)
            if answered is not None and message.ticket.client_left:
                # The transport stopped streaming when the client left; the request runs on in
                # the loop (stored for resumption) and stays in flight until it is settled.
                await answered.wait()
        finally:
            if answers is not None and answered is not None:
                answers.unwatch(message.request_id, answered)
        return _ended(message.ticket)

    async def _cancel_in_loop(self, message: ServeRequest) -> None:
        """The client left: tell the server loop to cancel the handler, as a client would.

        Cancelling our request task only stops waiting for the answer; the handler runs in the
        SDK's loop. A `notifications/cancelled` through the transport's own front door stops it.
        """
        if not accepts_requests(self._state):
            return  # closing: the loop's own cancellation ends the handler
        body = json.dumps(
            {
                "jsonrpc": "2.0",
                "method": "notifications/cancelled",
                "params": {"requestId": message.request_id, "reason": "client disconnected"},
            }
        ).encode()
        await self._inject(body, message.scope)

    async def _inject(self, body: bytes, like: Scope | dict[str, Any]) -> None:
        """POST `body` to this session's transport from inside the actor, discarding the answer."""
        headers = [
            (name, value)
            for name, value in like.get("headers", ())
            if name not in (b"content-length", b"content-type", b"accept", b"mcp-session-id")
        ]
        headers += [
            (b"content-type", b"application/json"),
            (b"accept", b"application/json, text/event-stream"),
            (b"mcp-session-id", self.session_id.encode()),
            (b"content-length", str(len(body)).encode()),
        ]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": like.get("path", "/mcp"),
            "raw_path": b"",
            "query_string": b"",
            "root_path": "",
            "server": None,
            "client": None,
            **{k: v for k, v in like.items() if k not in ("headers", "method", "path")},
            "headers": headers,
        }
        delivered = False

        async def receive() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await trio.sleep_forever()
            raise AssertionError("unreachable")

        async def discard(_: Message) -> None:
            return None

        with trio.move_on_after(CLEANUP_TIMEOUT, shield=True):
            try:
                if self.transport is not None:
                    await self.transport.handle_request(scope, receive, discard)
            except Exception:
                if self.closing:
                    # The session began closing while the message was on its way: expected.
                    self.log.debug("the closing session's loop did not take a message", exc_info=True)
                else:
                    self.log.exception("could not pass a message to the session's own loop")

    def _remember(self, message: ServeRequest) -> None:
        """Keep what a woken loop must be told again to be where the old one was.

        The initialize (client info, capabilities, protocol version) and `initialized`, the
        latest log level, and the resource subscriptions still in force, in that order.
        """
        if message.method == "initialize":
            self._handshake = {"initialize": message.body, "initialized": _INITIALIZED}
            return
        if self._handshake is None:
            return
        if message.method == "logging/setLevel":
            self._handshake.pop("level", None)
            self._handshake["level"] = message.body
            return
        try:
            uri = str(json.loads(message.body)["params"]["uri"])
        except (ValueError, KeyError, TypeError):
            return
        self._handshake.pop("subscribe:" + uri, None)
        if message.method == "resources/subscribe":
            self._handshake["subscribe:" + uri] = message.body

    async def _run_server_loop(self, read_stream: Any, write_stream: Any) -> None:
        """Run the SDK server loop; if it crashes or ends on its own, only this session ends."""
        try:
            with self._serve_scope:
                if self._settings.faults is None:
                    await self._serve_loop(read_stream, write_stream)
                else:
                    async with trio.open_nursery() as watched:
                        watched.start_soon(self._settings.faults.watch_loop, self)
                        await self._serve_loop(read_stream, write_stream)
                        watched.cancel_scope.cancel()
        except Exception:
            self.log.exception("server loop crashed")
            self._fail(CloseReason.CRASHED)
            return
        finally:
            if self._lane is not None:
                # Requests waiting for a direct answer must not wait for a loop that is gone.
                self._lane.loop_ended()
            if self._serve_scope.cancelled_caught:
                # The drain grace ran out: the SDK has answered what was left with errors.
                self._note_loop_cancelled()
        if not self._serve_scope.cancel_called and self._state is not ActorState.CLOSED:
            self.log.warning("server loop ended on its own")
            self._fail(CloseReason.CRASHED)

    async def _serve_loop(self, read_stream: Any, write_stream: Any) -> None:
        await serve_loop(
            self._settings.server,
            read_stream,
            write_stream,
            lifespan_state=self._settings.lifespan_state,
            session_id=self.session_id,
        )

    # ---------------------------------------------------------------- fault points (tests only)

    def _tap(self, read_stream: Any, loop_nursery: trio.Nursery) -> ToolCallTap:
        faults = self._settings.faults
        assert faults is not None

        def on_tool_call() -> None:
            loop_nursery.start_soon(faults.reached, FaultPoint.TOOL_RUNNING, self)

        return ToolCallTap(read_stream, on_tool_call)

    async def _before_handoff(self, message: ServeRequest) -> Send:
        """Reach INITIALIZE or BEFORE_HANDOFF; return a `send` that reaches the header points."""
        faults = self._settings.faults
        assert faults is not None
        point = FaultPoint.INITIALIZE if message.method == "initialize" else FaultPoint.BEFORE_HANDOFF
        await faults.reached(point, self)
        after_headers = FaultPoint.STREAM_OPEN if message.ticket.is_stream else FaultPoint.AFTER_SSE_HEADERS
        inner = message.send

        async def send(event: Message) -> None:
            await inner(event)
            if event["type"] == "http.response.start" and any(
                name == b"content-type" and value.startswith(b"text/event-stream")
                for name, value in event.get("headers", ())
            ):
                await faults.reached(after_headers, self)

        return send

    def _fail(self, reason: CloseReason) -> None:
        """No loop answers any more: close at once and cancel what is in flight."""
        self.begin_close(reason, 0.0)
        self._requests_scope.cancel()

    # ---------------------------------------------------------------- bookkeeping by structure

    def _admit(self) -> bool:
        """Suspend the idle deadline for a request about to be queued; False if closing.

        A deadline that fired just now for hibernation still admits (the request will wake
        the actor); one that fired for the idle timeout does not (the actor is about to close).
        """
        if not accepts_requests(self._state):
            return False
        if self._mailbox_scope.cancel_called and trio.current_time() >= self._idle_deadline():
            return False
        self._mailbox_scope.deadline = math.inf
        return True

    def _idle_deadline(self) -> float:
        timeout = self._settings.idle_timeout
        return math.inf if timeout is None else self._last_active + timeout

    def _refresh_idle_deadline(self, *, finishing_child: bool) -> None:
        """Restart the idle (or hibernation) countdown if nothing is in flight or queued any more."""
        settings = self._settings
        if not accepts_requests(self._state):
            return
        if self._requests is None:
            # Dormant (or not started): only the idle timeout applies; activity is unchanged.
            self._mailbox_scope.deadline = math.inf if self.queued else self._idle_deadline()
            return
        # A finishing request task is still among the nursery's children while it runs this.
        running = self.in_flight - (1 if finishing_child else 0)
        if running > 0 or self.queued > 0:
            return
        self._last_active = trio.current_time()
        hibernate = settings.hibernate_after
        wait = (
            settings.idle_timeout if hibernate is None else min(hibernate, settings.idle_timeout or math.inf)
        )
        if wait is not None:
            self._mailbox_scope.deadline = self._last_active + wait

    def _reject_leftovers(self) -> None:
        """Answer what is still in the mailbox as rejected: it never reached the transport."""
        while True:
            try:
                message = self._mailbox_receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
            message.ticket.finish(RequestOutcome.REJECTED)
        self._mailbox_receive.close()

    def _end_streams(self) -> None:
        """End the standalone GET stream(s): a drain must not wait for them."""
        if CloseStep.STREAMS_ENDED not in self.close_steps:
            self.close_steps.append(CloseStep.STREAMS_ENDED)
        for ticket in list(self._streams or ()):
            ticket.cancel_scope.cancel()

    def _note_loop_cancelled(self) -> None:
        if self._state is not ActorState.RUNNING and CloseStep.LOOP_CANCELLED not in self.close_steps:
            self.close_steps.append(CloseStep.LOOP_CANCELLED)
