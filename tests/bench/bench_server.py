"""The one MCP server every benchmarked stack serves: a single `echo` tool."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

server: MCPServer = MCPServer("bench-server")


@server.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text
