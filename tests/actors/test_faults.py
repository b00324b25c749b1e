"""Kill, stop and crash session actors at named moments; every request still gets its answer."""

from __future__ import annotations

import httpx
import pytest
import trio

from supervisor import CloseStep, SupervisorConfig
from supervisor.testing import FaultPlan, FaultPoint, check_quiescent, serve_for_test, settle
from tests.support.helpers import error_of, mcp_headers, messages_of, open_session, rpc
from tests.support.servers import Gate, build_server

WAIT_CALL = rpc("tools/call", 42, {"name": "wait", "arguments": {}})

SSE_POINTS = [
    FaultPoint.BEFORE_HANDOFF,
    FaultPoint.TOOL_RUNNING,
    FaultPoint.AFTER_SSE_HEADERS,
]
JSON_POINTS = [FaultPoint.BEFORE_HANDOFF, FaultPoint.TOOL_RUNNING]
CASES = [(False, point) for point in SSE_POINTS] + [(True, point) for point in JSON_POINTS]


def answer_of(response: httpx.Response) -> dict[str, object]:
    """The one JSON-RPC answer in a response, JSON or SSE; never a traceback."""
    assert "Traceback" not in response.text
    answers = [m for m in messages_of(response) if "id" in m]
    assert len(answers) == 1, response.text
    return answers[0]


@pytest.mark.parametrize(("json_response", "point"), CASES)
@pytest.mark.parametrize("action", ["kill", "crash", "stop"])
async def test_fault_mid_request_answers_with_the_request_id(
    json_response: bool, point: FaultPoint, action: str, http: httpx.AsyncClient
) -> None:
    plan = FaultPlan()
    gate = Gate()
    config = SupervisorConfig(json_response=json_response)
    async with serve_for_test(build_server(gate), config, faults=plan) as served:
        session_id = await open_session(http, served.url)
        bystander = await open_session(http, served.url)
        if action == "kill":
            plan.kill_at(point, session_id)
        elif action == "crash":
            plan.crash_at(point, session_id)
        else:
            plan.stop_at(point, session_id, grace=0.0)
        response = await http.post(served.url, content=WAIT_CALL, headers=mcp_headers(session_id))
        assert plan.armed == 0
        answer = answer_of(response)
        assert answer["id"] == 42
        assert isinstance(answer["error"], dict)
        assert answer["error"]["code"] == -32000
        if response.headers["content-type"].startswith("application/json"):
            assert response.status_code in (200, 404)
        else:
            assert response.status_code == 200
        # The faulted session answers 404 from now on; the other one is untouched.
        after = await http.post(served.url, content=rpc("ping", 7), headers=mcp_headers(session_id))
        assert after.status_code == 404
        assert error_of(after)["id"] == 7
        ping = await http.post(served.url, content=rpc("ping", 8), headers=mcp_headers(bystander))
        assert ping.status_code == 200
        assert answer_of(ping) == {"jsonrpc": "2.0", "id": 8, "result": {}}
        await settle(served.supervisor)
        check_quiescent(served.supervisor, sessions=1)
        reason = {"kill": "killed", "crash": "crashed", "stop": "closed"}[action]
        assert served.supervisor.stats().closed == {reason: 1}


async def test_kill_during_initialize_then_reinitialize(http: httpx.AsyncClient) -> None:
    plan = FaultPlan()
    plan.kill_at(FaultPoint.INITIALIZE)
    async with serve_for_test(build_server(), faults=plan) as served:
        from tests.support.helpers import initialize_body

        response = await http.post(served.url, content=initialize_body(3), headers=mcp_headers())
        assert response.status_code == 404
        assert error_of(response)["id"] == 3
        assert "mcp-session-id" not in response.headers
        await settle(served.supervisor)
        assert served.supervisor.stats().closed == {"killed": 1}
        assert served.supervisor.stats().requests == {"aborted": 1}
        # A fresh initialize works.
        session_id = await open_session(http, served.url)
        assert served.supervisor.get(session_id) is not None
        await settle(served.supervisor)
        check_quiescent(served.supervisor, sessions=1)


async def test_kill_with_get_stream_open(http: httpx.AsyncClient) -> None:
    plan = FaultPlan()
    async with serve_for_test(build_server(), faults=plan) as served:
        session_id = await open_session(http, served.url)
        plan.kill_at(FaultPoint.STREAM_OPEN, session_id)
        headers = mcp_headers(session_id, accept="text/event-stream")
        async with http.stream("GET", served.url, headers=headers) as response:
            assert response.status_code == 200
            body = b"".join([chunk async for chunk in response.aiter_bytes()])
        assert b"Traceback" not in body
        # The client can have the end of its stream while the killed actor still unwinds.
        await settle(served.supervisor)
        assert served.supervisor.get(session_id) is None
        check_quiescent(served.supervisor, sessions=0)
        assert served.supervisor.stats().closed == {"killed": 1}


