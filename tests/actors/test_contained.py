"""Failures stay inside their actor: a raising handler, shielded work that ignores a kill."""

from __future__ import annotations

import trio
import trio.testing

from actors._settings import CLEANUP_TIMEOUT
from supervisor import SupervisorConfig, open_supervisor
from supervisor.testing import check_quiescent
from tests.support.helpers import initialize_body, rpc
from tests.support.inprocess import Answer, post
from tests.support.servers import Gate, build_server


async def open_one(supervisor: object) -> str:
    from supervisor import SessionSupervisor

    assert isinstance(supervisor, SessionSupervisor)
    answer = await post(supervisor, initialize_body())
    session_id = answer.headers["mcp-session-id"]
    await post(supervisor, rpc("notifications/initialized", None), session_id)
    return session_id


async def test_a_raising_handler_is_an_error_result_and_the_session_lives(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_supervisor(build_server(), SupervisorConfig()) as supervisor:
        session_id = await open_one(supervisor)
        answer = await post(
            supervisor, rpc("tools/call", 4, {"name": "explode", "arguments": {}}), session_id
        )
        message = answer.messages()[-1]
        assert message["id"] == 4
        assert message["result"]["isError"] is True
        assert (await post(supervisor, rpc("ping", 5), session_id)).status == 200
        assert supervisor.stats().closed == {}


async def test_shielded_work_delays_only_its_own_actor(autojump_clock: trio.testing.MockClock) -> None:
    gate = Gate()
    config = SupervisorConfig(drain_grace=1.0, kill_grace=1.0)
    async with open_supervisor(build_server(gate), config) as supervisor:
        stubborn = await open_one(supervisor)
        other = await open_one(supervisor)
        answers: list[Answer] = []

        async def call() -> None:
            body = rpc("tools/call", 6, {"name": "stubborn", "arguments": {"seconds": 30}})
            answers.append(await post(supervisor, body, stubborn))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(call)
            await gate.entered.wait()
            started = trio.current_time()
            assert supervisor.kill(stubborn)
            # The killed call is answered at once, with its id, though its work goes on shielded.
            with trio.fail_after(1):
                while not answers:
                    await trio.testing.wait_all_tasks_blocked()
            assert answers[0].messages()[-1]["id"] == 6
            assert trio.current_time() - started < 1
            # Other sessions work meanwhile.
            assert (await post(supervisor, rpc("ping", 7), other)).status == 200
        # Shutdown returns within its bound (grace + kill grace + cleanup) in virtual time, even
        # though the shielded work (30 s) outlasts it; the other session closed normally.
        before = trio.current_time()
        await supervisor.shutdown()
        assert trio.current_time() - before <= config.drain_grace + config.kill_grace + CLEANUP_TIMEOUT + 1
        assert trio.current_time() - started < 30
        assert supervisor.stats().closed == {"shutdown": 1}
    # Leaving the supervisor waited for the shielded work; then everything was accounted for.
    assert supervisor.stats().closed == {"killed": 1, "shutdown": 1}
    check_quiescent(supervisor, sessions=0)
