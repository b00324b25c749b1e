"""Racing clients, many times in one test, with the log checked for ERROR records afterwards."""

from __future__ import annotations

import json
import logging

import httpx
import pytest
import trio
import trio.lowlevel
import trio.testing

from supervisor import SupervisorConfig, open_supervisor
from supervisor.testing import check_quiescent, serve_for_test, settle
from tests.support.helpers import mcp_headers, messages_of, open_session, rpc
from tests.support.inprocess import Answer, call_app, open_in_process, post
from tests.support.servers import build_server


def errors_in(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        f"{record.name}: {record.getMessage()}"
        for record in caplog.records
        if record.levelno >= logging.ERROR or record.exc_info
    ]


async def test_two_concurrent_gets_get_one_stream_and_one_409(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    async with serve_for_test(build_server()) as served:
        for _ in range(50):
            session_id = await open_session(http, served.url)
            headers = mcp_headers(session_id, accept="text/event-stream")
            statuses: list[int] = []
            both = trio.Event()

            async def get(
                headers: dict[str, str] = headers, statuses: list[int] = statuses, both: trio.Event = both
            ) -> None:
                async with http.stream("GET", served.url, headers=headers) as response:
                    statuses.append(response.status_code)
                    if response.status_code == 409:
                        refusal = json.loads(await response.aread())
                        assert refusal["error"]["code"] == -32600
                        assert "Only one SSE stream" in refusal["error"]["message"]
                    if len(statuses) == 2:
                        both.set()
                    if response.status_code == 200:
                        await both.wait()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(get)
                nursery.start_soon(get)
            assert sorted(statuses) == [200, 409]
            info = served.supervisor.get(session_id)
            assert info is not None
            deleted = await http.delete(served.url, headers=mcp_headers(session_id))
            assert deleted.status_code == 200
        await settle(served.supervisor)
        check_quiescent(served.supervisor, sessions=0)
        assert served.supervisor.stats().requests.get("conflict") == 50
    assert not errors_in(caplog)


@pytest.mark.parametrize("json_response", [False, True])
async def test_post_racing_delete_is_answered_and_logs_no_error(
    json_response: bool, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    config = SupervisorConfig(json_response=json_response)
    async with serve_for_test(build_server(), config) as served:
        for pair in range(200):
            session_id = await open_session(http, served.url)
            answers: list[httpx.Response] = []
            call = rpc("tools/call", pair, {"name": "echo", "arguments": {"text": "hi"}})

            async def post(
                session_id: str = session_id, call: bytes = call, answers: list[httpx.Response] = answers
            ) -> None:
                answers.append(await http.post(served.url, content=call, headers=mcp_headers(session_id)))

            async def delete(session_id: str = session_id) -> None:
                response = await http.delete(served.url, headers=mcp_headers(session_id))
                assert response.status_code in (200, 404)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(post)
                nursery.start_soon(delete)
            [answer] = answers
            assert "Traceback" not in answer.text
            [message] = [m for m in messages_of(answer) if m.get("id") == pair]
            assert ("result" in message) != ("error" in message)
        await settle(served.supervisor)
        check_quiescent(served.supervisor, sessions=0)
    assert not errors_in(caplog)


async def test_a_408_racing_the_clients_close_logs_no_error(caplog: pytest.LogCaptureFixture) -> None:
    """The client reads its 408 and closes at once, 30 times: one sender per response, no error."""
    async with serve_for_test(build_server(), SupervisorConfig(body_timeout=0.2)) as served:
        host, port = served.base_url.removeprefix("http://").split(":")
        body = rpc("ping", 5)
        head = (
            f"POST /mcp HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Accept: application/json, text/event-stream\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        for _ in range(30):
            stream = await trio.open_tcp_stream(host, int(port))
            await stream.send_all(head + body[:10])
            answer = b""
            with trio.fail_after(10):
                while b'"message"' not in answer or not answer.endswith(b"}}"):
                    chunk = await stream.receive_some(65536)
                    assert chunk, answer
                    answer += chunk
            await stream.aclose()
            assert answer.startswith(b"HTTP/1.1 408")
        await settle(served.supervisor)
    assert not errors_in(caplog)


@pytest.mark.parametrize("json_response", [False, True])
async def test_a_dormant_sessions_first_call_racing_delete_closes_at_once_without_error(
    json_response: bool, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Quick open leaves a session dormant; its first call wakes it while a DELETE closes it.

    The DELETE comes 0 to 11 checkpoints after the call, so every step of the wake (the handshake
    replayed into the fresh loop, the call spawned) is raced. The close takes no drain time (grace
    0, trio's clock) and no actor fails.
    """
    config = SupervisorConfig(hibernate_after=10.0, idle_timeout=600.0, json_response=json_response)
    caplog.set_level(logging.INFO)
    async with open_supervisor(build_server(), config) as supervisor:
        await open_in_process(supervisor)  # the first open is served by the server itself
        for round_ in range(240):
            session_id = await open_in_process(supervisor)
            actor = supervisor.actor_of(session_id)
            assert actor is not None
            assert not actor.statistics().awake, "quick open: born dormant"
            answers: list[Answer] = []
            # An async tool: a sync one runs in a worker thread, which no close can cancel, and
            # while it runs the autojump clock jumps to the next deadline.
            call = rpc("tools/call", round_, {"name": "sleep", "arguments": {"seconds": 0}})

            async def call_it(
                call: bytes = call, session_id: str = session_id, answers: list[Answer] = answers
            ) -> None:
                answers.append(await post(supervisor, call, session_id))

            async def delete_it(session_id: str = session_id, lag: int = round_ % 12) -> None:
                for _ in range(lag):
                    await trio.lowlevel.checkpoint()
                deleted = await call_app(supervisor, "DELETE", headers=mcp_headers(session_id))
                assert deleted.status in (200, 404)

            started = trio.current_time()
            with trio.fail_after(60):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(call_it)
                    nursery.start_soon(delete_it)
            with trio.fail_after(60):
                await actor.stopped.wait()
            assert trio.current_time() - started < 1.0, f"round {round_}: the close waited"
            [answer] = answers
            # Served (200), closed first (404), or ended under it (the SDK's own 500 in JSON mode):
            # always a JSON-RPC answer carrying the call's id.
            assert answer.status in (200, 404, 500), answer.body
            [message] = [m for m in answer.messages() if m.get("id") == round_]
            assert ("result" in message) != ("error" in message)
        await settle(supervisor)
        check_quiescent(supervisor, sessions=1)
    assert not errors_in(caplog)
    assert not [r for r in caplog.records if "actor failed" in r.getMessage()]
