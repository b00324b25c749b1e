"""The direct lane answers exactly as the SDK transport would, and only what it should.

Each comparison serves the same server twice over real HTTP, once with the lane and once with
every request going through the transport's `handle_request` (`direct_answers=False`).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import trio
import trio.testing
from mcp.server.streamable_http import StreamableHTTPServerTransport
from mcp_types import JSONRPCError, JSONRPCNotification, JSONRPCResponse

from actors._direct_answers import Replies, takes_direct_answer
from actors._sdk import loop_input_of
from actors._standalone import PING_INTERVAL
from supervisor import SupervisorConfig
from supervisor.testing import serve_for_test
from tests.support.helpers import mcp_headers, messages_of, open_session, rpc
from tests.support.servers import build_server

CALLS = [
    rpc("tools/call", 7, {"name": "echo", "arguments": {"text": "same"}}),
    rpc("tools/call", "s-8", {"name": "explode", "arguments": {}}),
    rpc("tools/call", 9, {"name": "countdown", "arguments": {"n": 2}, "_meta": {"progressToken": "p"}}),
    rpc("tools/call", 10, {"name": "no-such-tool", "arguments": {}}),
    rpc("tools/list", 11),
    rpc("ping", 12),
    # Valid JSON-RPC to our front door, but not to the SDK's schema: the transport answers it.
    b'{"jsonrpc":"2.0","id":13,"method":"tools/call","params":"not an object"}',
]


def test_the_sdk_transport_still_has_the_loop_input_we_use() -> None:
    """The one private name the lane relies on; if an SDK release renames it, the lane is off."""

    async def main() -> None:
        transport = StreamableHTTPServerTransport(mcp_session_id="x" * 32)
        assert loop_input_of(transport) is None
        async with transport.connect():
            assert loop_input_of(transport) is not None

    trio.run(main)


def test_which_messages_take_the_lane() -> None:
    assert takes_direct_answer("tools/call", 1)
    assert takes_direct_answer("ping", "a")
    assert not takes_direct_answer("initialize", 1)
    assert not takes_direct_answer("notifications/initialized", None)
    assert not takes_direct_answer(None, 1)  # a client's response to a server request


async def _answers(json_response: bool, direct: bool) -> list[tuple[int, str, Any]]:
    config = SupervisorConfig(json_response=json_response, direct_answers=direct)
    answers: list[tuple[int, str, Any]] = []
    async with serve_for_test(build_server(), config) as served, httpx.AsyncClient() as http:
        session_id = await open_session(http, served.url)
        for body in CALLS:
            response = await http.post(served.url, content=body, headers=mcp_headers(session_id))
            kind = response.headers["content-type"].split(";")[0]
            assert response.headers.get("mcp-session-id", session_id) == session_id
            payload: Any = messages_of(response) if response.status_code == 200 else json.loads(response.text)
            if response.status_code == 400:
                payload = {"code": payload["error"]["code"], "id": payload["id"]}  # text names pydantic
            answers.append((response.status_code, kind, payload))
        stats = served.supervisor.stats()
        assert stats.requests.get("failed", 0) == 0
    return answers


@pytest.mark.parametrize("json_response", [False, True])
async def test_answers_are_those_of_the_transport(json_response: bool) -> None:
    direct = await _answers(json_response, direct=True)
    through_transport = await _answers(json_response, direct=False)
    assert direct == through_transport
    kinds = {kind for status, kind, _ in direct if status == 200}
    assert kinds == {"application/json" if json_response else "text/event-stream"}
    # The progress notifications travel on the POST's own stream in SSE mode only.
    countdown = direct[2][2]
    assert len(countdown) == (1 if json_response else 3)


async def test_a_tool_sees_the_http_request(http: httpx.AsyncClient) -> None:
    async with serve_for_test(build_server()) as served:
        session_id = await open_session(http, served.url)
        call = rpc("tools/call", 3, {"name": "header", "arguments": {"name": "x-probe"}})
        headers = mcp_headers(session_id, **{"x-probe": "42"})
        response = await http.post(served.url, content=call, headers=headers)
        assert messages_of(response)[-1]["result"]["content"][0]["text"] == "42"


class _Sink:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def __call__(self, message: Any) -> None:
        self.messages.append(message)


async def test_a_quiet_sse_answer_gets_pings_then_its_events(autojump_clock: trio.testing.MockClock) -> None:
    from actors._direct_answers import DirectAnswers

    lane = DirectAnswers("s" * 32, None, json_response=False)
    replies = Replies()
    sink = _Sink()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lane._answer_sse, replies, sink)
        await trio.sleep(PING_INTERVAL * 2 + 1)
        replies.put(
            JSONRPCNotification(jsonrpc="2.0", method="notifications/progress", params={"progress": 1})
        )
        replies.put(JSONRPCResponse(jsonrpc="2.0", id=1, result={}))
    bodies: list[bytes] = [m["body"] for m in sink.messages[1:]]
    assert sink.messages[0]["status"] == 200
    assert bodies[:2] == [b": ping\r\n\r\n", b": ping\r\n\r\n"]
    assert bodies[2].startswith(b"event: message\r\ndata: ") and b"progress" in bodies[2]
    assert b'"id":1' in bodies[3]
    assert bodies[4] == b"" and sink.messages[-1]["more_body"] is False


async def test_an_sse_answer_whose_loop_went_away_is_left_to_the_handler() -> None:
    from actors._direct_answers import DirectAnswers

    lane = DirectAnswers("s" * 32, None, json_response=False)
    replies = Replies()
    sink = _Sink()
    replies.close()
    await lane._answer_sse(replies, sink)
    # Headers only: no answer and no end of body, so the ASGI handler answers with the right error.
    assert [m["type"] for m in sink.messages] == ["http.response.start"]


async def test_a_json_answer_whose_loop_went_away_names_the_request() -> None:
    from actors._direct_answers import DirectAnswers

    lane = DirectAnswers("s" * 32, None, json_response=True)
    replies = Replies()
    sink = _Sink()
    replies.close()
    await lane._answer_json(replies, sink, 77)
    assert sink.messages[0]["status"] == 500
    error = JSONRPCError.model_validate_json(sink.messages[1]["body"])
    assert error.id == 77
    assert error.error.message == "Session terminated before the request completed"
