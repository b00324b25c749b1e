"""The Python SDK's own `mcp.Client` against our server over real HTTP, in each of its modes.

`legacy` runs the initialize handshake and so gets a session (an actor on our side); a pinned
2026-07-28 client speaks the sessionless era and must be served without creating one; `auto`
discovers and takes the newest era the server offers. Each is tried against the default
configuration, JSON responses, and hibernating sessions.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest
import trio
import trio.testing
from mcp import Client
from mcp.client.session import MessageHandlerFnT
from mcp.types import TextContent

from supervisor import SupervisorConfig
from supervisor.testing import TestServer, serve_for_test
from tests.support.servers import build_server

CONFIGS = {
    "default": SupervisorConfig(),
    "json": SupervisorConfig(json_response=True),
    "hibernating": SupervisorConfig(hibernate_after=0.001),
}
MODERN = "2026-07-28"


async def exercise(client: Client) -> None:
    """List, call, and call from many tasks at once on the one client."""
    names = {tool.name for tool in (await client.list_tools()).tools}
    assert {"add", "echo", "wait"} <= names
    added = await client.call_tool("add", {"a": 2, "b": 3})
    assert isinstance(added.content[0], TextContent) and added.content[0].text == "5.0"
    echoes: dict[int, str] = {}

    async def echo(index: int) -> None:
        result = await client.call_tool("echo", {"text": f"e{index}"})
        assert isinstance(result.content[0], TextContent)
        echoes[index] = result.content[0].text

    async with trio.open_nursery() as nursery:
        for index in range(8):
            nursery.start_soon(echo, index)
    assert echoes == {index: f"e{index}" for index in range(8)}


async def run(served: TestServer, mode: str) -> str:
    async with Client(served.url, mode=mode) as client:
        await exercise(client)
        version = client.protocol_version
        if mode != MODERN:  # a pinned client adopts the version without asking who the server is
            assert client.server_info is not None and client.server_info.name == "test-server"
        if mode == "legacy":
            assert served.supervisor.stats().live == 1  # one session, held while the client is open
    return str(version)


@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
async def test_legacy_mode_opens_one_session_and_deletes_it(config: SupervisorConfig) -> None:
    async with serve_for_test(build_server(), config) as served:
        version = await run(served, "legacy")
        stats = served.supervisor.stats()
    assert version == "2025-11-25"
    assert stats.created == 1
    assert stats.closed == {"client_delete": 1}


@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
async def test_pinned_modern_mode_is_served_without_a_session(config: SupervisorConfig) -> None:
    async with serve_for_test(build_server(), config) as served:
        version = await run(served, MODERN)
        stats = served.supervisor.stats()
    assert version == MODERN
    assert stats.created == 0
    assert stats.requests.get("stateless", 0) > 0


@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
async def test_auto_mode_discovers_the_modern_era(config: SupervisorConfig) -> None:
    async with serve_for_test(build_server(), config) as served:
        version = await run(served, "auto")
        stats = served.supervisor.stats()
    assert version == MODERN
    assert stats.created == 0


async def until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    """Wait for `condition`, checking each time every task here is blocked (no sleeping)."""
    with trio.fail_after(timeout):
        while not condition():
            await trio.testing.wait_all_tasks_blocked(cushion=0.01)


async def test_real_clients_sessions_hibernate_with_their_get_stream_open_and_hear_notices() -> None:
    """The SDK client holds its GET stream for the whole session: idle must still mean idle."""
    sessions = 6
    async with serve_for_test(build_server(), SupervisorConfig(hibernate_after=0.05)) as served:
        supervisor = served.supervisor
        heard: list[list[str]] = [[] for _ in range(sessions)]

        def listener(index: int) -> MessageHandlerFnT:
            async def handle(message: Any) -> None:
                heard[index].append(str(getattr(message, "method", type(message).__name__)))

            return handle

        def sleeping_with_streams() -> bool:
            infos = supervisor.sessions()
            return len(infos) == sessions and all(not i.awake and i.open_streams == 1 for i in infos)

        async with AsyncExitStack() as stack:
            clients = [
                await stack.enter_async_context(
                    Client(served.url, mode="legacy", message_handler=listener(i))
                )
                for i in range(sessions)
            ]
            for index, client in enumerate(clients):
                result = await client.call_tool("echo", {"text": f"before {index}"})
                assert isinstance(result.content[0], TextContent)
            # Every session hibernates, each client's GET stream open all along.
            await until(sleeping_with_streams)
            assert supervisor.stats().hibernating == sessions
            wakes = supervisor.stats().wakes
            # A notice from outside any request reaches every client, and wakes nobody.
            assert supervisor.notices.broadcast("notifications/tools/list_changed") == sessions
            await until(lambda: all("notifications/tools/list_changed" in h for h in heard))
            assert supervisor.stats().wakes == wakes
            # The next call wakes its session, same id, same stream.
            for index, client in enumerate(clients):
                result = await client.call_tool("echo", {"text": f"after {index}"})
                assert (
                    isinstance(result.content[0], TextContent) and result.content[0].text == f"after {index}"
                )
            assert supervisor.stats().wakes == wakes + sessions
            await until(sleeping_with_streams)
        assert supervisor.stats().closed == {"client_delete": sessions}
