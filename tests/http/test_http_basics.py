"""The core over real HTTP: real hypercorn, real mcp.Client, the SDK's own transport."""

from __future__ import annotations

import functools
import json
import logging
from typing import Any, Literal

import httpx
import pytest
import trio
import trio.testing
from mcp import Client
from mcp.types import TextContent

from supervisor import SupervisorConfig
from supervisor.testing import TestServer, check_quiescent, serve_for_test, settle
from tests.conformance.event_store import MemoryEventStore
from tests.support.helpers import error_of, mcp_headers, open_session, rpc
from tests.support.servers import Gate, build_server
from tests.support.sse import message_in


def text_of(result: Any) -> str:
    content = result.content[0]
    assert isinstance(content, TextContent)
    return content.text


@pytest.mark.parametrize("mode", ["legacy", "auto"])
@pytest.mark.parametrize("json_response", [False, True])
async def test_initialize_and_call(mode: Literal["legacy", "auto"], json_response: bool) -> None:
    config = SupervisorConfig(json_response=json_response)
    async with serve_for_test(build_server(), config) as served:
        async with Client(served.url, mode=mode) as client:
            assert text_of(await client.call_tool("echo", {"text": "hello"})) == "hello"
            assert text_of(await client.call_tool("add", {"a": 2, "b": 3})) == "5.0"
            stats = served.supervisor.stats()
            if mode == "auto":
                # auto negotiates the newest era the server offers: 2026-07-28, stateless.
                assert stats.live == 0
                assert stats.requests["stateless"] >= 2
            else:
                assert stats.live == 1
                assert stats.running == 1
        stats = served.supervisor.stats()
        assert stats.live == 0
        if mode == "legacy":
            # Leaving the client sends DELETE: the session is closed by the client.
            assert stats.created == 1
            assert stats.closed == {"client_delete": 1}


async def test_progress_notifications_reach_the_client(served: TestServer) -> None:
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    async with Client(served.url, mode="legacy") as client:
        result = await client.call_tool("countdown", {"n": 3}, progress_callback=on_progress)
        assert text_of(result) == "liftoff"
    assert seen == [1, 2, 3]


async def test_delete_then_404(served: TestServer, http: httpx.AsyncClient) -> None:
    session_id = await open_session(http, served.url)
    assert served.supervisor.get(session_id) is not None
    deleted = await http.delete(served.url, headers=mcp_headers(session_id))
    assert deleted.status_code == 200
    assert served.supervisor.get(session_id) is None
    after = await http.post(served.url, content=rpc("tools/list", 2), headers=mcp_headers(session_id))
    assert after.status_code == 404
    error = error_of(after)
    # The SDK's own answer for an unknown session: 404, -32600 "Session not found".
    assert error["code"] == -32600
    assert error["id"] == 2


async def test_unknown_session_is_404(served: TestServer, http: httpx.AsyncClient) -> None:
    unknown = "0" * 32
    for method in ("POST", "GET", "DELETE"):
        response = await http.request(
            method,
            served.url,
            content=rpc("tools/list", 7) if method == "POST" else None,
            headers=mcp_headers(unknown),
        )
        assert response.status_code == 404, method
        assert error_of(response)["code"] == -32600


async def test_non_initialize_without_session_is_400(served: TestServer, http: httpx.AsyncClient) -> None:
    response = await http.post(served.url, content=rpc("tools/list", 3), headers=mcp_headers())
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == -32600
    assert error["id"] == 3


