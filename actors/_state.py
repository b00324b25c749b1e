"""Every lifecycle rule of a session actor, as pure functions over values (sans-IO, as h11's `_state.py`).

An actor has two axes: its `ActorState` (starting, running, draining, closed) and its
`Residence` (awake, dormant, hibernating, evicted), each with its table of transitions here.
The actor does the I/O; whatever decides what it does next lives here: which state follows an
event, whether a close is the first one (and so records its reason, deregisters and shuts the
mailbox), which close steps that takes, when streams end at once, when a request may still be
admitted, and whether an idle actor hibernates or closes.
"""

from __future__ import annotations

import enum

import attrs

from actors._reasons import CLOSE_POLICY, CloseReason, CloseStep


class ActorState(enum.Enum):
    """Where a session actor is in its life; the only place that decides what it may do next."""

    STARTING = "starting"
    RUNNING = "running"
    DRAINING = "draining"
    CLOSED = "closed"


class Residence(enum.Enum):
    """Where a session's state lives right now: the actor's other axis, beside its `ActorState`."""

    AWAKE = "awake"
    """An incarnation holds it: the SDK transport and server loop are live."""
    DORMANT = "dormant"
    """Born from its record (quick open, a wake from the store) and not woken yet: no transport."""
    HIBERNATING = "hibernating"
    """Idle past `hibernate_after`: its incarnation ended, its record (in memory) is all there is."""
    EVICTED = "evicted"
    """Closed for eviction (idle past `evict_after`, or by an operator): its record lives on in the
    store, and the actor ends."""


class ResidenceEvent(enum.Enum):
    """Something that moves a session between being awake and being only its record."""

    WOKE = "woke"
    """A request came for a dormant or hibernating session: a fresh incarnation from its record."""
    SLEPT = "slept"
    """The mailbox loop ended on the hibernation deadline: the incarnation ends, the record stays."""
    EVICTED = "evicted"
    """A close for `CloseReason.EVICTED` began."""


_RESIDENCES: dict[tuple[Residence, ResidenceEvent], Residence] = {
    (Residence.DORMANT, ResidenceEvent.WOKE): Residence.AWAKE,
    (Residence.HIBERNATING, ResidenceEvent.WOKE): Residence.AWAKE,
    (Residence.AWAKE, ResidenceEvent.SLEPT): Residence.HIBERNATING,
    (Residence.AWAKE, ResidenceEvent.EVICTED): Residence.EVICTED,
    (Residence.DORMANT, ResidenceEvent.EVICTED): Residence.EVICTED,
    (Residence.HIBERNATING, ResidenceEvent.EVICTED): Residence.EVICTED,
    # The request that woke it was taken just as the eviction began: a fresh incarnation drains
    # it, and the session stays evicted (its record lives on in the store).
    (Residence.EVICTED, ResidenceEvent.WOKE): Residence.EVICTED,
}


def next_residence(residence: Residence, event: ResidenceEvent) -> Residence:
    """Where the session lives after `event`, or raise if the pair is impossible."""
    try:
        return _RESIDENCES[(residence, event)]
    except KeyError:
        raise InvalidTransitionError(f"no move from {residence.value} on {event.value}") from None


class ActorEvent(enum.Enum):
    """Something that happened to an actor and may move it to another state."""

    STARTED = "started"
    """The transport is connected and the server loop runs (or it was born dormant): requests may come."""
    CLOSE = "close"
    """A close was asked for (client DELETE, idle timeout, close_session, shutdown, kill, crash)."""
    STOPPED = "stopped"
    """The actor task has left the transport: nothing of the session is left."""


class InvalidTransitionError(RuntimeError):
    """An event arrived that the current state has no answer for: a bug, never a client's doing."""


@attrs.frozen
class Transition:
    """What an event does: the next state, and for a close, the steps it takes at once."""

    state: ActorState
    first_close: bool = False
    """The first close of this actor: it records the reason, deregisters and shuts the mailbox."""

    @property
    def close_steps(self) -> tuple[CloseStep, ...]:
        """The steps a close takes synchronously, in order (nothing for a later close)."""
        return FIRST_CLOSE_STEPS if self.first_close else ()


FIRST_CLOSE_STEPS = (CloseStep.DEREGISTERED, CloseStep.MAILBOX_CLOSED)

_TRANSITIONS: dict[tuple[ActorState, ActorEvent], Transition] = {
    (ActorState.STARTING, ActorEvent.STARTED): Transition(ActorState.RUNNING),
    (ActorState.STARTING, ActorEvent.CLOSE): Transition(ActorState.DRAINING, first_close=True),
    (ActorState.STARTING, ActorEvent.STOPPED): Transition(ActorState.CLOSED),
    (ActorState.RUNNING, ActorEvent.CLOSE): Transition(ActorState.DRAINING, first_close=True),
    (ActorState.RUNNING, ActorEvent.STOPPED): Transition(ActorState.CLOSED),
    # A second close of a draining actor (say, shutdown after close_session) only tightens deadlines.
    (ActorState.DRAINING, ActorEvent.CLOSE): Transition(ActorState.DRAINING),
    (ActorState.DRAINING, ActorEvent.STOPPED): Transition(ActorState.CLOSED),
    # A draining actor that started late (closed while STARTING) stays draining.
    (ActorState.DRAINING, ActorEvent.STARTED): Transition(ActorState.DRAINING),
    # Closing or stopping what is already closed is a no-op, so kill() and close_session() may race freely.
    (ActorState.CLOSED, ActorEvent.CLOSE): Transition(ActorState.CLOSED),
    (ActorState.CLOSED, ActorEvent.STOPPED): Transition(ActorState.CLOSED),
}


def transition(state: ActorState, event: ActorEvent) -> Transition:
    """What `event` does in `state`, or raise if the pair is impossible."""
    try:
        return _TRANSITIONS[(state, event)]
    except KeyError:
        raise InvalidTransitionError(f"no transition from {state.value} on {event.value}") from None


def next_state(state: ActorState, event: ActorEvent) -> ActorState:
    """The state after `event`, or raise if the pair is impossible."""
    return transition(state, event).state


def accepts_requests(state: ActorState) -> bool:
    """Only a running actor takes new requests; a draining one answers 404 like a closed one."""
    return state is ActorState.RUNNING


def ends_streams_at_once(reason: CloseReason, grace: float) -> bool:
    """A close with nothing to wait for ends the GET streams now instead of after the drain."""
    return grace <= 0 or CLOSE_POLICY[reason].streams_end_at_once


def admits(state: ActorState, *, deadline_fired: bool, now: float, idle_due: float) -> bool:
    """Whether a request routed to the actor just now may be queued.

    A deadline that fired for hibernation still admits (the request will wake the actor); one that
    fired for the idle timeout does not (the actor is about to close).
    """
    return accepts_requests(state) and not (deadline_fired and now >= idle_due)


def hibernates(
    *, hibernate_after: float | None, close_reason: CloseReason | None, now: float, idle_due: float
) -> bool:
    """The mailbox loop ended on its deadline: hibernate, unless a close began or the idle timeout is due."""
    return hibernate_after is not None and close_reason is None and now < idle_due


def idle_close_reason(*, now: float, idle_due: float) -> CloseReason:
    """A dormant actor's countdown ran out: the idle timeout (gone), or eviction (its record lives on)."""
    return CloseReason.IDLE if now >= idle_due else CloseReason.EVICTED
