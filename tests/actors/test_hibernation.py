"""Hibernation: idle sessions drop transport and loop, and wake on the next request."""

from __future__ import annotations

import gc
import weakref
from typing import Any

import httpx
import mcp_types as types
import pytest
import trio
import trio.testing
from mcp import Client
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import Server
from mcp.shared.exceptions import MCPError
from mcp.types import TextContent

from actors._sdk import lowlevel_of
from supervisor import SessionSupervisor, SupervisorConfig, open_supervisor
from supervisor.testing import check_quiescent, serve_for_test
from tests.conformance.event_store import MemoryEventStore
from tests.support.helpers import rpc
from tests.support.inprocess import open_in_process, open_stream, post
from tests.support.servers import build_server, state_keeping_server

HIBERNATE = 10.0
IDLE = 600.0


def config(**changes: object) -> SupervisorConfig:
    return SupervisorConfig(hibernate_after=HIBERNATE, idle_timeout=IDLE, **changes)  # type: ignore[arg-type]


async def call(supervisor: SessionSupervisor, session_id: str, tool: str, request_id: int = 1) -> str:
    body = rpc("tools/call", request_id, {"name": tool, "arguments": {"text": "x"} if tool == "echo" else {}})
    answer = await post(supervisor, body, session_id)
    assert answer.status == 200, answer.body
    message = answer.messages()[-1]
    assert message["id"] == request_id
    text: str = message["result"]["content"][0]["text"]
    return text


def awake(supervisor: SessionSupervisor, session_id: str) -> bool:
    info = supervisor.get(session_id)
    assert info is not None
    return info.awake


@pytest.mark.parametrize("json_response", [False, True])
async def test_idle_session_hibernates_and_wakes_with_its_handshake(
    autojump_clock: trio.testing.MockClock, json_response: bool
) -> None:
    async with open_supervisor(build_server(), config(json_response=json_response)) as supervisor:
        session_id = await open_in_process(supervisor)
        assert awake(supervisor, session_id)
        await trio.sleep(HIBERNATE + 1)
        assert not awake(supervisor, session_id)
        assert supervisor.stats().hibernating == 1
        # The next request wakes it; the new loop knows the client from the record.
        assert await call(supervisor, session_id, "client_name", 2) == "raw"
        assert awake(supervisor, session_id)
        assert await call(supervisor, session_id, "echo", 3) == "x"
        # And again.
        await trio.sleep(HIBERNATE + 1)
        assert not awake(supervisor, session_id)
        assert await call(supervisor, session_id, "echo", 4) == "x"
        assert supervisor.stats().closed == {}
        check_quiescent(supervisor, sessions=1)


@pytest.mark.parametrize("json_response", [False, True])
async def test_a_hibernating_session_keeps_nothing_of_its_last_incarnation(
    autojump_clock: trio.testing.MockClock, json_response: bool
) -> None:
    """What a hibernated session costs is its record and a waiting task: the transport, loop and
    streams of its last incarnation are garbage (a frame that kept them cost ~8 KiB a session)."""
    async with open_supervisor(build_server(), config(json_response=json_response)) as supervisor:
        session_id = await open_in_process(supervisor)
        assert await call(supervisor, session_id, "echo", 2) == "x"
        actor = supervisor.actor_of(session_id)
        assert actor is not None and actor.transport is not None
        transport = weakref.ref(actor.transport)
        await trio.sleep(HIBERNATE + 1)
        assert not awake(supervisor, session_id)
        gc.collect()
        assert transport() is None
        assert await call(supervisor, session_id, "echo", 3) == "x"


async def test_a_hibernating_session_still_times_out(autojump_clock: trio.testing.MockClock) -> None:
    async with open_supervisor(build_server(), config()) as supervisor:
        session_id = await open_in_process(supervisor)
        await trio.sleep(HIBERNATE + 1)
        assert not awake(supervisor, session_id)
        await trio.sleep(IDLE)
        assert supervisor.get(session_id) is None
        assert supervisor.stats().closed == {"idle": 1}
        assert (await post(supervisor, rpc("ping", 5), session_id)).status == 404


