"""MCP servers built for tests: each test gets its own, with gates it can hold and release."""

from __future__ import annotations

from typing import Any

import attrs
import mcp_types as types
import trio
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import Server
from mcp.server.mcpserver import Context, MCPServer

from supervisor.demo import add_demo_tools


@attrs.define
class Gate:
    """A tool call parks here: tests wait for `entered` and decide when it may go on."""

    entered: trio.Event = attrs.field(factory=trio.Event)
    release: trio.Event = attrs.field(factory=trio.Event)
    arrivals: int = 0
    cancelled: int = 0
    completed: int = 0


def build_server(gate: Gate | None = None, **options: Any) -> MCPServer:
    """The demo server's tools (supervisor/demo.py), a `wait` tool held by the gate, a tool that
    notifies, and one that raises.

    `options` go to `MCPServer` (e.g. `sdk_auth()`'s token verifier and auth settings).
    """
    gate = gate or Gate()
    server: MCPServer = add_demo_tools(MCPServer("test-server", **options))

    @server.tool()
    async def wait(label: str = "") -> str:
        gate.arrivals += 1
        gate.entered.set()
        try:
            await gate.release.wait()
        except trio.Cancelled:
            gate.cancelled += 1
            raise
        gate.completed += 1
        return f"released {label}"

    @server.tool()
    async def announce(ctx: Context) -> str:
        """Tell the client the tool list changed: a notification for the standalone GET stream."""
        await ctx.session.send_tool_list_changed()
        return "announced"

    @server.tool()
    def whoami() -> str:
        """The principal the SDK's auth context sees for this call ('anonymous' without auth)."""
        token = get_access_token()
        return token.client_id if token is not None else "anonymous"

    @server.tool()
    def header(name: str, ctx: Context) -> str:
        """A header of the HTTP request that carried this call, as the tool's context sees it."""
        headers = ctx.headers or {}
        return headers.get(name, "absent")

    @server.tool()
    def client_name(ctx: Context) -> str:
        """The client name the session's server loop got in `initialize` (survives hibernation)."""
        params = ctx.session.client_params
        return params.client_info.name if params is not None else "unknown"

    @server.tool()
    async def stubborn(seconds: float) -> str:
        """Work that ignores cancellation for a while (shielded)."""
        gate.entered.set()
        with trio.CancelScope(shield=True):
            await trio.sleep(seconds)
        return "done"

    @server.tool()
    def explode() -> str:
        raise RuntimeError("tool failure")

    return server


def sdk_auth() -> dict[str, Any]:
    """`MCPServer` options for the SDK's own bearer auth (tests/support/parity_servers.py's verifier)."""
    from mcp.server.auth.settings import AuthSettings

    from tests.support.parity_servers import ISSUER, RESOURCE, Verifier

    settings = AuthSettings(
        issuer_url=ISSUER,  # type: ignore[arg-type]
        resource_server_url=RESOURCE,  # type: ignore[arg-type]
        required_scopes=["mcp:use"],
        validate_token_resource=False,
    )
    return {"token_verifier": Verifier(), "auth": settings}


def state_keeping_server() -> Server[Any]:
    """A low-level server whose `keep` tool puts something on its connection (`Connection.state`)."""

    async def call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        if params.name == "keep":
            # The SDK's per-connection scratch state (reached here through the session object).
            ctx.session._connection.state["visits"] = 1
        return types.CallToolResult(content=[types.TextContent(text=params.name)])

    return Server("stateful", on_call_tool=call_tool)
