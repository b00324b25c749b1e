"""One MCP session as a trio actor: a task with a mailbox, alive from open to close.

The actor owns the session's lifecycle: its mailbox, its record (`SessionRecord`), its idle
clock, close ordering, and the hibernate/wake loop. What is live while it is awake (transport,
server loop, direct answers, request nursery) is an `Incarnation`, made fresh for every wake.
Every rule about what happens next is a pure function in `_state`.

Close ordering (graceful): deregister -> close the mailbox and reject what is left in it -> close
the standalone GET stream -> wait for in-flight requests up to the grace -> cancel the server loop
(the SDK then answers each remaining request with a JSON-RPC error carrying its id) -> after the
kill grace cancel the request nursery -> shielded, bounded `transport.terminate()` -> stop.
`kill()` skips straight to cancelling everything; the ASGI handler answers for it.
"""

from __future__ import annotations

import functools
import logging
import math
import time

import attrs
import trio
from mcp.server.streamable_http import StreamableHTTPServerTransport

from actors._closing import Closing
from actors._faults import FaultPoint
from actors._idle import IdleClock
from actors._incarnation import Incarnation, handshake_of
from actors._log import SERVING, SessionLog
from actors._mailbox import Mailbox
from actors._messages import Admission, ServeRequest
from actors._reasons import CLOSE_POLICY, CloseReason, CloseStep, RequestOutcome
from actors._record import Principal, SessionRecord
from actors._request_task import serve_request
from actors._settings import ActorSettings
from actors._standalone import StreamSlot
from actors._state import (
    ActorEvent,
    ActorState,
    Residence,
    ResidenceEvent,
    accepts_requests,
    ends_streams_at_once,
    idle_close_reason,
    next_residence,
    next_state,
    transition,
)
from actors._statistics import ActorStatistics

logger = logging.getLogger(__name__)


