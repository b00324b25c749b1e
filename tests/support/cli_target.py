"""A target for the CLI tests: `mcp-supervisor serve tests.support.cli_target:server`."""

from __future__ import annotations

import logging

import trio
from mcp.server.mcpserver import MCPServer

from supervisor import Served, SupervisorConfig

server: MCPServer = MCPServer("cli-target")
logger = logging.getLogger("tests.support.cli_target")


@server.tool()
async def slow(seconds: float) -> str:
    """Log that the call started (the test waits for this line), then take a while."""
    logger.warning("slow call started")
    await trio.sleep(seconds)
    return f"done after {seconds}"


bundle = Served(server, SupervisorConfig(path="/bundle", json_response=True))
"""A `Served` bundle choosing its own path and JSON answers (the override tests)."""
