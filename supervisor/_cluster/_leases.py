"""This node's leases: which sessions it holds at which epoch, and the one clock they all share.

Ownership is per node (issue 26): a session's lease names this process, and it is good while this
process's membership is. So there is one deadline, not one per session: the membership was last
made good when a renewal that reached the store was sent (Redis started its TTL no earlier), so
"sent + TTL" never overstates it. Under strict fencing (`Fencing.STRICT`) the node stops serving
every session it holds at `STRICT_SHARE` of the TTL unrenewed, so by the time another node can
take one over, this one has let go.

Records of awake sessions expire (the idle timeout, plus a lease), and no renewal keeps them any
more: each held session's record is kept again when it nears its end (`due_for_keep`), which costs
a session a store call every idle timeout or so, not every renewal.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import trio

STRICT_SHARE = 0.75
"""The part of the membership's TTL after which, unrenewed, this node stops serving (strict)."""
OVERDUE_SHARE = 0.9
"""The part after which the membership is confirmed before a request for a held session is served."""


class LeaseClock:
    """When this node's membership was last made good."""

    def __init__(self, lease_ttl: float) -> None:
        self._ttl = lease_ttl
        self.renewed_at = trio.current_time()
        """When the last membership renewal that reached the store was sent (trio clock)."""
        self.moved = trio.Event()
        """Set (and replaced) whenever the membership is made good: the deadline moved on."""

    def renewed(self, sent_at: float) -> None:
        self.renewed_at = max(self.renewed_at, sent_at)
        self.moved.set()
        self.moved = trio.Event()

    @property
    def overdue(self) -> bool:
        """No renewal has reached the store for most of a TTL (this node was paused, say)."""
        return trio.current_time() - self.renewed_at > self._ttl * OVERDUE_SHARE

    @property
    def deadline(self) -> float:
        """When, unrenewed, the membership reaches `STRICT_SHARE` of its time."""
        return self.renewed_at + self._ttl * STRICT_SHARE

    async def watch(self, lapse: Callable[[], None]) -> None:
        """Strict fencing, until cancelled: `lapse()` once each time the deadline passes unrenewed."""
        while True:
            moved = self.moved
            with trio.move_on_at(self.deadline):
                await moved.wait()
                continue
            lapse()
            await moved.wait()


class Leases:
    """The sessions this node holds, each with its lease's epoch; the membership clock; and when
    each held session's record was last kept.

    The one owner of them: whatever lets go of a session here drops its epoch in one call. Epoch 0
    is a new session whose record is not written yet (no lease anyone could take).
    """

    def __init__(self, lease_ttl: float) -> None:
        self._epochs: dict[str, int] = {}
        self.clock = LeaseClock(lease_ttl)
        self._kept_at: OrderedDict[str, float] = OrderedDict()
        """Each held session's last keep (trio clock), oldest first: only held sessions are in
        it, so a session let go of costs nothing here (a queue of every write once kept an
        evicted session's id until its record's end: issue 26.3 found it)."""
        self._keep_next: dict[str, None] = {}
        """Held sessions to keep at the next round whatever their time, in the order asked."""

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._epochs

    def __len__(self) -> int:
        return len(self._epochs)

    def epoch_of(self, session_id: str) -> int | None:
        return self._epochs.get(session_id)

    def opened(self, session_id: str) -> None:
        """A new session here: held, with no lease in the store until its first write."""
        self._epochs.setdefault(session_id, 0)

    def won(self, session_id: str, epoch: int) -> None:
        """A claim won the lease at `epoch`; its record is kept at the next renewal round (it
        expires as the previous holder left it)."""
        self._epochs[session_id] = epoch
        self.keep_soon(session_id)

    def keep_soon(self, session_id: str) -> None:
        """Keep this session's record at the next round (a keep that did not reach the store)."""
        if session_id in self._epochs:
            self._kept_at.pop(session_id, None)
            self._keep_next[session_id] = None

    def written(self, session_id: str, epoch: int, sent_at: float) -> bool:
        """A write sent at `sent_at` kept (or, for a new session, claimed) the lease at `epoch`;
        False if the lease was lost (epoch 0). Nothing changes for a session no longer held."""
        held = self._epochs.get(session_id)
        if held is None or not epoch:
            return held is None
        self._epochs[session_id] = epoch
        self.kept(session_id, sent_at)
        return True

    def kept(self, session_id: str, sent_at: float) -> None:
        """The session's record (and lease) were kept by a call sent at `sent_at`."""
        if session_id in self._epochs:
            self._keep_next.pop(session_id, None)
            self._kept_at[session_id] = sent_at
            self._kept_at.move_to_end(session_id)

    def drop(self, session_id: str) -> int | None:
        """No longer held here: its epoch (None if it was not held) is gone."""
        self._kept_at.pop(session_id, None)
        self._keep_next.pop(session_id, None)
        return self._epochs.pop(session_id, None)

    def renewable(self) -> list[tuple[str, int]]:
        """Every held session written at least once (what a check after a lapse covers)."""
        return [(sid, epoch) for sid, epoch in self._epochs.items() if epoch]

    def due_for_keep(self, kept_before: float) -> list[tuple[str, int]]:
        """The held sessions asked to be kept at the next round, then those whose record was last
        kept before `kept_before`; each leaves the order until it is kept again."""
        due = [(sid, epoch) for sid in self._keep_next if (epoch := self._epochs.get(sid, 0))]
        self._keep_next.clear()
        order = self._kept_at
        while order:
            sid, at = next(iter(order.items()))
            if at >= kept_before:
                break
            del order[sid]
            if epoch := self._epochs.get(sid, 0):
                due.append((sid, epoch))
        return due

    def renewed(self, sent_at: float) -> None:
        self.clock.renewed(sent_at)

    @property
    def overdue(self) -> bool:
        return self.clock.overdue

    async def watch(self, lapse: Callable[[str, int], None]) -> None:
        """Strict fencing, until cancelled: when the membership may lapse unrenewed, drop every
        held session with a lease and tell `lapse` (with the epoch it was held at)."""

        def lapse_all() -> None:
            for sid, epoch in self.renewable():
                self.drop(sid)
                lapse(sid, epoch)

        await self.clock.watch(lapse_all)