async def test_close_and_kill_while_hibernating(autojump_clock: trio.testing.MockClock) -> None:
    async with open_supervisor(build_server(), config()) as supervisor:
        first = await open_in_process(supervisor)
        second = await open_in_process(supervisor)
        await trio.sleep(HIBERNATE + 1)
        assert await supervisor.close_session(first)
        assert supervisor.kill(second)
        await trio.testing.wait_all_tasks_blocked()
        assert supervisor.stats().closed == {"closed": 1, "killed": 1}
        check_quiescent(supervisor, sessions=0)


async def test_shutdown_with_hibernating_sessions(autojump_clock: trio.testing.MockClock) -> None:
    async with open_supervisor(build_server(), config()) as supervisor:
        for _ in range(5):
            await open_in_process(supervisor)
        await trio.sleep(HIBERNATE + 1)
        assert supervisor.stats().hibernating == 5
        await supervisor.shutdown(grace=1)
        assert supervisor.stats().closed == {"shutdown": 5}


async def test_real_clients_across_hibernation(http: httpx.AsyncClient) -> None:
    # A tiny hibernation delay: sessions hibernate between most calls over real HTTP.
    cfg = SupervisorConfig(hibernate_after=0.001)
    async with serve_for_test(build_server(), cfg) as served:
        async with Client(served.url, mode="legacy") as client:
            for index in range(20):
                result = await client.call_tool("echo", {"text": str(index)})
                content = result.content[0]
                assert isinstance(content, TextContent)
                assert content.text == str(index)
            name = await client.call_tool("client_name", {})
            assert isinstance(name.content[0], TextContent)
            assert name.content[0].text == "mcp"
        assert served.supervisor.stats().closed == {"client_delete": 1}


def recording_server(calls: list[tuple[str, str]]) -> Server[Any]:
    """A low-level server that records log-level and subscription calls per session."""

    async def set_level(
        ctx: ServerRequestContext[Any], params: types.SetLevelRequestParams
    ) -> types.EmptyResult:
        calls.append(("level", params.level))
        return types.EmptyResult()

    async def subscribe(
        ctx: ServerRequestContext[Any], params: types.SubscribeRequestParams
    ) -> types.EmptyResult:
        calls.append(("subscribe", str(params.uri)))
        return types.EmptyResult()

    async def unsubscribe(
        ctx: ServerRequestContext[Any], params: types.UnsubscribeRequestParams
    ) -> types.EmptyResult:
        calls.append(("unsubscribe", str(params.uri)))
        return types.EmptyResult()

    return Server(
        "recording",
        on_set_logging_level=set_level,
        on_subscribe_resource=subscribe,
        on_unsubscribe_resource=unsubscribe,
    )


@pytest.mark.filterwarnings("ignore:The logging capability is deprecated")
async def test_waking_replays_log_level_and_live_subscriptions(
    autojump_clock: trio.testing.MockClock,
) -> None:
    calls: list[tuple[str, str]] = []
    async with open_supervisor(recording_server(calls), config()) as supervisor:
        session_id = await open_in_process(supervisor)
        for request_id, (method, params) in enumerate(
            [
                ("logging/setLevel", {"level": "debug"}),
                ("logging/setLevel", {"level": "error"}),
                ("resources/subscribe", {"uri": "test://a"}),
                ("resources/subscribe", {"uri": "test://b"}),
                ("resources/unsubscribe", {"uri": "test://a"}),
            ],
            start=10,
        ):
            assert (await post(supervisor, rpc(method, request_id, params), session_id)).status == 200
        calls.clear()
        await trio.sleep(HIBERNATE + 1)
        assert not awake(supervisor, session_id)
        assert (await post(supervisor, rpc("ping", 20), session_id)).status == 200
        # The woken loop was told the latest level and the one subscription still in force.
        assert calls == [("level", "error"), ("subscribe", "test://b")]


