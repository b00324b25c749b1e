"""Frozen snapshots handed out by the supervisor: safe to keep, compare and log."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from actors import ActorState, Principal, SessionActor
from supervisor._cluster import ClusterStats
from supervisor._core._tally import Histogram


@attrs.frozen(kw_only=True)
class SessionInfo:
    """One session as it was when asked."""

    session_id: str
    state: ActorState
    in_flight: int
    """Requests being served (open GET streams included)."""
    open_streams: int
    """Standalone GET streams open now."""
    awake: bool
    """False while the session hibernates (no transport, no server loop)."""
    queued: int
    """Requests waiting in the mailbox."""
    principal: Principal | None
    started_at: float
    """When its actor started here, by the trio clock (`created` is the session's own birth)."""
    idle_deadline: float
    """trio clock: when the idle countdown next fires (hibernation while awake, then the idle
    timeout or eviction); inf while busy or with neither."""
    created: float = 0.0
    """Seconds since the epoch (from the session's record)."""
    last_activity: float = 0.0
    """Seconds since the epoch: when its last request finished."""


@attrs.frozen(kw_only=True)
class SupervisorStats:
    """Counts that add up: created == live + sum(closed.values())."""

    live: int
    """Actors not yet stopped (starting, running or draining)."""
    running: int
    draining: int
    hibernating: int
    """Running sessions that hold no transport right now (see `SupervisorConfig.hibernate_after`)."""
    in_flight: int
    """Requests being served now, over all sessions and the stateless requests."""
    stateless_in_flight: int
    created: int
    closed: Mapping[str, int]
    """Closed sessions by close reason."""
    requests: Mapping[str, int]
    """Finished session requests by outcome, plus 'stateless' for the stateless requests."""
    accepting: bool
    """False once shutdown (or a drain) began: new sessions get 503."""
    hibernations: int = 0
    """Times a session dropped its incarnation."""
    wakes: int = 0
    """Times a session was woken from its record (born-dormant ones included)."""
    durations: Mapping[str, Histogram] = attrs.field(factory=dict)
    """POSTed session requests' durations (hand-over to the end of the answer) by method label."""
    refusals: Mapping[tuple[int, str], int] = attrs.field(factory=dict)
    """Requests the HTTP layer refused, by (status, cause)."""
    cluster: ClusterStats | None = None
    """This node's leases, store health and moves; None without a session store."""

    @property
    def total_closed(self) -> int:
        return sum(self.closed.values())


def stats_document(stats: SupervisorStats) -> dict[str, Any]:
    """The stats as JSON-ready data: what `/admin/stats` answers (the metrics read the same snapshot)."""
    document = attrs.asdict(stats, recurse=False)
    document["closed"] = dict(stats.closed)
    document["requests"] = dict(stats.requests)
    document["durations"] = {
        method: {"count": histogram.count, "sum": histogram.total, "buckets": dict(histogram.cumulative())}
        for method, histogram in stats.durations.items()
    }
    document["refusals"] = [
        {"status": status, "cause": cause, "count": count}
        for (status, cause), count in stats.refusals.items()
    ]
    document["cluster"] = attrs.asdict(stats.cluster) if stats.cluster is not None else None
    return document


def session_info(actor: SessionActor) -> SessionInfo:
    """One actor's snapshot, from its statistics and its record."""
    seen = actor.statistics()
    record = actor.record
    return SessionInfo(
        session_id=actor.session_id,
        state=seen.state,
        in_flight=seen.in_flight,
        open_streams=seen.open_streams,
        awake=seen.awake,
        queued=seen.queued,
        principal=actor.principal,
        started_at=actor.started_at,
        idle_deadline=seen.idle_deadline,
        created=record.created_at,
        last_activity=record.last_active_at,
    )


def count_states(actors: Iterable[SessionActor]) -> tuple[int, int, int, int]:
    """Running, draining and hibernating actors, and the requests in flight on them all."""
    running = draining = hibernating = in_flight = 0
    for actor in actors:
        seen = actor.statistics()
        if seen.state is ActorState.RUNNING:
            running += 1
            hibernating += not seen.awake
        elif seen.state is ActorState.DRAINING:
            draining += 1
        in_flight += seen.in_flight
    return running, draining, hibernating, in_flight
