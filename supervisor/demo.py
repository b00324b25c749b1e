"""The built-in demo MCP server, served when `mcp-supervisor serve` is given no target.

Its tools are written once, here: `add_demo_tools` puts them on any `MCPServer`, and the test
servers (tests/support/servers.py, tests/support/cluster_target.py) are this server plus tools of
their own.
"""

from __future__ import annotations

import trio
from mcp.server.mcpserver import Context, MCPServer


def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


def add(a: float, b: float) -> float:
    """Add two numbers."""
    return a + b


async def sleep(seconds: float) -> str:
    """Sleep (cancellably) for the given number of seconds, then say so."""
    await trio.sleep(seconds)
    return f"slept {seconds}s"


async def countdown(n: int, ctx: Context) -> str:
    """Count down from n, sending one progress notification per step."""
    for step in range(n):
        await ctx.report_progress(step + 1, total=n, message=f"{n - step - 1} left")
        await trio.lowlevel.checkpoint()
    return "liftoff"


def about() -> str:
    """What this server is."""
    return "mcp-supervisor demo server: every session is a trio actor."


def greet(name: str) -> str:
    """A greeting prompt."""
    return f"Say hello to {name} in one sentence."


def add_demo_tools(target: MCPServer) -> MCPServer:
    """The demo's tools (echo, add, sleep, countdown), its resource and its prompt, on `target`."""
    for tool in (echo, add, sleep, countdown):
        target.tool()(tool)
    target.resource("demo://about", mime_type="text/plain")(about)
    target.prompt()(greet)
    return target


server: MCPServer = add_demo_tools(
    MCPServer("mcp-supervisor-demo", instructions="A small server to try the supervisor with.")
)
