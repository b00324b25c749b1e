"""Test helpers for users and for us, in the spirit of `trio.testing`.

- `serve_for_test`: the supervisor under real hypercorn (trio) on an ephemeral loopback port;
- `FaultPlan`: kill, stop or crash a session actor at a named `FaultPoint`, deterministically;
- `check_quiescent`: nothing left running, queued or open, and the counts add up.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio
import trio.testing
from mcp.server.lowlevel.server import Server
from mcp.server.mcpserver import MCPServer

from actors._actor import SessionActor
from actors._faults import FaultPoint, InjectedCrash
from actors._reasons import CloseReason
from actors._state import ActorState
from supervisor._config import SupervisorConfig
from supervisor._core import SessionSupervisor, open_supervisor
from supervisor._serving import hypercorn_config, serve_supervisor

__all__ = [
    "FaultAction",
    "FaultPlan",
    "FaultPoint",
    "InjectedCrash",
    "TestServer",
    "check_quiescent",
    "check_stopped",
    "serve_for_test",
    "settle",
]


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

    async def reached(self, point: FaultPoint, actor: SessionActor) -> None:
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

    async def watch_loop(self, actor: SessionActor) -> None:
        await self._crash.setdefault(actor.session_id, trio.Event()).wait()
        raise InjectedCrash(f"crash injected into session {actor.session_id}")


def check_quiescent(supervisor: SessionSupervisor, *, sessions: int | None = None) -> None:
    """Assert that nothing is in flight, queued, open or draining, and that the counts add up.

    `sessions`, when given, is how many idle sessions may remain live (0 after a shutdown).
    """
    stats = supervisor.stats()
    infos = supervisor.sessions()
    problems: list[str] = []
    if stats.in_flight:
        problems.append(f"{stats.in_flight} request(s) in flight")
    if stats.draining:
        problems.append(f"{stats.draining} session(s) still draining")
    for info in infos:
        if info.queued:
            problems.append(f"session {info.session_id} has {info.queued} queued request(s)")
        if info.open_streams:
            problems.append(f"session {info.session_id} has {info.open_streams} open stream(s)")
        if info.state is not ActorState.RUNNING:
            problems.append(f"session {info.session_id} is {info.state.value}")
    if stats.created != stats.live + stats.total_closed:
        problems.append(f"created {stats.created} != live {stats.live} + closed {dict(stats.closed)}")
    if sessions is not None and stats.live != sessions:
        problems.append(f"{stats.live} live session(s), expected {sessions}")
    actors = supervisor.actor_tasks()
    if actors != stats.live:
        problems.append(f"{actors} actor task(s) in the supervisor nursery for {stats.live} live session(s)")
    if problems:
        raise AssertionError("not quiescent: " + "; ".join(problems))


def check_stopped(supervisor: SessionSupervisor) -> None:
    """After a supervisor has shut down: no session, task or request left, every session counted.

    `serve_for_test` runs it when its block ends without an error, so every test that serves a
    supervisor ends with this check (as OTP's supervisor suite checks child counts after each case).
    """
    stats = supervisor.stats()
    problems: list[str] = []
    if stats.live or supervisor.sessions():
        problems.append(f"{stats.live} session(s) still live")
    if stats.in_flight:
        problems.append(f"{stats.in_flight} request(s) still in flight")
    if stats.created != stats.total_closed:
        problems.append(f"created {stats.created} != closed {dict(stats.closed)}")
    if supervisor.actor_tasks():
        problems.append(f"{supervisor.actor_tasks()} actor task(s) left in the supervisor nursery")
    if problems:
        raise AssertionError("not stopped cleanly: " + "; ".join(problems))


async def settle(supervisor: SessionSupervisor, timeout: float = 10.0) -> None:
    """Wait until closing sessions have stopped and no request is in flight (or fail after `timeout`).

    A client can have its answer while the serving task is still finishing the response and a
    killed actor is still terminating its transport; this waits for that tail, without sleeping.
    """
    with trio.fail_after(timeout):
        while True:
            stats = supervisor.stats()
            if not stats.draining and stats.in_flight == sum(i.open_streams for i in supervisor.sessions()):
                return
            await trio.testing.wait_all_tasks_blocked()


def closed_counts(supervisor: SessionSupervisor) -> Counter[str]:
    """Closed sessions by reason, as a Counter (handy for before/after comparisons)."""
    return Counter(supervisor.stats().closed)


@attrs.frozen
class TestServer:
    """A supervisor served by real hypercorn (trio) on an ephemeral loopback port."""

    __test__ = False  # not a pytest test class

    url: str
    """The MCP endpoint, e.g. http://127.0.0.1:54321/mcp."""
    base_url: str
    supervisor: SessionSupervisor


@asynccontextmanager
async def serve_for_test(
    server: MCPServer | Server[Any],
    config: SupervisorConfig | None = None,
    *,
    faults: FaultPlan | None = None,
) -> AsyncIterator[TestServer]:
    """Serve `server` on 127.0.0.1:0 for the block; drain and stop when it ends, then `check_stopped`."""
    config = config or SupervisorConfig()
    stop = trio.Event()
    async with open_supervisor(server, config, faults=faults) as supervisor, trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(
            lambda task_status: serve_supervisor(
                supervisor,
                hypercorn_config("127.0.0.1:0", graceful_timeout=1.0),
                shutdown_trigger=stop.wait,
                task_status=task_status,
            )
        )
        base = binds[0]
        try:
            yield TestServer(url=base + config.path, base_url=base, supervisor=supervisor)
        finally:
            stop.set()
    # Leaving both blocks shut the supervisor down: nothing of it may be left.
    check_stopped(supervisor)
