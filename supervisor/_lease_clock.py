"""How much time this node's leases have left, by its own clock: for fencing a node cut off.

A lease was last made good when the store ran the renewal round (or the claim) that covers it;
that moment is no earlier than when this node sent the call, so "sent + TTL" never overstates a
lease. Under strict fencing (`Fencing.STRICT`) a node stops serving a session before that point,
at `STRICT_SHARE` of the TTL, so by the time another node can claim it, this one has let go.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import trio

STRICT_SHARE = 0.75
"""The part of a lease's TTL after which, unrenewed, its session stops being served (strict)."""
OVERDUE_SHARE = 0.9
"""The part after which a held session's lease is checked before a request is served."""


class LeaseClock:
    """When each held lease was last made good: the last renewal round, or its own later claim."""

    def __init__(self, lease_ttl: float) -> None:
        self._ttl = lease_ttl
        self.renewed_at = trio.current_time()
        """When the last renewal round that reached the store was sent (trio clock)."""
        self._claimed_at: dict[str, float] = {}
        """Leases claimed since the last round covering them, and when each claim was sent."""
        self.moved = trio.Event()
        """Set (and replaced) whenever a lease is made good: a deadline may have moved on."""
        self._round_holds = False
        """Whether some held lease rests on the last round (none since a sweep lapsed them)."""

    def claimed(self, session_id: str, sent_at: float) -> None:
        self._claimed_at[session_id] = sent_at
        self._moved()

    def forget(self, session_id: str) -> None:
        """No longer held here (ended, given back): no deadline of its own any more."""
        self._claimed_at.pop(session_id, None)

    def renewed(self, sent_at: float, session_ids: list[str]) -> None:
        """A renewal round sent at `sent_at` reached the store for every lease in `session_ids`."""
        self.renewed_at = sent_at
        self._round_holds = bool(session_ids)
        for sid in session_ids:
            if self._claimed_at.get(sid, math.inf) <= sent_at:
                del self._claimed_at[sid]
        self._moved()

    def _moved(self) -> None:
        self.moved.set()
        self.moved = trio.Event()

    @property
    def overdue(self) -> bool:
        """No round has reached the store for most of a lease's time (this node was paused, say)."""
        return trio.current_time() - self.renewed_at > self._ttl * OVERDUE_SHARE

    def next_lapse(self) -> float | None:
        """The soonest moment a held lease reaches `STRICT_SHARE` of its time unrenewed; None: none."""
        times = list(self._claimed_at.values())
        if self._round_holds:
            times.append(self.renewed_at)
        return min(times) + self._ttl * STRICT_SHARE if times else None

    def lapsing(self, held: Mapping[str, int]) -> list[str]:
        """The held sessions whose lease reached `STRICT_SHARE` of its time without renewal; from
        here on they are not held (no deadline of their own any more)."""
        limit = trio.current_time() - self._ttl * STRICT_SHARE
        due = [
            sid
            for sid, epoch in held.items()
            if epoch and self._claimed_at.get(sid, self.renewed_at) <= limit
        ]
        for sid in [sid for sid, at in self._claimed_at.items() if at <= limit or sid not in held]:
            del self._claimed_at[sid]
        if self.renewed_at <= limit:
            self._round_holds = False  # every lease the last round covered is among `due`
        return due

    async def watch(self, held: Mapping[str, int], lapse: Callable[[str], None]) -> None:
        """Strict fencing, until cancelled: `lapse` each held session the moment its lease may
        lapse unrenewed."""
        while True:
            moved = self.moved
            deadline = self.next_lapse()
            if deadline is not None and deadline <= trio.current_time():
                for sid in self.lapsing(held):
                    lapse(sid)
                continue
            with trio.move_on_at(math.inf if deadline is None else deadline):
                await moved.wait()
