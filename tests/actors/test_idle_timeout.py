"""Idle expiry under a MockClock: virtual time, no sleeping as synchronisation."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from supervisor import ActorState, SupervisorConfig, open_supervisor
from tests.support.helpers import rpc
from tests.support.inprocess import open_in_process, post
from tests.support.servers import build_server

IDLE = 60.0


async def test_idle_session_expires_then_404(autojump_clock: trio.testing.MockClock) -> None:
    # Without hibernation the idle countdown is the only one (with it, `idle_deadline` is the
    # next to fire: hibernation, then the timeout).
    config = SupervisorConfig(idle_timeout=IDLE, hibernate_after=None)
    async with open_supervisor(build_server(), config) as supervisor:
        session_id = await open_in_process(supervisor)
        info = supervisor.get(session_id)
        assert info is not None
        assert info.idle_deadline == pytest.approx(trio.current_time() + IDLE)
        await trio.sleep(IDLE - 1)
        assert supervisor.get(session_id) is not None
        await trio.sleep(2)
        assert supervisor.get(session_id) is None
        assert supervisor.stats().closed == {"idle": 1}
        answer = await post(supervisor, rpc("tools/list", 5), session_id)
        assert answer.status == 404
        assert answer.messages()[0]["id"] == 5


async def test_each_request_restarts_the_countdown(autojump_clock: trio.testing.MockClock) -> None:
    async with open_supervisor(build_server(), SupervisorConfig(idle_timeout=IDLE)) as supervisor:
        session_id = await open_in_process(supervisor)
        for _ in range(5):
            await trio.sleep(IDLE - 1)
            answer = await post(supervisor, rpc("ping", 9), session_id)
            assert answer.status == 200
        assert supervisor.get(session_id) is not None
        assert trio.current_time() > 4 * IDLE


async def test_a_call_longer_than_the_idle_timeout_keeps_its_session(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_supervisor(build_server(), SupervisorConfig(idle_timeout=IDLE)) as supervisor:
        session_id = await open_in_process(supervisor)
        started = trio.current_time()
        call = rpc("tools/call", 2, {"name": "sleep", "arguments": {"seconds": 5 * IDLE}})
        answer = await post(supervisor, call, session_id)
        assert trio.current_time() - started >= 5 * IDLE
        assert answer.status == 200
        assert answer.messages()[-1]["result"]["content"][0]["text"] == f"slept {5 * IDLE}s"
        info = supervisor.get(session_id)
        assert info is not None
        assert info.state is ActorState.RUNNING
        # The countdown starts again at the call's completion.
        await trio.sleep(IDLE + 1)
        assert supervisor.get(session_id) is None


async def test_no_idle_timeout_means_forever(autojump_clock: trio.testing.MockClock) -> None:
    async with open_supervisor(build_server(), SupervisorConfig(idle_timeout=None)) as supervisor:
        session_id = await open_in_process(supervisor)
        await trio.sleep(365 * 24 * 3600)
        assert supervisor.get(session_id) is not None
