"""A server whose tools, resource and prompt are written for asyncio (`supervisor.asyncio_tool`),
and one tool that forgot it: `mcp-supervisor serve tests.support.asyncio_target:server`."""

from __future__ import annotations

import asyncio

import attrs
from mcp.server.mcpserver import MCPServer

from supervisor import asyncio_tool


@attrs.define
class Seen:
    """What the asyncio side saw: calls that started, and calls asyncio cancelled."""

    started: list[str] = attrs.field(factory=list)
    cancelled: list[str] = attrs.field(factory=list)


def build_asyncio_server(seen: Seen | None = None) -> MCPServer:
    seen = seen or Seen()
    server: MCPServer = MCPServer("asyncio-tools")

    @server.tool()
    @asyncio_tool
    async def aio_sleep(seconds: float) -> str:
        """asyncio.sleep, as an asyncio library would."""
        await asyncio.sleep(seconds)
        return f"slept {seconds} on asyncio"

    @server.tool()
    @asyncio_tool
    async def aio_echo_over_tcp(port: int, text: str) -> str:
        """asyncio streams to a local server: send a line, read the answer."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(text.encode() + b"\n")
            await writer.drain()
            return (await reader.readline()).decode().strip()
        finally:
            writer.close()
            await writer.wait_closed()

    @server.tool()
    @asyncio_tool
    async def aio_wait(label: str) -> str:
        """Wait on asyncio until cancelled; say whether asyncio saw the cancellation."""
        seen.started.append(label)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            seen.cancelled.append(label)
            raise
        return "never"

    @server.tool()
    async def forgot_the_bridge() -> str:
        """An asyncio call without `asyncio_tool`: fails with "no running event loop"."""
        await asyncio.sleep(0.01)
        return "unreachable"

    @server.resource("aio://greeting", mime_type="text/plain")
    @asyncio_tool
    async def greeting() -> str:
        await asyncio.sleep(0)
        return "hello from asyncio"

    @server.prompt()
    @asyncio_tool
    async def aio_prompt(name: str) -> str:
        await asyncio.sleep(0)
        return f"greet {name}, from asyncio"

    return server


server = build_asyncio_server()
