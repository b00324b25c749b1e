"""Why sessions close and how requests end: the vocabulary of stats, logs and docs.

`CLOSE_POLICY` is the one place that says what each close reason means for the rest of the system;
a new reason is added here (the enum member and its row) and named in docs/architecture.md's table.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping

import attrs


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


class RecordFate(enum.Enum):
    """What becomes of a closed session's record, with a session store."""

    KEPT = "kept"
    """Written, its lease let go: the session wakes on its next request, on any node."""
    DELETED = "deleted"
    """Forgotten: the id is unknown (404) from here on, on every node."""
    LEFT = "left"
    """Not touched: another node holds the session now, and its record is that node's to write."""


@attrs.frozen(kw_only=True)
class ClosePolicy:
    """What one close reason means: for the record, for a request that comes too late, for logs."""

    record: RecordFate
    retry: bool
    """A request that reached the session as it closed is told to retry (503 + Retry-After), not
    that the session is gone: it lives on, as its record or on the node that holds it now."""
    streams_end_at_once: bool = False
    """The standalone GET streams end now, whatever the grace (nothing will be drained)."""
    log_level: int = logging.INFO
    """The level of the session's closed line (and, at most INFO, of its closing line). A shutdown
    closes every session at once: its lines are at DEBUG, and one summary says what happened."""
    cut_short: str | None = None
    """What a call still running when the drain grace runs out is told, in place of the SDK's own
    "Connection closed" (the same code, -32000); None keeps the SDK's words."""


CLOSE_POLICY: Mapping[CloseReason, ClosePolicy] = {
    CloseReason.CLIENT_DELETE: ClosePolicy(record=RecordFate.DELETED, retry=False),
    CloseReason.IDLE: ClosePolicy(record=RecordFate.DELETED, retry=False),
    CloseReason.CLOSED: ClosePolicy(record=RecordFate.DELETED, retry=False),
    CloseReason.KILLED: ClosePolicy(record=RecordFate.DELETED, retry=False, streams_end_at_once=True),
    CloseReason.CRASHED: ClosePolicy(record=RecordFate.DELETED, retry=False, log_level=logging.ERROR),
    CloseReason.REVOKED: ClosePolicy(record=RecordFate.DELETED, retry=False),
    CloseReason.SHUTDOWN: ClosePolicy(
        record=RecordFate.KEPT, retry=True, log_level=logging.DEBUG, cut_short="Server is shutting down"
    ),
    CloseReason.FAILED_OPEN: ClosePolicy(record=RecordFate.DELETED, retry=False),
    CloseReason.EVICTED: ClosePolicy(record=RecordFate.KEPT, retry=True),
    CloseReason.MOVED: ClosePolicy(record=RecordFate.KEPT, retry=True),
    CloseReason.FENCED: ClosePolicy(record=RecordFate.LEFT, retry=True),
}
"""Every close reason's row; `tests/actors/test_state.py` checks that no reason is missing."""


def tells_retry(reason: CloseReason | None) -> bool:
    """A request too late for a session closed for `reason` is told to retry (see `ClosePolicy`)."""
    return reason is not None and CLOSE_POLICY[reason].retry


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