async def test_fifty_concurrent_calls_on_one_session(served: TestServer, gate: Gate) -> None:
    async with Client(served.url, mode="legacy") as client:
        session = served.supervisor.sessions()[0]
        actor = served.supervisor.route(session.session_id)
        assert actor is not None
        results: list[str] = []

        async def call(index: int) -> None:
            results.append(text_of(await client.call_tool("wait", {"label": str(index)})))

        async with trio.open_nursery() as nursery:
            for index in range(50):
                nursery.start_soon(call, index)
            while gate.arrivals < 50:
                await trio.testing.wait_all_tasks_blocked()
            # The live count is the request nursery's own child count, nothing kept by hand;
            # the legacy client also holds the standalone GET stream open.
            streams = actor.statistics().open_streams
            assert streams == 1
            assert actor.statistics().in_flight == 50 + streams
            assert served.supervisor.stats().in_flight == 50 + streams
            assert served.supervisor.get(session.session_id) is not None
            gate.release.set()
        assert sorted(results) == sorted(f"released {index}" for index in range(50))
        # A request task may still be closing its SSE response after the client read the result.
        with trio.fail_after(5):
            while actor.statistics().in_flight > actor.statistics().open_streams:
                await trio.testing.wait_all_tasks_blocked()
        assert actor.statistics().in_flight == actor.statistics().open_streams
        assert served.supervisor.stats().in_flight == actor.statistics().open_streams


async def test_max_sessions_gives_503_with_retry_after(http: httpx.AsyncClient) -> None:
    async with serve_for_test(build_server(), SupervisorConfig(max_sessions=2)) as served:
        await open_session(http, served.url)
        await open_session(http, served.url)
        response = await http.post(
            served.url,
            content=rpc(
                "initialize",
                1,
                {
                    "protocolVersion": "2025-11-25",
                    "capabilities": {},
                    "clientInfo": {"name": "x", "version": "0"},
                },
            ),
            headers=mcp_headers(),
        )
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        error = error_of(response)
        assert error["id"] == 1
        assert served.supervisor.stats().live == 2


async def test_stateless_calls_create_no_actor(served: TestServer) -> None:
    async with Client(served.url, mode="2026-07-28") as client:
        assert text_of(await client.call_tool("echo", {"text": "modern"})) == "modern"
    stats = served.supervisor.stats()
    assert stats.created == 0
    assert stats.live == 0
    assert stats.requests.get("stateless", 0) >= 1


async def test_get_stream_receives_a_notification(served: TestServer, http: httpx.AsyncClient) -> None:
    session_id = await open_session(http, served.url)
    headers = mcp_headers(session_id, accept="text/event-stream")
    async with http.stream("GET", served.url, headers=headers) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        call = rpc("tools/call", 4, {"name": "announce", "arguments": {}})
        answer = await http.post(served.url, content=call, headers=mcp_headers(session_id))
        assert answer.status_code == 200
        with trio.fail_after(10):
            async for line in stream.aiter_lines():
                message = message_in(line)
                if message is not None:
                    assert message["method"] == "notifications/tools/list_changed"
                    break
        info = served.supervisor.get(session_id)
        assert info is not None
        assert info.open_streams == 1
    # A second GET while one is open would be refused by the transport; after closing ours, a
    # DELETE ends the session cleanly.
    deleted = await http.delete(served.url, headers=mcp_headers(session_id))
    assert deleted.status_code == 200


MODES = {
    "direct SSE": SupervisorConfig(),
    "direct JSON": SupervisorConfig(json_response=True),
    "transport SSE": SupervisorConfig(direct_answers=False),
    "transport JSON": SupervisorConfig(direct_answers=False, json_response=True),
    "event store": SupervisorConfig(event_store=MemoryEventStore()),
}


