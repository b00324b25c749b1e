"""This node's leases: which sessions it holds at which epoch, and how much time each has left.

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


class Leases:
    """The sessions this node holds, each with its lease's epoch, and the clock of those leases.

    The one owner of both: whatever lets go of a session here drops its epoch and its deadline in
    one call, so they cannot drift apart. Epoch 0 is a new session whose record is not written yet
    (no lease anyone could take).
    """

    def __init__(self, lease_ttl: float) -> None:
        self._epochs: dict[str, int] = {}
        self.clock = LeaseClock(lease_ttl)

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._epochs

    def __len__(self) -> int:
        return len(self._epochs)

    def epoch_of(self, session_id: str) -> int | None:
        return self._epochs.get(session_id)

    def opened(self, session_id: str) -> None:
        """A new session here: held, with no lease in the store until its first write."""
        self._epochs.setdefault(session_id, 0)

    def won(self, session_id: str, epoch: int, sent_at: float) -> None:
        """A claim sent at `sent_at` won the lease at `epoch`."""
        self._epochs[session_id] = epoch
        self.clock.claimed(session_id, sent_at)

    def written(self, session_id: str, epoch: int, sent_at: float) -> bool:
        """A write sent at `sent_at` kept (or, for a new session, claimed) the lease at `epoch`;
        False if the lease was lost (epoch 0). Nothing changes for a session no longer held."""
        held = self._epochs.get(session_id)
        if held is None or not epoch:
            return held is None
        if held == 0:
            self.clock.claimed(session_id, sent_at)  # a new session's first write claims its lease
        self._epochs[session_id] = epoch
        return True

    def confirmed(self, session_id: str, sent_at: float) -> None:
        """A renewal of this one lease, sent at `sent_at`, reached the store."""
        self.clock.claimed(session_id, sent_at)

    def drop(self, session_id: str) -> int | None:
        """No longer held here: its epoch (None if it was not held) and its deadline are gone."""
        self.clock.forget(session_id)
        return self._epochs.pop(session_id, None)

    def renewable(self) -> list[tuple[str, int]]:
        """The leases a renewal round covers: every held session written at least once."""
        return [(sid, epoch) for sid, epoch in self._epochs.items() if epoch]

    def renewed(self, sent_at: float, session_ids: list[str]) -> None:
        self.clock.renewed(sent_at, session_ids)

    @property
    def overdue(self) -> bool:
        return self.clock.overdue

    async def watch(self, lapse: Callable[[str, int], None]) -> None:
        """Strict fencing, until cancelled: drop each held session the moment its lease may lapse
        unrenewed, and tell `lapse` (with the epoch it was held at)."""

        def lapsed(session_id: str) -> None:
            epoch = self._epochs.pop(session_id)
            lapse(session_id, epoch)

        await self.clock.watch(self._epochs, lapsed)
