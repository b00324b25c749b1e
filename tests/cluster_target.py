"""The MCP server every node of the cluster tests serves: it says which node answered."""

from __future__ import annotations

import os

import trio
from mcp.server.mcpserver import Context, MCPServer

server: MCPServer = MCPServer("cluster-test")


@server.tool()
def where() -> str:
    """The id of the node that served this call."""
    return os.environ.get("MCP_SUPERVISOR_NODE_ID", "?")


@server.tool()
def echo(text: str) -> str:
    return text


@server.tool()
async def sleep(seconds: float) -> str:
    await trio.sleep(seconds)
    return f"slept on {where()}"


@server.tool()
async def ticks(n: int, ctx: Context) -> str:
    """n progress notifications, a little apart: a stream to resume."""
    for step in range(n):
        await ctx.report_progress(step + 1, total=n)
        await trio.sleep(0.05)
    return f"{n} ticks on {where()}"
