"""Checks that a supervisor is quiet, or stopped, with every session accounted for."""

from __future__ import annotations

import trio
import trio.testing

from actors import ActorState
from supervisor._core import SessionSupervisor


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
