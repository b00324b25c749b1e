"""A supervisor served by real hypercorn (trio) on an ephemeral loopback port, for a test's duration."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio
from mcp.server.lowlevel.server import Server
from mcp.server.mcpserver import MCPServer

from supervisor._core import SessionSupervisor, SupervisorConfig
from supervisor._serve import hypercorn_config, open_supervisor, serve_supervisor
from supervisor.testing._checks import check_stopped
from supervisor.testing._fault_plan import FaultPlan


@attrs.frozen
class TestServer:
    """A supervisor served by real hypercorn (trio) on an ephemeral loopback port."""

    __test__ = False  # not a pytest test class

    url: str
    """The MCP endpoint, e.g. http://127.0.0.1:54321/mcp."""
    base_url: str
    supervisor: SessionSupervisor


@asynccontextmanager
async def serve_for_test(
    server: MCPServer | Server[Any],
    config: SupervisorConfig | None = None,
    *,
    faults: FaultPlan | None = None,
    bind: str = "127.0.0.1:0",
) -> AsyncIterator[TestServer]:
    """Serve `server` on `bind` (an ephemeral loopback port unless told) for the block; drain and
    stop when it ends, then `check_stopped`."""
    config = config or SupervisorConfig()
    stop = trio.Event()
    async with open_supervisor(server, config, faults=faults) as supervisor, trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(
            lambda task_status: serve_supervisor(
                supervisor,
                hypercorn_config(bind, graceful_timeout=1.0),
                shutdown_trigger=stop.wait,
                task_status=task_status,
            )
        )
        base = binds[0]
        try:
            yield TestServer(url=base + config.path, base_url=base, supervisor=supervisor)
        finally:
            stop.set()
    # Leaving both blocks shut the supervisor down: nothing of it may be left.
    check_stopped(supervisor)
