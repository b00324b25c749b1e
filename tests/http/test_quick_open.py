"""Quick open (with hibernation on): sessions after the first are born dormant, `initialize` answered
with the server's own earlier answer, `initialized` taken without waking; the first real request
wakes the session with its handshake replayed."""

from __future__ import annotations

import logging

import pytest
import trio
import trio.testing
from mcp import Client
from mcp.types import TextContent

from supervisor import Served, SessionSupervisor, SupervisorConfig, open_supervisor
from supervisor._cli._flags import apply_options, build_parser
from supervisor.testing import check_quiescent, serve_for_test
from tests.support.helpers import PROTOCOL, rpc
from tests.support.inprocess import Answer, post
from tests.support.servers import build_server

HIBERNATE = 10.0
IDLE = 600.0


def initialize(request_id: int, client: str, version: str = PROTOCOL) -> bytes:
    params = {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": client, "version": "1"}}
    return rpc("initialize", request_id, params)


def awake(supervisor: SessionSupervisor, session_id: str) -> bool:
    info = supervisor.get(session_id)
    assert info is not None
    return info.awake


async def tool(supervisor: SessionSupervisor, session_id: str, name: str, request_id: int) -> str:
    arguments = {"text": "x"} if name == "echo" else {}
    answer = await post(
        supervisor, rpc("tools/call", request_id, {"name": name, "arguments": arguments}), session_id
    )
    assert answer.status == 200, answer.body
    message = answer.messages()[-1]
    assert message["id"] == request_id
    text: str = message["result"]["content"][0]["text"]
    return text


def result_of(answer: Answer) -> dict[str, object]:
    message = answer.messages()[-1]
    result: dict[str, object] = message["result"]
    return result


@pytest.mark.parametrize("json_response", [False, True])
async def test_later_sessions_are_born_dormant_with_the_servers_own_answer(
    autojump_clock: trio.testing.MockClock, json_response: bool
) -> None:
    config = SupervisorConfig(hibernate_after=HIBERNATE, idle_timeout=IDLE, json_response=json_response)
    async with open_supervisor(build_server(), config) as supervisor:
        first = await post(supervisor, initialize(1, "first"))
        assert first.status == 200
        first_id = first.headers["mcp-session-id"]
        assert awake(supervisor, first_id), "the first open of a version is served by the server itself"

        second = await post(supervisor, initialize(7, "second"))
        assert second.status == 200
        assert second.headers["content-type"].startswith(
            "application/json" if json_response else "text/event-stream"
        )
        second_id = second.headers["mcp-session-id"]
        assert second_id != first_id
        assert not awake(supervisor, second_id)
        assert second.messages()[-1]["id"] == 7
        assert result_of(second) == result_of(first)

        initialized = await post(supervisor, rpc("notifications/initialized", None), second_id)
        assert initialized.status == 202
        assert initialized.headers["mcp-session-id"] == second_id
        assert not awake(supervisor, second_id), "initialized does not wake a dormant session"
        assert supervisor.stats().hibernating == 1

        # The first real request wakes it; the server loop got this client's own initialize.
        assert await tool(supervisor, second_id, "client_name", 8) == "second"
        assert awake(supervisor, second_id)
        assert await tool(supervisor, second_id, "echo", 9) == "x"
        check_quiescent(supervisor, sessions=supervisor.stats().live)


async def test_each_protocol_version_is_learned_from_the_server_first(
    autojump_clock: trio.testing.MockClock,
) -> None:
    config = SupervisorConfig(hibernate_after=HIBERNATE, idle_timeout=IDLE)
    async with open_supervisor(build_server(), config) as supervisor:
        for version in ("2025-06-18", "2025-06-18", "2025-03-26", "2025-03-26"):
            answer = await post(supervisor, initialize(1, "c", version))
            assert answer.status == 200
            assert result_of(answer)["protocolVersion"] == version
        stats = supervisor.stats()
        assert stats.live == 4
        assert stats.hibernating == 2


async def test_invalid_initialize_params_get_the_servers_own_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    config = SupervisorConfig(hibernate_after=HIBERNATE, idle_timeout=IDLE)
    async with open_supervisor(build_server(), config) as supervisor:
        assert (await post(supervisor, initialize(1, "ok"))).status == 200
        bad = rpc("initialize", 2, {"protocolVersion": PROTOCOL, "capabilities": {}})  # no clientInfo
        answer = await post(supervisor, bad)
        assert "error" in answer.messages()[-1]
        assert answer.messages()[-1]["id"] == 2
        # Served by the server itself (whatever it makes of the session, as without quick open).
        assert supervisor.stats().hibernating == 0


async def test_a_born_dormant_session_still_times_out_idle(autojump_clock: trio.testing.MockClock) -> None:
    config = SupervisorConfig(hibernate_after=HIBERNATE, idle_timeout=IDLE)
    async with open_supervisor(build_server(), config) as supervisor:
        await post(supervisor, initialize(1, "first"))
        second = await post(supervisor, initialize(2, "second"))
        second_id = second.headers["mcp-session-id"]
        await trio.sleep(IDLE / 2)
        assert (await post(supervisor, rpc("notifications/initialized", None), second_id)).status == 202
        await trio.sleep(IDLE / 2 + 1)
        assert supervisor.get(second_id) is not None, "initialized counted as activity"
        await trio.sleep(IDLE)
        assert supervisor.get(second_id) is None
        assert supervisor.stats().closed.get("idle") == 2


async def test_real_clients_over_http_with_quick_open(caplog: pytest.LogCaptureFixture) -> None:
    async with serve_for_test(build_server(), SupervisorConfig(hibernate_after=30)) as served:
        for round_ in range(3):
            async with Client(served.url, mode="legacy") as client:
                result = await client.call_tool("echo", {"text": f"round {round_}"})
                content = result.content[0]
                assert isinstance(content, TextContent)
                assert content.text == f"round {round_}"
                tools = await client.list_tools()
                assert "echo" in {t.name for t in tools.tools}
        assert served.supervisor.stats().created == 3
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


async def test_quick_open_is_on_by_default_and_can_be_turned_off(
    autojump_clock: trio.testing.MockClock,
) -> None:
    for quick_open in (True, False):
        async with open_supervisor(build_server(), SupervisorConfig(quick_open=quick_open)) as supervisor:
            await post(supervisor, initialize(1, "first"))
            second = await post(supervisor, initialize(2, "second"))
            assert awake(supervisor, second.headers["mcp-session-id"]) is not quick_open


def test_the_cli_turns_quick_open_off() -> None:
    options = build_parser().parse_args(["serve", "--no-quick-open"])
    assert apply_options(Served(server=build_server()), options).quick_open is False
    options = build_parser().parse_args(["serve"])
    assert apply_options(Served(server=build_server()), options).quick_open is True
