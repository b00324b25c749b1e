"""Why sessions close and how requests end: the vocabulary of stats, logs and docs."""

from __future__ import annotations

import enum


class CloseReason(enum.Enum):
    """Why a session actor ended; every closed session has exactly one."""

    CLIENT_DELETE = "client_delete"
    """The client sent DELETE for its session."""
    IDLE = "idle"
    """No request was in flight for the idle timeout."""
    CLOSED = "closed"
    """An operator or the embedding application called close_session()."""
    KILLED = "killed"
    """Hard cancellation through kill(): no drain, in-flight requests get an error answer."""
    CRASHED = "crashed"
    """The session's server loop raised or ended on its own."""
    REVOKED = "revoked"
    """The session's principal was revoked (`close_sessions_for`)."""
    SHUTDOWN = "shutdown"
    """The supervisor shut down."""
    FAILED_OPEN = "failed_open"
    """The opening initialize request was refused, failed, timed out or the client left."""
    EVICTED = "evicted"
    """With a session store: idle past `evict_after`, it lives on as its record alone."""
    MOVED = "moved"
    """With a session store: another node asked for it; it lives on there, from its record."""
    FENCED = "fenced"
    """With a session store: another node holds its lease now, so this node stopped serving it."""


class RequestOutcome(enum.Enum):
    """How one HTTP request handed to an actor ended."""

    COMPLETED = "completed"
    """The transport answered it."""
    CLIENT_GONE = "client_gone"
    """The client disconnected before the answer was complete. A session request ran on to its
    end regardless (its answer dropped or stored for resumption); a 2026-07-28 request was
    cancelled, since that era makes the disconnect the cancellation."""
    ABORTED = "aborted"
    """The actor was killed, crashed or ran out of drain time with the request in flight."""
    REJECTED = "rejected"
    """It was still in the mailbox when the actor began to close; it never reached the transport."""
    FAILED = "failed"
    """The transport raised: a bug in the SDK or in us, answered with a JSON-RPC error."""
    CONFLICT = "conflict"
    """A second standalone GET stream while one is open: refused by the actor (409)."""


class CloseStep(enum.Enum):
    """The steps of closing an actor, recorded in order on `SessionActor.close_steps`.

    A graceful close whose requests finish in time records them in declaration order; when the
    grace runs out, LOOP_CANCELLED comes before REQUESTS_DONE (the SDK answers what is left).
    """

    DEREGISTERED = "deregistered"
    """The id answers 404 from here on."""
    MAILBOX_CLOSED = "mailbox_closed"
    """Nothing new gets in; what was queued is rejected."""
    STREAMS_ENDED = "streams_ended"
    """The standalone GET stream was told to end."""
    REQUESTS_DONE = "requests_done"
    """Every request task has finished (answered, or cancelled after the kill grace)."""
    LOOP_CANCELLED = "loop_cancelled"
    """The SDK server loop was cancelled."""
    TERMINATED = "terminated"
    """The transport was terminated."""
    STOPPED = "stopped"
    """The actor task is about to return."""
