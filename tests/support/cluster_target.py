"""The MCP server every node of the cluster tests serves: it says which node answered."""

from __future__ import annotations

import os

import trio
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import Context, MCPServer

from supervisor.demo import add_demo_tools

server: MCPServer = add_demo_tools(MCPServer("cluster-test"))
"""The demo server's tools (supervisor/demo.py) and the ones below."""


@server.tool()
def where() -> str:
    """The id of the node that served this call."""
    return os.environ.get("MCP_SUPERVISOR_NODE_ID", "?")


@server.tool()
async def mark(token: str, seconds: float = 0.0) -> str:
    """Note that this call ran (a line in `$MCP_TEST_MARKS/<node>-<pid>.log`), then take `seconds`."""
    folder = os.environ.get("MCP_TEST_MARKS")
    if folder:
        # Written at once, with no checkpoint before it: a call that ran is a call written down.
        with open(os.path.join(folder, f"{where()}-{os.getpid()}.log"), "a", encoding="utf-8") as marks:  # noqa: ASYNC230
            marks.write(token + "\n")
    if seconds:
        await trio.sleep(seconds)
    return f"{token} on {where()}"


@server.tool()
async def ticks(n: int, ctx: Context) -> str:
    """n progress notifications, a little apart: a stream to resume."""
    for step in range(n):
        await ctx.report_progress(step + 1, total=n)
        await trio.sleep(0.05)
    return f"{n} ticks on {where()}"


SUBJECT_TOKENS = {"tok-acme-u1": ("acme", "u1"), "tok-acme-u2": ("acme", "u2"), "tok-zeta-u1": ("zeta", "u1")}
"""token -> (client id, subject), issued by ISSUER: principals with an issuer and a subject."""
ISSUER = "https://issuer.example"


class SubjectVerifier:
    """The server's own `TokenVerifier`: one client id standing for several users."""

    async def verify_token(self, token: str) -> AccessToken | None:
        found = SUBJECT_TOKENS.get(token)
        if found is None:
            return None
        client_id, subject = found
        claims = {"iss": ISSUER}
        return AccessToken(token=token, client_id=client_id, scopes=[], subject=subject, claims=claims)


server_with_subjects: MCPServer = MCPServer(
    "cluster-test-subjects",
    token_verifier=SubjectVerifier(),
    auth=AuthSettings(
        issuer_url=ISSUER,  # type: ignore[arg-type]
        resource_server_url="http://127.0.0.1/mcp",  # type: ignore[arg-type]
        required_scopes=[],
    ),
)
server_with_subjects.add_tool(where)
