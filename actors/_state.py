"""The session actor's lifecycle as a pure transition function (sans-IO, tested on its own)."""

from __future__ import annotations

import enum


class ActorState(enum.Enum):
    """Where a session actor is in its life; the only place that decides what it may do next."""

    STARTING = "starting"
    RUNNING = "running"
    DRAINING = "draining"
    CLOSED = "closed"


class ActorEvent(enum.Enum):
    """Something that happened to an actor and may move it to another state."""

    STARTED = "started"
    """The transport is connected and the server loop runs: requests may be handed over."""
    CLOSE = "close"
    """A close was asked for (client DELETE, idle timeout, close_session, shutdown, kill, crash)."""
    STOPPED = "stopped"
    """The actor task has left the transport: nothing of the session is left."""


class InvalidTransitionError(RuntimeError):
    """An event arrived that the current state has no answer for: a bug, never a client's doing."""


_TRANSITIONS: dict[tuple[ActorState, ActorEvent], ActorState] = {
    (ActorState.STARTING, ActorEvent.STARTED): ActorState.RUNNING,
    (ActorState.STARTING, ActorEvent.CLOSE): ActorState.DRAINING,
    (ActorState.STARTING, ActorEvent.STOPPED): ActorState.CLOSED,
    (ActorState.RUNNING, ActorEvent.CLOSE): ActorState.DRAINING,
    (ActorState.RUNNING, ActorEvent.STOPPED): ActorState.CLOSED,
    # A second close of a draining actor (say, shutdown after close_session) only tightens deadlines.
    (ActorState.DRAINING, ActorEvent.CLOSE): ActorState.DRAINING,
    (ActorState.DRAINING, ActorEvent.STOPPED): ActorState.CLOSED,
    # A draining actor that started late (closed while STARTING) stays draining.
    (ActorState.DRAINING, ActorEvent.STARTED): ActorState.DRAINING,
    # Closing or stopping what is already closed is a no-op, so kill() and close_session() may race freely.
    (ActorState.CLOSED, ActorEvent.CLOSE): ActorState.CLOSED,
    (ActorState.CLOSED, ActorEvent.STOPPED): ActorState.CLOSED,
}


def next_state(state: ActorState, event: ActorEvent) -> ActorState:
    """Return the state after `event`, or raise if the pair is impossible."""
    try:
        return _TRANSITIONS[(state, event)]
    except KeyError:
        raise InvalidTransitionError(f"no transition from {state.value} on {event.value}") from None


def accepts_requests(state: ActorState) -> bool:
    """Only a running actor takes new requests; a draining one answers 404 like a closed one."""
    return state is ActorState.RUNNING
