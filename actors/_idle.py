"""An actor's idle countdown: one cancel scope around its mailbox wait, and when its deadline is.

While anything is in flight or queued the deadline is `inf`. Once the actor is quiet it is the
last completion plus the hibernation delay (awake, when hibernation is on) or the idle timeout.
The mailbox wait ends when the deadline passes; the rules for what that means are in `_state`.
"""

from __future__ import annotations

import math

import attrs
import trio

from actors._reasons import CloseReason
from actors._settings import ActorSettings
from actors._state import ActorState, admits, hibernates
from actors._statistics import Observed


@attrs.define(eq=False)
class IdleClock:
    """The idle and hibernation countdown of one actor."""

    _idle_timeout: float | None = attrs.field(alias="idle_timeout")
    _hibernate_after: float | None = attrs.field(alias="hibernate_after")
    _evict_after: float | None = attrs.field(default=None, alias="evict_after")
    """With a session store: dormant this long, the actor ends and its record alone is left."""
    holding_stream: bool = attrs.field(init=False, default=False)
    """A standalone GET stream is open: it holds the session open (the SDK's rule), so the idle
    timeout waits; hibernation and eviction do not (the stream needs no incarnation)."""
    last_active: float = attrs.field(init=False, factory=trio.current_time)
    """When the last request finished (or the actor started): both countdowns run from it."""
    scope: trio.CancelScope = attrs.field(init=False, factory=trio.CancelScope)
    """Around the current mailbox wait; made before the wait, so a close that comes first holds."""

    @classmethod
    def of(cls, settings: ActorSettings) -> IdleClock:
        return cls(settings.idle_timeout, settings.hibernate_after, settings.evict_after)

    @property
    def deadline(self) -> float:
        return self.scope.deadline

    @property
    def fired(self) -> bool:
        """The current wait was ended (its deadline passed, or closing cancelled it)."""
        return self.scope.cancel_called

    @property
    def idle_due(self) -> float:
        """When the idle timeout closes the actor (`inf` without one, or while a stream is open)."""
        if self._idle_timeout is None or self.holding_stream:
            return math.inf
        return self.last_active + self._idle_timeout

    @property
    def dormant_due(self) -> float:
        """When a dormant actor ends: at its idle timeout, or its eviction if that comes first."""
        evict = math.inf if self._evict_after is None else self.last_active + self._evict_after
        return min(self.idle_due, evict)

    def fresh_scope(self, *, closing: bool, queued: bool, dormant: bool) -> trio.CancelScope:
        """A new scope for the next mailbox wait (a cancelled scope cannot be reused)."""
        self.scope = trio.CancelScope(deadline=self.dormant_due if dormant else math.inf)
        if closing:
            self.scope.cancel()
        elif queued:
            self.scope.deadline = math.inf
        return self.scope

    def open_to(self, state: ActorState) -> bool:
        """Whether the actor takes what was routed to it now (not if its countdown fired for closing)."""
        return admits(state, deadline_fired=self.fired, now=trio.current_time(), idle_due=self.idle_due)

    def admit(self, state: ActorState) -> bool:
        """A request was routed here: suspend the countdown, unless it fired for closing (False)."""
        if not self.open_to(state):
            return False
        self.suspend()
        return True

    def hibernates(self, close_reason: CloseReason | None) -> bool:
        """The countdown fired: whether that means hibernating (not closing)."""
        return hibernates(
            hibernate_after=self._hibernate_after,
            close_reason=close_reason,
            now=trio.current_time(),
            idle_due=self.idle_due,
        )

    def hold_stream(self, held: bool) -> None:
        """A standalone stream opened or ended; its end counts as activity, as the SDK's rule has
        it (the countdown starts when the last request, a stream included, completes)."""
        self.holding_stream = held
        if not held:
            self.last_active = trio.current_time()

    def suspend(self) -> None:
        """A request is on its way in: no countdown until it is done."""
        self.scope.deadline = math.inf

    def stop(self) -> None:
        """Closing began: the mailbox wait ends now."""
        self.scope.cancel()

    def quiet(self, *, awake: bool, can_sleep: bool = True) -> None:
        """Nothing is in flight or queued any more: the countdown starts from now (`can_sleep`
        False: to the idle timeout only, the incarnation must stay)."""
        self.last_active = trio.current_time()
        self._restart(awake=awake, can_sleep=can_sleep)

    def settle(self, incarnation: Observed | None, *, finishing: bool, queued: int) -> None:
        """After a request finished or left: restart the countdown if nothing is in flight or queued.

        Without a running incarnation (dormant) only the idle timeout applies and activity is
        unchanged; `finishing` says one of the incarnation's requests is the one finishing (its
        task is still among the nursery's children while it runs this).
        """
        if incarnation is None or not incarnation.running:
            self.resume_dormant(queued=queued > 0)
        elif incarnation.in_flight - (1 if finishing else 0) <= 0 and queued == 0:
            self.quiet(awake=True, can_sleep=not incarnation.keeps_state)

    def resume_dormant(self, *, queued: bool) -> None:
        """Dormant, a request came and went without waking the actor: the idle timeout alone runs."""
        self.scope.deadline = math.inf if queued else self.dormant_due

    def _restart(self, *, awake: bool, can_sleep: bool = True) -> None:
        if not awake:
            self.scope.deadline = self.dormant_due
            return
        hibernate = self._hibernate_after if can_sleep else None
        idle = None if self.holding_stream else self._idle_timeout
        wait = idle if hibernate is None else min(hibernate, idle or math.inf)
        self.scope.deadline = math.inf if wait is None else self.last_active + wait
