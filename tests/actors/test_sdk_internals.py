"""Every SDK internal the supervisor touches is where it expects it (actors/_sdk.py).

Run in every CI run: an SDK upgrade that moves one fails here first, with a line naming what moved
and what depends on it, instead of somewhere deep in a request.
"""

from __future__ import annotations

import pytest
import trio
from mcp.server.mcpserver import MCPServer
from mcp.server.streamable_http import StreamableHTTPServerTransport

from actors import _sdk
from supervisor import open_supervisor


@pytest.mark.parametrize("name", sorted(_sdk.CHECKS))
def test_each_internal_is_in_place(name: str) -> None:
    problem = _sdk.CHECKS[name]()
    assert problem is None, f"SDK internal moved: {problem}"


def test_all_internals_at_once_say_nothing() -> None:
    assert _sdk.sdk_internals_problems() == []


async def test_a_connected_transport_has_its_loop_input() -> None:
    transport = StreamableHTTPServerTransport(mcp_session_id="s" * 32)
    assert _sdk.loop_input_of(transport) is None
    async with transport.connect():
        assert _sdk.loop_input_of(transport) is not None, (
            f"connect() no longer sets {_sdk.LOOP_INPUT}: direct answers would be off"
        )
        await transport.terminate()


async def test_building_the_servers_own_app_leaves_its_session_manager_alone() -> None:
    server = MCPServer("check")
    lowlevel = _sdk.lowlevel_of(server)
    before = getattr(lowlevel, _sdk.SESSION_MANAGER)
    async with open_supervisor(server):
        assert getattr(lowlevel, _sdk.SESSION_MANAGER) is before
    await trio.lowlevel.checkpoint()


def test_a_check_says_what_moved_and_what_depends_on_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(StreamableHTTPServerTransport, "close_sse_stream")
    problem = _sdk.CHECKS["close_sse_stream"]()
    assert problem is not None and "close_sse_stream" in problem and "actors/_polling.py" in problem
