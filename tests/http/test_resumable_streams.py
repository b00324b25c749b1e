"""Resumable streams over real HTTP: SSE polling keeps its priming event on trio, an opening
initialize whose client reads only the priming event still makes a session, and an unknown
protocol version is answered by the SDK's own 2026-07-28 ladder."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import trio
from mcp.server.mcpserver import Context, MCPServer

from supervisor import SupervisorConfig
from supervisor.testing import TestServer, serve_for_test
from tests.conformance.event_store import MemoryEventStore
from tests.support.helpers import initialize_body, mcp_headers, messages_of, open_session, rpc
from tests.support.sse import message_in, sse_events

RETRY_MS = 50


def polling_server(store: MemoryEventStore) -> MCPServer:
    server: MCPServer = MCPServer("polling")

    @server.tool()
    async def poll_later(ctx: Context) -> str:
        """Closes its stream at once, before anything else happened: the race the fix covers."""
        resumed = store.expect_resume(str(ctx.request_id))
        await ctx.close_sse_stream()
        await resumed()
        await ctx.report_progress(1, total=1)
        return "done after the reconnect"

    return server


@pytest.fixture
async def resumable() -> AsyncIterator[TestServer]:
    store = MemoryEventStore()
    config = SupervisorConfig(event_store=store, retry_interval=RETRY_MS)
    async with serve_for_test(polling_server(store), config) as served:
        yield served


async def test_a_tool_closing_its_stream_at_once_still_sends_the_priming_event(
    resumable: TestServer, http: httpx.AsyncClient
) -> None:
    session_id = await open_session(http, resumable.url)
    call = rpc("tools/call", 7, {"name": "poll_later", "arguments": {}})
    response = await http.post(resumable.url, content=call, headers=mcp_headers(session_id))
    assert response.status_code == 200
    events = sse_events(response.text)
    # The stream ended early, but not empty: its first event says where to resume, and when.
    assert events, "the stream was closed before its priming event was written"
    priming = events[0]
    assert priming["id"]
    assert priming["retry"] == str(RETRY_MS)
    assert priming.get("data", "") == ""
    assert not any('"result"' in event.get("data", "") for event in events)

    # Resume the way a client does: GET with Last-Event-ID, read until the answer arrives.
    headers = mcp_headers(session_id, **{"last-event-id": events[-1]["id"]})
    resumed: list[dict[str, Any]] = []
    with trio.fail_after(10):
        async with http.stream("GET", resumable.url, headers=headers) as replay:
            assert replay.status_code == 200
            async for line in replay.aiter_lines():
                message = message_in(line)
                if message is not None:
                    resumed.append(message)
                    if message.get("id") == 7:
                        break
    answer = next(message for message in resumed if message.get("id") == 7)
    assert answer["result"]["content"][0]["text"] == "done after the reconnect"


async def test_a_client_that_reads_only_the_priming_event_of_initialize_keeps_its_session(
    resumable: TestServer,
) -> None:
    async with (
        httpx.AsyncClient(timeout=10) as http,
        http.stream("POST", resumable.url, content=initialize_body(), headers=mcp_headers()) as opening,
    ):
        assert opening.status_code == 200
        session_id = opening.headers["mcp-session-id"]
        async for _ in opening.aiter_lines():
            break  # leave after the first line of the first event
    async with httpx.AsyncClient(timeout=10) as http:
        initialized = await http.post(
            resumable.url, content=rpc("notifications/initialized", None), headers=mcp_headers(session_id)
        )
        assert initialized.status_code == 202
        ping = await http.post(resumable.url, content=rpc("ping", 2), headers=mcp_headers(session_id))
        assert ping.status_code == 200
        assert messages_of(ping)[-1] == {"jsonrpc": "2.0", "id": 2, "result": {}}
    assert resumable.supervisor.stats().live == 1


async def test_an_unknown_protocol_version_gets_the_sdk_ladders_answer(
    served: TestServer, http: httpx.AsyncClient
) -> None:
    requested = "2099-01-01"
    params = {
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": requested,
            "io.modelcontextprotocol/clientCapabilities": {},
        }
    }
    headers = mcp_headers(**{"mcp-protocol-version": requested, "mcp-method": "server/discover"})
    response = await http.post(served.url, content=rpc("server/discover", 301, params), headers=headers)
    assert response.status_code == 400
    body = json.loads(response.text)
    assert body["id"] == 301
    assert body["error"]["code"] == -32022
    assert body["error"]["data"]["requested"] == requested
    assert "2026-07-28" in body["error"]["data"]["supported"]
    assert served.supervisor.stats().live == 0


async def test_a_replay_with_nothing_to_resume_ends_empty_and_the_session_lives(
    resumable: TestServer,
) -> None:
    """An event id the store does not know: the SDK transport's answer, an empty stream; never a 404."""
    async with httpx.AsyncClient(timeout=10) as http:
        session_id = await open_session(http, resumable.url)
        headers = mcp_headers(session_id, accept="text/event-stream", **{"last-event-id": "999999"})
        response = await http.get(resumable.url, headers=headers)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert messages_of(response) == []
        ping = await http.post(resumable.url, content=rpc("ping", 5), headers=mcp_headers(session_id))
        assert ping.status_code == 200
    assert resumable.supervisor.stats().live == 1
