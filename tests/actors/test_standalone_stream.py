"""The standalone GET stream, held by the actor: idle means "no request in flight", whatever stream is open.

Real clients keep this stream open for the whole session. Held outside the incarnation, it lets
the session hibernate on schedule, wakes nothing when it opens, still carries what the server
sends for no request, and holds the session open against the idle timeout, as the SDK's does.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing
from mcp.server.mcpserver import Context
from mcp.server.session import ServerSession

from actors._standalone import PING_INTERVAL, RETRY_MS
from supervisor import SessionSupervisor, SupervisorConfig, open_supervisor
from supervisor.testing import check_quiescent
from tests.support.helpers import rpc
from tests.support.inprocess import open_in_process, open_stream, post
from tests.support.servers import build_server

HIBERNATE = 10.0
IDLE = 600.0


def awake(supervisor: SessionSupervisor, session_id: str) -> bool:
    info = supervisor.get(session_id)
    assert info is not None
    return info.awake


async def call(supervisor: SessionSupervisor, session_id: str, tool: str, request_id: int) -> None:
    answer = await post(
        supervisor, rpc("tools/call", request_id, {"name": tool, "arguments": {}}), session_id
    )
    assert answer.status == 200, answer.body
    assert answer.messages()[-1]["id"] == request_id
    assert "error" not in answer.messages()[-1]


@pytest.mark.parametrize("json_response", [False, True])
async def test_a_session_with_its_stream_open_hibernates_and_its_stream_lives_on(
    autojump_clock: trio.testing.MockClock, json_response: bool
) -> None:
    cfg = SupervisorConfig(hibernate_after=HIBERNATE, idle_timeout=IDLE, json_response=json_response)
    async with open_supervisor(build_server(), cfg) as supervisor, trio.open_nursery() as nursery:
        session_id = await open_in_process(supervisor)
        stream = await open_stream(supervisor, session_id, nursery)
        assert stream.status == 200
        assert stream.headers["content-type"] == "text/event-stream"
        assert stream.headers["mcp-session-id"] == session_id
        info = supervisor.get(session_id)
        assert info is not None and info.open_streams == 1 and info.in_flight == 1
        await trio.sleep(HIBERNATE + 1)
        # The stream is open, and the session sleeps anyway: it is no request in flight.
        assert not awake(supervisor, session_id)
        assert supervisor.stats().hibernating == 1
        assert not stream.ended.is_set()
        # A call wakes it; what the server sends for no request arrives on the held stream.
        await call(supervisor, session_id, "announce", 2)
        await stream.next_chunk()
        assert [m["method"] for m in stream.messages()] == ["notifications/tools/list_changed"]
        await trio.sleep(HIBERNATE + 1)
        assert not awake(supervisor, session_id)
        # Quiet, the stream gets a comment now and then, as sse-starlette sends.
        await trio.sleep(PING_INTERVAL)
        assert b": ping" in stream.body
        stream.leave()
        await stream.ended.wait()
        assert supervisor.stats().closed == {}
        check_quiescent(supervisor, sessions=1)
        nursery.cancel_scope.cancel()


async def test_a_stream_opened_to_a_hibernating_session_wakes_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cfg = SupervisorConfig(hibernate_after=HIBERNATE, idle_timeout=IDLE)
    async with open_supervisor(build_server(), cfg) as supervisor, trio.open_nursery() as nursery:
        session_id = await open_in_process(supervisor)
        await trio.sleep(HIBERNATE + 1)
        woken = supervisor.stats().wakes
        stream = await open_stream(supervisor, session_id, nursery)
        assert stream.status == 200
        assert not awake(supervisor, session_id)
        assert supervisor.stats().wakes == woken
        # A second standalone stream is refused, as the SDK refuses it.
        second = await open_stream(supervisor, session_id, nursery)
        await second.ended.wait()
        assert second.status == 409
        assert second.body and b"Only one SSE stream" in second.body
        assert supervisor.stats().requests.get("conflict") == 1
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("hibernate_after", [None, HIBERNATE])
async def test_an_open_stream_holds_the_session_past_its_idle_timeout(
    autojump_clock: trio.testing.MockClock, hibernate_after: float | None
) -> None:
    cfg = SupervisorConfig(hibernate_after=hibernate_after, idle_timeout=IDLE)
    async with open_supervisor(build_server(), cfg) as supervisor, trio.open_nursery() as nursery:
        session_id = await open_in_process(supervisor)
        stream = await open_stream(supervisor, session_id, nursery)
        await trio.sleep(IDLE * 3)
        # As the SDK's rule: an open stream holds the session (sleeping or not).
        assert supervisor.get(session_id) is not None
        assert awake(supervisor, session_id) is (hibernate_after is None)
        stream.leave()
        await stream.ended.wait()
        # Once the client leaves, the idle timeout runs from then.
        await trio.sleep(IDLE - 1)
        assert supervisor.get(session_id) is not None
        await trio.sleep(2)
        assert supervisor.get(session_id) is None
        assert supervisor.stats().closed == {"idle": 1}
        nursery.cancel_scope.cancel()


async def test_a_notice_from_outside_any_request_reaches_a_hibernating_sessions_client(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cfg = SupervisorConfig(hibernate_after=HIBERNATE, idle_timeout=IDLE)
    async with open_supervisor(build_server(), cfg) as supervisor, trio.open_nursery() as nursery:
        watching = await open_in_process(supervisor)
        other = await open_in_process(supervisor)
        no_stream = await open_in_process(supervisor)
        for request_id, session_id in enumerate((watching, no_stream), start=3):
            subscribe = rpc("resources/subscribe", request_id, {"uri": "demo://about"})
            assert (await post(supervisor, subscribe, session_id)).status == 200
        streams = {sid: await open_stream(supervisor, sid, nursery) for sid in (watching, other)}
        await trio.sleep(HIBERNATE + 1)
        assert supervisor.stats().hibernating == 3
        wakes = supervisor.stats().wakes
        # To the subscribers with a stream open: one here (the other has no stream to carry it).
        assert supervisor.notices.resource_updated("demo://about") == 1
        await streams[watching].next_chunk()
        assert streams[watching].messages() == [
            {"jsonrpc": "2.0", "method": "notifications/resources/updated", "params": {"uri": "demo://about"}}
        ]
        # To every stream; to one session; to none for an unknown id.
        assert supervisor.notices.broadcast("notifications/tools/list_changed") == 2
        assert supervisor.notices.send(other, "notifications/prompts/list_changed")
        assert not supervisor.notices.send("nobody", "notifications/prompts/list_changed")
        assert not supervisor.notices.send(no_stream, "notifications/prompts/list_changed")
        await trio.testing.wait_all_tasks_blocked()
        assert [m["method"] for m in streams[other].messages()] == [
            "notifications/tools/list_changed",
            "notifications/prompts/list_changed",
        ]
        # Nobody was woken for any of it.
        assert supervisor.stats().hibernating == 3
        assert supervisor.stats().wakes == wakes
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("how", ["delete", "kill", "shutdown"])
async def test_closing_the_session_ends_its_held_stream(
    autojump_clock: trio.testing.MockClock, how: str
) -> None:
    cfg = SupervisorConfig(hibernate_after=HIBERNATE, idle_timeout=IDLE)
    async with open_supervisor(build_server(), cfg) as supervisor, trio.open_nursery() as nursery:
        session_id = await open_in_process(supervisor)
        stream = await open_stream(supervisor, session_id, nursery)
        await trio.sleep(HIBERNATE + 1)
        if how == "delete":
            assert await supervisor.close_session(session_id)
        elif how == "kill":
            assert supervisor.kill(session_id)
        else:
            await supervisor.shutdown(grace=1)
        await stream.ended.wait()
        # Where the session lives on (a shutdown keeps its record), the client is told when to
        # come back; a session that is gone says nothing more.
        retry = f"retry: {RETRY_MS}".encode()
        assert (retry in stream.body) is (how == "shutdown")
        assert supervisor.get(session_id) is None
        nursery.cancel_scope.cancel()


async def test_a_notice_sent_on_a_session_object_the_server_kept_reaches_the_stream_after_hibernation(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A server may keep the SDK's per-request session object and notify through it later; once
    the loop behind it has gone (hibernated), the notice still reaches the client's stream."""
    kept: list[ServerSession] = []
    server = build_server()

    @server.tool()
    async def remember(ctx: Context) -> str:
        kept.append(ctx.session)
        return "kept"

    cfg = SupervisorConfig(hibernate_after=HIBERNATE, idle_timeout=IDLE)
    async with open_supervisor(server, cfg) as supervisor, trio.open_nursery() as nursery:
        session_id = await open_in_process(supervisor)
        stream = await open_stream(supervisor, session_id, nursery)
        await call(supervisor, session_id, "remember", 2)
        await trio.sleep(HIBERNATE + 1)
        assert not awake(supervisor, session_id)
        wakes = supervisor.stats().wakes
        await kept[0].send_resource_updated("demo://about")
        await stream.next_chunk()
        assert stream.messages() == [
            {"jsonrpc": "2.0", "method": "notifications/resources/updated", "params": {"uri": "demo://about"}}
        ]
        assert not awake(supervisor, session_id) and supervisor.stats().wakes == wakes
        nursery.cancel_scope.cancel()