async def test_kill_during_close(http: httpx.AsyncClient) -> None:
    plan = FaultPlan()
    gate = Gate()
    async with serve_for_test(build_server(gate), faults=plan) as served:
        session_id = await open_session(http, served.url)
        plan.kill_at(FaultPoint.DURING_CLOSE, session_id)
        responses: list[httpx.Response] = []

        async def call() -> None:
            responses.append(await http.post(served.url, content=WAIT_CALL, headers=mcp_headers(session_id)))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(call)
            await gate.entered.wait()
            # A long grace: only the injected kill can end the drain early.
            await served.supervisor.close_session(session_id, grace=3600)
        answer = answer_of(responses[0])
        assert answer["id"] == 42
        await settle(served.supervisor)
        check_quiescent(served.supervisor, sessions=0)


async def test_crash_in_one_session_leaves_twenty_others_working(http: httpx.AsyncClient) -> None:
    plan = FaultPlan()
    gate = Gate()
    async with serve_for_test(build_server(gate), faults=plan) as served:
        victim = await open_session(http, served.url)
        others = [await open_session(http, served.url) for _ in range(20)]
        results: dict[str, httpx.Response] = {}

        async def call(session_id: str) -> None:
            results[session_id] = await http.post(
                served.url, content=WAIT_CALL, headers=mcp_headers(session_id)
            )

        async with trio.open_nursery() as nursery:
            for session_id in others:
                nursery.start_soon(call, session_id)
            while gate.arrivals < 20:
                await trio.testing.wait_all_tasks_blocked()
            # With twenty calls in flight elsewhere, the victim's server loop crashes mid-call.
            plan.crash_at(FaultPoint.TOOL_RUNNING, victim)
            crashed = await http.post(served.url, content=WAIT_CALL, headers=mcp_headers(victim))
            assert answer_of(crashed)["id"] == 42
            # The SDK's own shutdown answer for a request whose handler was running (faults.md).
            assert answer_of(crashed)["error"] == {"code": -32000, "message": "Connection closed"}
            gate.release.set()
        for session_id in others:
            answer = answer_of(results[session_id])
            assert answer["result"]["content"][0]["text"] == "released "  # type: ignore[index]
        await settle(served.supervisor)
        stats = served.supervisor.stats()
        assert stats.closed == {"crashed": 1}
        assert stats.live == 20
        for session_id in others:
            ping = await http.post(served.url, content=rpc("ping", 1), headers=mcp_headers(session_id))
            assert ping.status_code == 200
        await settle(served.supervisor)
        check_quiescent(served.supervisor, sessions=20)


async def test_graceful_close_ordering(http: httpx.AsyncClient) -> None:
    gate = Gate()
    async with serve_for_test(build_server(gate)) as served:
        session_id = await open_session(http, served.url)
        actor = served.supervisor.route(session_id)
        assert actor is not None
        responses: list[httpx.Response] = []

        async def call() -> None:
            responses.append(await http.post(served.url, content=WAIT_CALL, headers=mcp_headers(session_id)))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(call)
            await gate.entered.wait()
            closing = trio.Event()

            async def close() -> None:
                await served.supervisor.close_session(session_id, grace=3600)
                closing.set()

            nursery.start_soon(close)
            await trio.testing.wait_all_tasks_blocked()
            # Deregistered at once: new requests get 404 while the old one is still running.
            assert actor.close_steps == [
                CloseStep.DEREGISTERED,
                CloseStep.MAILBOX_CLOSED,
                CloseStep.STREAMS_ENDED,
            ]
            refused = await http.post(served.url, content=rpc("ping", 5), headers=mcp_headers(session_id))
            assert refused.status_code == 404
            assert not closing.is_set()
            gate.release.set()
        assert answer_of(responses[0])["result"] is not None
        assert actor.close_steps == [
            CloseStep.DEREGISTERED,
            CloseStep.MAILBOX_CLOSED,
            CloseStep.STREAMS_ENDED,
            CloseStep.REQUESTS_DONE,
            CloseStep.LOOP_CANCELLED,
            CloseStep.TERMINATED,
            CloseStep.STOPPED,
        ]


async def test_grace_runs_out_loop_cancelled_before_requests(http: httpx.AsyncClient) -> None:
    gate = Gate()
    async with serve_for_test(build_server(gate)) as served:
        session_id = await open_session(http, served.url)
        actor = served.supervisor.route(session_id)
        assert actor is not None
        responses: list[httpx.Response] = []

        async def call() -> None:
            responses.append(await http.post(served.url, content=WAIT_CALL, headers=mcp_headers(session_id)))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(call)
            await gate.entered.wait()
            await served.supervisor.close_session(session_id, grace=0.0)
        # The SDK answered the stuck call itself, with its id, once its loop was cancelled.
        answer = answer_of(responses[0])
        assert answer["id"] == 42
        assert gate.cancelled == 1
        assert actor.close_steps.index(CloseStep.LOOP_CANCELLED) < actor.close_steps.index(
            CloseStep.REQUESTS_DONE
        )
        assert actor.close_steps[-2:] == [CloseStep.TERMINATED, CloseStep.STOPPED]
