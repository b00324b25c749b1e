"""A frozen view of one actor, taken in one go (as trio's `MemoryChannelStatistics`)."""

from __future__ import annotations

from collections.abc import Sized
from typing import Protocol

import attrs

from actors._reasons import CloseReason
from actors._state import ActorState, accepts_requests


class Observed(Protocol):
    """What statistics read of an incarnation."""

    @property
    def running(self) -> bool: ...

    @property
    def in_flight(self) -> int: ...

    @property
    def streams(self) -> Sized | None: ...

    @property
    def keeps_state(self) -> bool:
        """The server keeps state on this incarnation's connection: it must not hibernate."""
        ...


@attrs.frozen(kw_only=True)
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

    @classmethod
    def of(
        cls,
        state: ActorState,
        incarnation: Observed | None,
        queued: int,
        idle_deadline: float,
        close_reason: CloseReason | None,
        *,
        held_streams: int = 0,
    ) -> ActorStatistics:
        """The view of an actor in `state` holding `incarnation` (None while dormant).

        `held_streams`: standalone streams the actor holds itself, outside any incarnation.
        """
        return cls(
            state=state,
            awake=incarnation is not None and incarnation.running,
            in_flight=held_streams + (incarnation.in_flight if incarnation is not None else 0),
            open_streams=held_streams + (len(incarnation.streams or ()) if incarnation is not None else 0),
            queued=queued,
            idle_deadline=idle_deadline,
            close_reason=close_reason,
        )
