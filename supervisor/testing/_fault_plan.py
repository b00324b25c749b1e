"""Fault plans: kill, stop or crash a session actor at a named point, deterministically."""

from __future__ import annotations

import enum

import attrs
import trio
import trio.testing

from actors import CloseReason, FaultPoint, FaultTarget, InjectedCrash


class FaultAction(enum.Enum):
    KILL = "kill"
    """Hard cancellation (`supervisor.kill`): no drain."""
    STOP = "stop"
    """Graceful close with the rule's grace (`supervisor.close_session`)."""
    CRASH = "crash"
    """The session's server loop raises `InjectedCrash`."""


@attrs.frozen
class FaultRule:
    point: FaultPoint
    action: FaultAction
    session_id: str | None = None
    """Only this session; None for whichever reaches the point first."""
    grace: float = 0.0
    """For STOP: how long in-flight requests get."""


@attrs.frozen
class Hit:
    """A fault point some actor reached, and the action taken there (None: passed through)."""

    point: FaultPoint
    session_id: str
    action: FaultAction | None


class FaultPlan:
    """Decides, at each fault point an actor reaches, whether to inject a fault there.

    Arm it with `kill_at`, `stop_at` or `crash_at`; each armed rule fires once. Pass the plan to
    `serve_for_test(..., faults=plan)` or `open_supervisor(..., faults=plan)`. Tests wait for a
    fault with `await plan.fired(point)` instead of sleeping.
    """

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self.hits: list[Hit] = []
        self._fired: dict[FaultPoint, trio.Event] = {}
        self._crash: dict[str, trio.Event] = {}

    def kill_at(self, point: FaultPoint, session_id: str | None = None) -> None:
        self._rules.append(FaultRule(point, FaultAction.KILL, session_id))

    def stop_at(self, point: FaultPoint, session_id: str | None = None, grace: float = 0.0) -> None:
        self._rules.append(FaultRule(point, FaultAction.STOP, session_id, grace))

    def crash_at(self, point: FaultPoint, session_id: str | None = None) -> None:
        self._rules.append(FaultRule(point, FaultAction.CRASH, session_id))

    def crash_now(self, session_id: str) -> None:
        """Make that session's server loop raise `InjectedCrash` now (the session must be awake)."""
        self._crash.setdefault(session_id, trio.Event()).set()

    @property
    def armed(self) -> int:
        """Rules that have not fired yet."""
        return len(self._rules)

    async def fired(self, point: FaultPoint) -> None:
        """Wait until a rule for `point` has fired (returns at once if one already did)."""
        await self._event(point).wait()

    def _event(self, point: FaultPoint) -> trio.Event:
        return self._fired.setdefault(point, trio.Event())

    def _take(self, point: FaultPoint, session_id: str) -> FaultRule | None:
        for index, rule in enumerate(self._rules):
            if rule.point is point and rule.session_id in (None, session_id):
                del self._rules[index]
                return rule
        return None

    # ------------------------------------------------------------ the FaultSink protocol

    async def reached(self, point: FaultPoint, actor: FaultTarget) -> None:
        rule = self._take(point, actor.session_id)
        self.hits.append(Hit(point, actor.session_id, rule.action if rule else None))
        if rule is None:
            return
        if point is FaultPoint.TOOL_RUNNING:
            # Let the dispatched handler start and park inside the tool before striking.
            await trio.testing.wait_all_tasks_blocked()
        self._event(point).set()
        if rule.action is FaultAction.KILL:
            actor.kill()
        elif rule.action is FaultAction.STOP:
            actor.begin_close(CloseReason.CLOSED, rule.grace)
        else:
            self._crash.setdefault(actor.session_id, trio.Event()).set()
            # Let the loop crash and the actor react before this task goes on.
            await trio.testing.wait_all_tasks_blocked()
        await trio.lowlevel.checkpoint()

    async def watch_loop(self, actor: FaultTarget) -> None:
        await self._crash.setdefault(actor.session_id, trio.Event()).wait()
        raise InjectedCrash(f"crash injected into session {actor.session_id}")
