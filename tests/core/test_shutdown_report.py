"""A shutdown's output scales (issue 27.6): a progress line while sessions drain, one summary at
the end, and each session's closing and closed lines at DEBUG. Virtual time (MockClock)."""

from __future__ import annotations

import logging

import pytest
import trio
import trio.testing

from supervisor import SupervisorConfig, open_supervisor
from tests.support.helpers import rpc
from tests.support.inprocess import Answer, open_in_process, post
from tests.support.servers import build_server

GRACE = 12.0


@pytest.mark.parametrize(
    ("json_response", "direct_answers"), [(False, True), (True, True), (False, False), (True, False)]
)
async def test_a_drain_reports_progress_and_ends_with_one_summary(
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
    json_response: bool,
    direct_answers: bool,
) -> None:
    caplog.set_level(logging.DEBUG)
    answers: list[Answer] = []
    config = SupervisorConfig(
        drain_grace=GRACE, kill_grace=1.0, json_response=json_response, direct_answers=direct_answers
    )
    async with open_supervisor(build_server(), config) as supervisor:
        sessions = [await open_in_process(supervisor) for _ in range(20)]
        long = [
            rpc("tools/call", n, {"name": "sleep", "arguments": {"seconds": s}}) for n, s in ((1, 7), (2, 60))
        ]

        async def call(body: bytes, session_id: str) -> None:
            answers.append(await post(supervisor, body, session_id))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(call, long[0], sessions[0])  # ends within the grace
            nursery.start_soon(call, long[1], sessions[1])  # cut off at its end
            await trio.sleep(1.0)
            caplog.clear()
            await supervisor.shutdown()
    lines = [r for r in caplog.records if r.name.startswith(("supervisor", "actors"))]
    progress = [r.getMessage() for r in lines if r.getMessage().startswith("draining:")]
    assert progress and all(r.startswith("draining: ") for r in progress)
    assert "2 session(s) left, 2 call(s) in flight" in progress[0]
    [summary] = [r for r in lines if r.getMessage().startswith("stopped:")]
    assert summary.levelno == logging.INFO
    assert summary.getMessage() == (
        "stopped: 20 session(s) closed, 1 call(s) finished during the drain, 1 cut off at its end"
    )
    per_session = [
        r for r in lines if "] closing (shutdown" in r.getMessage() or "] closed (shutdown" in r.getMessage()
    ]
    assert len(per_session) == 40 and all(r.levelno == logging.DEBUG for r in per_session)
    info_lines = [r for r in lines if r.levelno >= logging.INFO]
    assert len(info_lines) <= 2 + len(progress)  # "shutting down", the progress, the summary
    # The cut-off call is answered too: an error with its id that says why (not "Connection closed").
    assert sorted(answer.status for answer in answers) == [200, 200]
    finished, cut_off = sorted(answers, key=lambda answer: "error" in answer.messages()[-1])
    assert finished.messages()[-1]["result"]["content"][0]["text"] == "slept 7.0s"
    assert cut_off.messages()[-1] == {
        "jsonrpc": "2.0",
        "id": 2,
        "error": {"code": -32000, "message": "Server is shutting down"},
    }