@attrs.define(eq=False, repr=False)
class SessionActor:
    """The actor of one MCP session, owned by a supervisor nursery (`residence=Residence.DORMANT`:
    born with no incarnation, to be woken from `record` by its first request)."""

    _record: SessionRecord = attrs.field(alias="record")
    _settings: ActorSettings = attrs.field(alias="settings")
    residence: Residence = attrs.field(default=Residence.AWAKE, kw_only=True)
    """Awake, dormant, hibernating or evicted: only the actor's moves (actors/_state.py) set it."""
    session_id: str = attrs.field(
        init=False, default=attrs.Factory(lambda self: self._record.session_id, takes_self=True)
    )
    close_reason: CloseReason | None = attrs.field(init=False, default=None)
    started_at: float = attrs.field(init=False, factory=trio.current_time)
    """When this actor started, by the trio clock (the record's `created_at` is the epoch's)."""
    ready: trio.Event = attrs.field(init=False, factory=trio.Event)
    """Set once the actor runs (or, if it never got there, once it stopped)."""
    stopped: trio.Event = attrs.field(init=False, factory=trio.Event)
    state: ActorState = attrs.field(init=False, default=ActorState.STARTING)
    """Read it; only the actor's transitions (actors/_state.py) set it."""
    _clock: IdleClock = attrs.field(init=False)
    _mailbox: Mailbox = attrs.field(init=False)
    _closing: Closing = attrs.field(init=False)
    streams: StreamSlot = attrs.field(init=False)
    """The client's standalone GET stream, held here rather than by an incarnation (`_standalone`)."""
    _incarnation: Incarnation | None = attrs.field(init=False, default=None)
    _wake: ServeRequest | None = attrs.field(init=False, default=None)
    """The request that woke a hibernating actor, until it is spawned."""
    _life_scope: trio.CancelScope = attrs.field(init=False, factory=trio.CancelScope)
    """Cancelled by kill(): ends everything at once."""

    def __attrs_post_init__(self) -> None:
        self._clock = IdleClock.of(self._settings)
        self._mailbox = Mailbox(self._settings.mailbox_size)
        refresh = functools.partial(self._refresh_idle, finishing_child=False)
        self.streams = StreamSlot(self._clock, self, self._settings.faults, changed=refresh)
        self._closing = Closing(self._mailbox, self._clock, self.streams)

    @property
    def close_steps(self) -> list[CloseStep]:
        """What closing has done so far, in order: observable close ordering."""
        return self._closing.steps

    @property
    def log(self) -> SessionLog:
        """A logger whose records carry this session's id (made on use: actors log rarely)."""
        return SessionLog(logger, self.session_id)

    @property
    def principal(self) -> Principal | None:
        return self._record.principal

    @property
    def transport(self) -> StreamableHTTPServerTransport | None:
        """The SDK transport of the current incarnation (None while dormant)."""
        return self._incarnation.transport if self._incarnation is not None else None

    @property
    def closing(self) -> bool:
        """Closing (or closed): it takes no more requests, and what it still serves is ending."""
        return not accepts_requests(self.state)

    @property
    def record(self) -> SessionRecord:
        """The session as a value, as of now."""
        idle_for = trio.current_time() - self._clock.last_active
        return attrs.evolve(self._record, last_active_at=time.time() - max(idle_for, 0.0))

    def statistics(self) -> ActorStatistics:
        """One consistent, frozen view of the actor (as trio's channel statistics)."""
        queued = self._mailbox.queued + (self._wake is not None)  # a waking request waits too
        seen = (self.state, self._incarnation, queued, self._clock.deadline, self.close_reason)
        return ActorStatistics.of(*seen, held_streams=self.streams.count)

    async def submit(self, message: ServeRequest, timeout: float, limit: int | None = None) -> Admission:
        """Hand a request over, waiting at most `timeout` for room in the mailbox.

        No checkpoint from the caller's registry lookup to the idle clock's suspension: the idle
        timeout cannot reap a session that a request was just routed to.
        """
        incarnation = self._incarnation
        running = incarnation.requests_pending if incarnation is not None else 0
        if limit is not None and not message.ticket.is_stream and running + self._mailbox.queued >= limit:
            return Admission.TOO_MANY if accepts_requests(self.state) else Admission.GONE
        if not self._clock.admit(self.state):
            return Admission.GONE
        if self._mailbox.waiting_reader:
            # Awake, nothing queued: start it here, as the mailbox loop would (same order, same parent).
            self._spawn(message)
            return Admission.ACCEPTED
        admission = Admission.BUSY
        try:
            admission = await self._mailbox.put(message, timeout)
        finally:
            # An accepted request may sit between the mailbox and its spawn, counted nowhere:
            # the actor restarts the countdown when it is done with it, not us.
            if admission is not Admission.ACCEPTED:
                self._refresh_idle(finishing_child=False)
        return admission

    def took_without_waking(self, method: str | None, params: object) -> None:
        """A message was answered for this dormant session without waking it: note it, restart its clock."""
        self._note(method, params)
        if self._incarnation is None and accepts_requests(self.state) and not self._mailbox.queued:
            self._clock.quiet(awake=False)

    def begin_close(self, reason: CloseReason, grace: float) -> None:
        """Start a graceful close: deregister, stop the mailbox, set the drain deadlines.

        Synchronous: when it returns the id answers 404. Again, it can only shorten the deadlines.
        """
        step = transition(self.state, ActorEvent.CLOSE)
        self.state = step.state
        if self.state is ActorState.CLOSED:
            return
        if step.first_close:
            self.close_reason = reason
            self._closing.began(reason, self._incarnation, self._settings.tracer, self.session_id)
            if reason is CloseReason.EVICTED:
                self.residence = next_residence(self.residence, ResidenceEvent.EVICTED)
            level = min(CLOSE_POLICY[reason].log_level, logging.INFO)
            if logger.isEnabledFor(level):  # 10,000 closing at shutdown: no adapter each unless it logs
                self.log.log(level, "closing (%s, grace %.3gs)", reason.value, grace)
        self._closing.take(step.close_steps, functools.partial(self._settings.hooks.actor_closing, self))
        self._closing.tighten(grace, self._incarnation)
        if ends_streams_at_once(reason, grace):
            self._closing.end_streams(self._incarnation, reason)

    def kill(self, reason: CloseReason = CloseReason.KILLED) -> None:
        """Hard cancellation: no drain. Every in-flight request is answered by its ASGI handler."""
        if self.state is ActorState.CLOSED:
            return
        self.begin_close(reason, 0.0)
        self._life_scope.cancel()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The actor's whole life (`task_status.started()` once it takes requests): awake with an
        incarnation, or hibernating on its mailbox until a request wakes a fresh one from the record."""
        SERVING.set(self)
        try:
            with self._life_scope:
                if self.residence is not Residence.AWAKE:
                    self._started(task_status)
                while self.residence is Residence.AWAKE or await self._wait_dormant():
                    await self._live_once(task_status)
                    if self.residence is not Residence.HIBERNATING:
                        break
        except Exception:
            # Whatever broke, it breaks this session only.
            self.log.exception("actor failed")
            if self.close_reason is None:
                self.close_reason = CloseReason.CRASHED
        finally:
            self._finish()

    async def _live_once(self, task_status: trio.TaskStatus[None]) -> None:
        """One incarnation's life, in a frame of its own: nothing of it outlives it while dormant."""
        incarnation = self._incarnate()
        try:  # returns once every request ended, the loop is cancelled, the transport ended
            await incarnation.live(functools.partial(self._awake, incarnation, task_status))
        finally:
            self._retire()

    def _started(self, task_status: trio.TaskStatus[None]) -> None:
        if self.state is ActorState.STARTING:
            self.state = next_state(self.state, ActorEvent.STARTED)
        if not self.ready.is_set():  # once: later incarnations find the actor ready
            task_status.started()
            self.ready.set()

    def _finish(self) -> None:
        if self._wake is not None:
            # The actor ended between taking the request that woke it and spawning it.
            self._wake.ticket.finish(RequestOutcome.REJECTED)
            self._wake = None
        if self.close_reason is None:
            # Cancelled from outside (the supervisor nursery itself): a shutdown.
            self.close_reason = CloseReason.SHUTDOWN
            self._settings.hooks.actor_closing(self)
        self.state = next_state(self.state, ActorEvent.STOPPED)
        self.streams.end(self.close_reason)
        self._incarnation = None
        self._closing.took(CloseStep.STOPPED)
        self._settings.hooks.actor_stopped(self)
        self.ready.set()
        self.stopped.set()

    def _incarnate(self) -> Incarnation:
        """A fresh incarnation (its scopes new by construction), with the drain deadlines if closing."""
        handshake = handshake_of(self._record) if self._wake is not None else None
        incarnation = self._incarnation = Incarnation(
            self.session_id, self._settings, self, handshake=handshake
        )
        self._closing.carry_over(incarnation)
        self._clock.fresh_scope(closing=self.close_reason is not None, queued=False, dormant=False)
        if self.residence is not Residence.AWAKE:
            self.residence = next_residence(self.residence, ResidenceEvent.WOKE)
        return incarnation

    def _retire(self) -> None:
        """The incarnation has ended: by hibernating (the record is all that is left), or closing."""
        self._incarnation = None
        if self.residence is not Residence.HIBERNATING:
            self.loop_cancelled()
            self._closing.took(CloseStep.TERMINATED)
            return
        self._record = self.record
        self.log.debug("hibernating")
        self._settings.hooks.actor_slept(self, woke=False)
        self._settings.hooks.record_changed(self)

    async def _awake(self, incarnation: Incarnation, task_status: trio.TaskStatus[None]) -> bool:
        """The request nursery's own task: the mailbox loop. True if it ends by hibernating."""
        self._started(task_status)
        if self._wake is not None:
            await incarnation.replay(self._record, self._wake.context)
            wake, self._wake = self._wake, None
            self._spawn(wake)
            del wake
        # Spawn each request as a child task until closing begins or the idle deadline fires.
        if self._clock.deadline == math.inf:
            self._refresh_idle(finishing_child=False)
        while True:
            with self._clock.scope:
                await self._mailbox.deliver(self._spawn)
            if self.closing or not (incarnation.in_flight or self._mailbox.queued):
                break
            # The countdown fired just as a request was taken in: not idle after all (a stream
            # spawned now would otherwise hold a hibernation open, the mailbox unread, for its life).
            self._clock.fresh_scope(closing=False, queued=True, dormant=False)
        if self._clock.hibernates(self.close_reason):
            self.residence = next_residence(self.residence, ResidenceEvent.SLEPT)
            return True
        await self._mailbox_ended()
        return False

    async def _wait_dormant(self) -> bool:
        """Wait, with no incarnation, for a request to wake the actor; False if it closes instead."""
        while True:
            with self._clock.fresh_scope(closing=self.closing, queued=self._mailbox.queued > 0, dormant=True):
                self._wake = await self._mailbox.take()
                if self._wake is not None:
                    self._settings.hooks.actor_slept(self, woke=True)
                    return True
            if self.closing or not self._mailbox.queued:  # else one came just as the countdown ran out
                break
        self._close_if_idle(idle_close_reason(now=trio.current_time(), idle_due=self._clock.idle_due))
        self._mailbox.reject_leftovers()
        return False

    async def _mailbox_ended(self) -> None:
        """The mailbox loop ended: by a close, or by the idle deadline (then close now)."""
        self._close_if_idle()
        self._mailbox.reject_leftovers()
        self._closing.end_streams(self._incarnation, self.close_reason)
        if self._settings.faults is not None:
            await self._settings.faults.reached(FaultPoint.DURING_CLOSE, self)

    def _close_if_idle(self, reason: CloseReason = CloseReason.IDLE) -> None:
        if self.close_reason is None:
            self.log.info("idle: %s", "closing" if reason is CloseReason.IDLE else "evicted to the store")
            self.begin_close(reason, 0.0)

    def _note(self, method: str | None, params: object) -> None:
        """The record after this message; the owner hears of a change (never of a plain call)."""
        record = self._record.after(method, params)
        if record is not self._record:
            self._record = record
            self._settings.hooks.record_changed(self)

    def _spawn(self, message: ServeRequest) -> None:
        """Start the request as a child task of the incarnation, inside the caller's context."""
        ticket = message.ticket
        gone = ticket.cancel_scope.cancel_called  # the client left while the request waited
        incarnation = self._incarnation
        if not gone and (not accepts_requests(self.state) or incarnation is None):
            # Never hand a request to a transport whose loop has ended.
            ticket.finish(RequestOutcome.REJECTED)
            return
        if gone or incarnation is None or (ticket.is_stream and not incarnation.claim_stream(ticket)):
            ticket.finish(RequestOutcome.CLIENT_GONE if gone else RequestOutcome.CONFLICT)
            self._refresh_idle(finishing_child=False)
            return
        self._note(message.method, message.params)
        incarnation.start_request(serve_request, self, message)

    def loop_cancelled(self) -> None:
        if self.state is not ActorState.RUNNING:
            self._closing.once(CloseStep.LOOP_CANCELLED)

    def requests_done(self) -> None:
        if self.residence is not Residence.HIBERNATING:
            self._closing.took(CloseStep.REQUESTS_DONE)

    def request_finished(self, _: object) -> None:
        self._refresh_idle(finishing_child=True)

    def _refresh_idle(self, *, finishing_child: bool) -> None:
        """Restart the idle (or hibernation) countdown if nothing is in flight or queued any more."""
        if accepts_requests(self.state):
            self._clock.settle(self._incarnation, finishing=finishing_child, queued=self._mailbox.queued)
