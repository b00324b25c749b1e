"""The built-in demo MCP server, served when `mcp-supervisor serve` is given no target."""

from __future__ import annotations

import trio
from mcp.server.mcpserver import Context, MCPServer

server: MCPServer = MCPServer(
    "mcp-supervisor-demo", instructions="A small server to try the supervisor with."
)


@server.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


@server.tool()
def add(a: float, b: float) -> float:
    """Add two numbers."""
    return a + b


@server.tool()
async def sleep(seconds: float) -> str:
    """Sleep (cancellably) for the given number of seconds, then say so."""
    await trio.sleep(seconds)
    return f"slept {seconds}s"


@server.tool()
async def countdown(n: int, ctx: Context) -> str:
    """Count down from n, sending one progress notification per step."""
    for step in range(n):
        await ctx.report_progress(step + 1, total=n, message=f"{n - step - 1} left")
        await trio.lowlevel.checkpoint()
    return "liftoff"


@server.resource("demo://about", mime_type="text/plain")
def about() -> str:
    """What this server is."""
    return "mcp-supervisor demo server: every session is a trio actor."


@server.prompt()
def greet(name: str) -> str:
    """A greeting prompt."""
    return f"Say hello to {name} in one sentence."