@pytest.mark.parametrize("mode", list(MODES))
async def test_a_client_leaving_is_not_a_cancellation(
    mode: str, gate: Gate, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Handshake-era versions: a dropped connection is not the client cancelling its request.

    The tool runs on to its end and the request stays in flight until then (so the session cannot
    idle out under it); only the transport's SSE path without an event store, whose stream ends
    with the client, stops counting it early (docs/faults.md).
    """
    caplog.set_level(logging.DEBUG, logger="supervisor._exchange")
    async with serve_for_test(build_server(gate), MODES[mode]) as served:
        session_id = await open_session(http, served.url)
        actor = served.supervisor.route(session_id)
        assert actor is not None
        call = rpc("tools/call", 21, {"name": "wait", "arguments": {}})
        async with trio.open_nursery() as nursery:
            nursery.start_soon(
                functools.partial(http.post, served.url, content=call, headers=mcp_headers(session_id))
            )
            await gate.entered.wait()
            assert actor.statistics().in_flight == 1
            # Closing the client's socket mid-request.
            nursery.cancel_scope.cancel()
        with trio.fail_after(10):
            while not any("runs on" in record.getMessage() for record in caplog.records):
                await trio.testing.wait_all_tasks_blocked()
        await trio.testing.wait_all_tasks_blocked()
        assert gate.cancelled == 0
        counted = 0 if mode == "transport SSE" else 1
        assert actor.statistics().in_flight == counted
        gate.release.set()
        with trio.fail_after(10):
            while actor.statistics().in_flight or gate.completed == 0:
                await trio.testing.wait_all_tasks_blocked()
        assert gate.completed == 1
        assert gate.cancelled == 0
        await settle(served.supervisor)
        assert served.supervisor.stats().requests.get("client_gone") == 1
        # The session stays healthy, and nothing was logged as an error.
        ping = await http.post(served.url, content=rpc("ping", 22), headers=mcp_headers(session_id))
        assert ping.status_code == 200
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_client_cancels_with_notifications_cancelled(gate: Gate, http: httpx.AsyncClient) -> None:
    """The protocol's own cancellation still stops the tool, after the client left too."""
    async with serve_for_test(build_server(gate)) as served:
        session_id = await open_session(http, served.url)
        call = rpc("tools/call", 31, {"name": "wait", "arguments": {}})
        async with trio.open_nursery() as nursery:
            nursery.start_soon(
                functools.partial(http.post, served.url, content=call, headers=mcp_headers(session_id))
            )
            await gate.entered.wait()
            nursery.cancel_scope.cancel()
        cancel = json.dumps(
            {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 31}}
        ).encode()
        sent = await http.post(served.url, content=cancel, headers=mcp_headers(session_id))
        assert sent.status_code == 202
        with trio.fail_after(10):
            while gate.cancelled == 0 or served.supervisor.stats().in_flight:
                await trio.testing.wait_all_tasks_blocked()
        assert gate.completed == 0
        check_quiescent(served.supervisor, sessions=1)


async def test_prometheus_metrics(http: httpx.AsyncClient) -> None:
    async with serve_for_test(build_server()) as served:
        await open_session(http, served.url)
        closed = await open_session(http, served.url)
        await http.delete(served.url, headers=mcp_headers(closed))
        response = await http.get(served.base_url + "/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        text = response.text
        assert 'mcp_sessions{state="running"} 1.0' in text
        assert "mcp_sessions_created_total 2.0" in text
        assert 'mcp_sessions_closed_total{reason="client_delete"} 1.0' in text
        assert 'mcp_requests_in_flight{lane="session"} 0.0' in text
    async with serve_for_test(build_server(), SupervisorConfig(metrics_path=None)) as served:
        assert (await http.get(served.base_url + "/metrics")).status_code == 404


async def test_a_2026_client_leaving_cancels_its_request(gate: Gate) -> None:
    """The 2026-07-28 era makes the disconnect the cancellation: the tool is cancelled."""
    async with serve_for_test(build_server(gate)) as served:
        async with trio.open_nursery() as nursery:

            async def call() -> None:
                async with Client(served.url, mode="2026-07-28") as client:
                    await client.call_tool("wait", {})

            nursery.start_soon(call)
            await gate.entered.wait()
            nursery.cancel_scope.cancel()
        with trio.fail_after(10):
            while gate.cancelled == 0 or served.supervisor.stats().in_flight:
                await trio.testing.wait_all_tasks_blocked()
        assert gate.completed == 0
        assert served.supervisor.stats().live == 0
