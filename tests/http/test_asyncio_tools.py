"""Tools written for asyncio (issue 27.1): `supervisor.asyncio_tool` runs them on an asyncio loop
inside trio (trio-asyncio). Real asyncio code (asyncio.sleep, asyncio streams to a local TCP
server), real HTTP, real clients, both protocol eras, the CLI; a DELETE or a kill cancels the
asyncio task; a tool that forgot the bridge gets one line saying what to do."""

from __future__ import annotations

import logging
import sys

import httpx
import pytest
import trio
from mcp import Client, MCPError

from actors._asyncio import NOT_INSTALLED
from supervisor import SupervisorConfig, asyncio_tool
from supervisor.testing import FaultPlan, FaultPoint, check_quiescent, serve_for_test, settle
from tests.support.asyncio_target import Seen, build_asyncio_server
from tests.support.cli_process import serving
from tests.support.cluster import eventually
from tests.support.helpers import mcp_headers, messages_of, open_session, rpc


async def _line_echo(stream: trio.SocketStream) -> None:
    async with stream:
        data = b""
        while not data.endswith(b"\n"):
            chunk = await stream.receive_some()
            if not chunk:
                return
            data += chunk
        await stream.send_all(b"echo: " + data)


def _text(result: object) -> str:
    return str(result.content[0].text)  # type: ignore[attr-defined]


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
@pytest.mark.parametrize("json_response", [False, True])
async def test_asyncio_tools_resources_and_prompts_work(mode: str, json_response: bool) -> None:
    async with trio.open_nursery() as nursery:
        [listener] = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listener.socket.getsockname()[1]
        nursery.start_soon(trio.serve_listeners, _line_echo, [listener])
        config = SupervisorConfig(json_response=json_response)
        async with (
            serve_for_test(build_asyncio_server(), config) as served,
            Client(served.url, mode=mode) as client,
        ):
            slept = await client.call_tool("aio_sleep", {"seconds": 0.01})
            assert _text(slept) == "slept 0.01 on asyncio"
            echoed = await client.call_tool("aio_echo_over_tcp", {"port": port, "text": "hi"})
            assert _text(echoed) == "echo: hi"
            resource = await client.read_resource("aio://greeting")
            assert resource.contents[0].text == "hello from asyncio"  # type: ignore[union-attr]
            prompt = await client.get_prompt("aio_prompt", {"name": "ada"})
            assert "greet ada, from asyncio" in str(prompt.messages[0].content)
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("how", ["delete", "kill"])
async def test_a_delete_or_a_kill_cancels_the_asyncio_task(http: httpx.AsyncClient, how: str) -> None:
    seen = Seen()
    async with serve_for_test(build_asyncio_server(seen)) as served:
        session_id = await open_session(http, served.url)
        call = rpc("tools/call", 7, {"name": "aio_wait", "arguments": {"label": how}})

        async def waiting_call() -> None:
            await http.post(served.url, content=call, headers=mcp_headers(session_id))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiting_call)

            async def started() -> bool:
                return seen.started == [how]

            await eventually(started)
            if how == "delete":
                assert (await http.delete(served.url, headers=mcp_headers(session_id))).status_code == 200
            else:
                assert served.supervisor.kill(session_id)

            async def cancelled() -> bool:
                return seen.cancelled == [how]

            await eventually(cancelled)


async def test_a_tool_that_forgot_the_bridge_gets_one_line_saying_what_to_do(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    async with serve_for_test(build_asyncio_server()) as served:
        session_id = await open_session(http, served.url)
        for request_id in (1, 2):
            call = rpc("tools/call", request_id, {"name": "forgot_the_bridge", "arguments": {}})
            answer = await http.post(served.url, content=call, headers=mcp_headers(session_id))
            [message] = [m for m in messages_of(answer) if m.get("id") == request_id]
            assert message["result"]["isError"] is True
    hints = [r for r in caplog.records if "supervisor.asyncio_tool" in r.getMessage()]
    assert len(hints) == 1 and hints[0].levelno == logging.WARNING


def test_only_an_async_def_can_be_wrapped() -> None:
    def plain() -> str:
        return "x"

    with pytest.raises(TypeError, match="async def"):
        asyncio_tool(plain)  # type: ignore[arg-type]


async def test_the_cli_serves_asyncio_tools(http: httpx.AsyncClient) -> None:
    async with serving("tests.support.asyncio_target:server") as server:
        url = await server.url()
        session_id = await open_session(http, url)
        call = rpc("tools/call", 3, {"name": "aio_sleep", "arguments": {"seconds": 0.01}})
        answer = await http.post(url, content=call, headers=mcp_headers(session_id))
        [message] = [m for m in messages_of(answer) if m.get("id") == 3]
        assert message["result"]["content"][0]["text"] == "slept 0.01 on asyncio"


async def test_the_fault_toolkit_kills_an_asyncio_tool_call_cleanly() -> None:
    plan = FaultPlan()
    plan.kill_at(FaultPoint.TOOL_RUNNING)
    async with serve_for_test(build_asyncio_server(), faults=plan) as served:
        async with Client(served.url, mode="legacy") as client:
            with pytest.raises(MCPError, match="killed"):
                await client.call_tool("aio_sleep", {"seconds": 30})
        await settle(served.supervisor)
        assert served.supervisor.stats().closed == {"killed": 1}
        check_quiescent(served.supervisor, sessions=0)


async def test_without_trio_asyncio_a_wrapped_tool_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "trio_asyncio", None)  # as if the extra were not installed
    async with (
        serve_for_test(build_asyncio_server()) as served,
        Client(served.url, mode="legacy") as client,
    ):
        result = await client.call_tool("aio_sleep", {"seconds": 0.01})
    assert result.is_error
    [failed] = [
        r
        for r in caplog.records
        if r.exc_info and NOT_INSTALLED in str(getattr(r.exc_info[1], "__cause__", None))
    ]
    assert failed.name == "mcp.server.mcpserver.server"  # the server log names the install command
