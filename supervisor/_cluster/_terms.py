"""What a node's cluster part and its supervisor say to each other: the terms both sides use.

Kept apart from the parts that do the work, so the supervisor (membership) names the wake
outcomes and the cluster's numbers without the machinery behind them.
"""

from __future__ import annotations

import enum
import logging
from typing import Protocol

import attrs

from actors import Principal, SessionRecord
from supervisor._cluster._store_health import StoreHealth

RENEW_BATCH = 300
POLL = 0.05
"""Seconds between tries of a bounded wait on local state (a busy session, a store coming back)."""
RELEASE_FALLBACK = 0.25
"""Seconds a move waits for the holder's "released" before it claims again regardless."""


class Member(Protocol):
    """What the cluster asks of its supervisor."""

    def fence(self, session_id: str) -> None:
        """Another node holds this session now: stop serving it at once."""

    async def release(self, session_id: str) -> None:
        """Another node wants this session: close it here (its record is kept) and return."""

    async def revoke_here(self, principal: Principal) -> None:
        """Close this node's sessions of `principal` (a revocation made on another node)."""

    def record_of(self, session_id: str) -> SessionRecord | None:
        """The session's record as of now, if it is live here."""


class Wake(enum.Enum):
    """Why a session could not be woken here from the store."""

    MISSING = "missing"
    """No record (or another principal's): 404."""
    UNAVAILABLE = "unavailable"
    """The store did not answer, or the session did not move here in time: 503, retry."""


@attrs.frozen(kw_only=True)
class ClusterStats:
    """The cluster as this node sees it."""

    node_id: str
    store: StoreHealth
    leases: int
    pending_writes: int
    wakes_from_store: int
    moved_in: int
    moved_out: int
    fenced: int
    forwarded: int = 0
    """Requests this node forwarded to the live node holding their session (no move)."""


@attrs.define
class OutageNotice:
    """While the store stays down: a WARNING now and then, each further apart (10 s, 20 s, ...
    5 min at most), so an operator sees an outage that lasts, and a long one fills no log."""

    first: float = 10.0
    longest: float = 300.0
    _next: float = attrs.field(init=False, default=0.0)
    _every: float = attrs.field(init=False, default=0.0)

    def down(self, since: float, now: float, log: logging.Logger) -> None:
        """The store did not answer; `since` is when it went down (seconds since the epoch)."""
        if self._every == 0.0:
            self._every, self._next = self.first, since + self.first
        if now >= self._next:
            log.warning(
                "session store still unreachable after %.0f s: held sessions are served on, "
                "others are answered 503 (retry); retrying",
                now - since,
            )
            self._every = min(self._every * 2, self.longest)
            self._next = now + self._every

    def up(self) -> None:
        self._every = 0.0