async def test_a_session_whose_server_keeps_connection_state_stays_awake(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    async with open_supervisor(state_keeping_server(), config()) as supervisor:
        keeping = [await open_in_process(supervisor) for _ in range(2)]
        plain = await open_in_process(supervisor)
        for request_id, session_id in enumerate(keeping, start=2):
            assert await call(supervisor, session_id, "keep", request_id) == "keep"
        assert await call(supervisor, plain, "plain", 9) == "plain"
        await trio.sleep(HIBERNATE + 1)
        # A fresh loop would not have that state: those sessions stay awake; the other sleeps.
        assert [awake(supervisor, session_id) for session_id in keeping] == [True, True]
        assert not awake(supervisor, plain)
        warnings = [r for r in caplog.records if "keeps per-connection state" in r.getMessage()]
        assert len(warnings) == 1 and warnings[0].levelname == "WARNING"
        assert "visits" in warnings[0].getMessage()
        # The idle timeout still ends them.
        await trio.sleep(IDLE)
        assert supervisor.stats().closed == {"idle": 3}


async def test_what_a_kept_session_object_can_still_do_after_hibernation(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Per-connection clean-up runs at hibernation; a server-to-client request through a kept
    session object fails in the server's code (it needs a live loop for its answer)."""
    kept: list[Any] = []
    cleaned: list[str] = []

    async def call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        kept.append(ctx.session)
        ctx.session._connection.exit_stack.callback(cleaned.append, "closed")
        return types.CallToolResult(content=[types.TextContent(text="kept")])

    async with open_supervisor(Server("keeper", on_call_tool=call_tool), config()) as supervisor:
        session_id = await open_in_process(supervisor)
        assert await call(supervisor, session_id, "keep", 2) == "kept"
        assert cleaned == []
        await trio.sleep(HIBERNATE + 1)
        assert not awake(supervisor, session_id)
        assert cleaned == ["closed"]
        with pytest.raises(MCPError, match="Connection closed"):
            await kept[0].send_ping()


async def test_a_stream_arriving_as_the_countdown_fires_leaves_the_session_serving(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With an event store the transport serves the GET stream, a request in flight for its whole
    life. One that arrives in the instant the hibernation countdown fires is served, and so is the
    next call: a stream must never be left inside an incarnation that is hibernating, its mailbox
    unread for the stream's life."""
    cfg = config(event_store=MemoryEventStore(), quick_open=False)
    async with open_supervisor(build_server(), cfg) as supervisor, trio.open_nursery() as nursery:
        session_id = await open_in_process(supervisor)
        info = supervisor.get(session_id)
        assert info is not None
        await trio.sleep_until(info.idle_deadline)  # the same instant the countdown fires
        stream = await open_stream(supervisor, session_id, nursery)
        assert stream.status == 200
        # An async tool: a sync one's worker thread would let the autojump clock run away.
        body = rpc("tools/call", 7, {"name": "sleep", "arguments": {"seconds": 0}})
        with trio.fail_after(5):
            answer = await post(supervisor, body, session_id)
        assert answer.status == 200 and answer.messages()[-1]["id"] == 7
        assert awake(supervisor, session_id)
        stream.leave()
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("json_response", [False, True])
async def test_a_wake_does_not_show_the_server_the_handshake_again(
    autojump_clock: trio.testing.MockClock, json_response: bool
) -> None:
    """Issue 26.4: a wake gives the fresh loop's connection the client's `initialize` as the SDK
    commits it, instead of replaying it through the loop. So the server's middleware (the SDK's
    way to observe initialization) sees the handshake once, as under the SDK's own manager, and
    the woken session still knows its client (the `client_name` tool reads it)."""
    server = build_server()
    seen: list[str] = []

    async def watching(ctx: ServerRequestContext[Any], call_next: Any) -> Any:
        seen.append(ctx.method)
        return await call_next(ctx)

    lowlevel_of(server).middleware.append(watching)
    async with open_supervisor(server, config(json_response=json_response)) as supervisor:
        session_id = await open_in_process(supervisor)
        for request_id in (2, 3):
            await trio.sleep(HIBERNATE + 1)
            assert not awake(supervisor, session_id)
            assert await call(supervisor, session_id, "client_name", request_id) == "raw"
    assert seen == ["initialize", "notifications/initialized", "tools/call", "tools/call"]
