"""A frozen view of one actor, taken in one go (as trio's `MemoryChannelStatistics`)."""

from __future__ import annotations

import attrs

from actors._reasons import CloseReason
from actors._state import ActorState, accepts_requests


@attrs.frozen
class ActorStatistics:
    """What the HTTP layer and the supervisor may know of an actor at one instant."""

    state: ActorState
    awake: bool
    """Holding an incarnation that takes requests (False while hibernating, or born dormant)."""
    in_flight: int
    """Requests being served (GET streams included)."""
    open_streams: int
    """GET streams among them."""
    queued: int
    """Requests waiting in the mailbox or for room in it."""
    idle_deadline: float
    """trio time at which the idle countdown fires (`inf` while busy or without a timeout)."""
    close_reason: CloseReason | None

    @property
    def dormant(self) -> bool:
        """Taking requests without an incarnation: the next request wakes it."""
        return not self.awake and accepts_requests(self.state)
