"""Every touch of the MCP SDK's private names, in one place, each with a check of its own.

The SDK offers no public way to do these few things. Should an SDK release move one, the check
of that touch (`sdk_internals_problems`, run by tests/actors/test_sdk_internals.py in every CI run) fails
with a line saying which name moved and what depends on it; docs/architecture.md lists them.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import Any, cast

from mcp.server.connection import Connection
from mcp.server.lowlevel.server import Server
from mcp.server.mcpserver import MCPServer
from mcp.server.runner import ServerRunner, serve_connection, serve_loop
from mcp.server.streamable_http import StreamableHTTPServerTransport
from mcp.shared.dispatcher import Outbound
from mcp.shared.jsonrpc_dispatcher import JSONRPCDispatcher

LOOP_INPUT = "_read_stream_writer"
"""A connected transport's write end of its server loop's input (direct answers put requests there)."""
LOWLEVEL = "_lowlevel_server"
"""The low-level `Server` behind an `MCPServer` (the SDK's own client unwraps it the same way)."""
SESSION_MANAGER = "_session_manager"
"""Where `streamable_http_app()` records its session manager on the low-level server."""
NEGOTIATE = "_negotiate_initialize"
"""How the SDK's runner reads an `initialize` (its params model, the version it settles on)."""


def loop_input_of(transport: object) -> Any | None:
    """The write end of a connected transport's loop input; None if this SDK keeps it elsewhere."""
    return getattr(transport, LOOP_INPUT, None)


async def serve_handshake_loop(
    server: Server[Any],
    read_stream: Any,
    write_stream: Any,
    *,
    lifespan_state: Any,
    session_id: str,
    standalone: Callable[[Outbound], Outbound],
    seen: Callable[[Connection], None],
) -> None:
    """The SDK's handshake-era server loop, built as its `serve_loop` builds it, but with the
    connection's standalone channel ours (`standalone` wraps the dispatcher) and the connection
    shown to `seen` (per-connection state lives on it)."""
    dispatcher: JSONRPCDispatcher[Any] = JSONRPCDispatcher(
        read_stream, write_stream, raise_handler_exceptions=False, inline_methods=frozenset({"initialize"})
    )
    connection = Connection.for_loop(standalone(dispatcher), session_id=session_id)
    seen(connection)
    await serve_connection(server, dispatcher, connection=connection, lifespan_state=lifespan_state)


def negotiated(params: Mapping[str, Any]) -> tuple[Any, str] | None:
    """What the SDK's runner commits to a connection for this `initialize` (issue 26.4: a wake
    sets it on the fresh loop's connection instead of replaying the handshake through the loop);
    None if this SDK cannot say so or the params no longer pass: the handshake is replayed then."""
    negotiate = getattr(ServerRunner, NEGOTIATE, None)
    if negotiate is None:
        return None
    try:
        params_model, version = negotiate(params)
    except Exception:  # whatever this SDK makes of them: replay, and the loop answers as it will
        return None
    return params_model, str(version)


def seed_handshake(connection: Connection, handshake: tuple[Any, str], initialized: bool) -> None:
    """Make `connection` what the runner makes it on `initialize` (and `initialized`)."""
    connection.client_params, connection.protocol_version = handshake
    if initialized:
        connection.initialized.set()


def lowlevel_of(server: MCPServer) -> Server[Any]:
    lowlevel: Server[Any] = getattr(server, LOWLEVEL)
    return lowlevel


@contextmanager
def session_manager_kept(lowlevel: Server[Any]) -> Iterator[None]:
    """Whatever runs inside may record a session manager on `lowlevel`; the one before is put back."""
    before = getattr(lowlevel, SESSION_MANAGER)
    try:
        yield
    finally:
        setattr(lowlevel, SESSION_MANAGER, before)


def sharing_lifespan(server: Server[Any], state: Any) -> Server[Any]:
    """A shallow copy of `server` whose lifespan hands out the already-entered `state`.

    The SDK's manager enters `server.lifespan` in its `run()`; the supervisor has entered it
    once already, and a server's lifespan must not run twice. The copy shares every handler.
    """

    @asynccontextmanager
    async def given(_: Server[Any]) -> AsyncIterator[Any]:
        yield state

    shared = copy.copy(server)
    shared.lifespan = given
    return shared


def _loop_input_problem() -> str | None:
    # Declared on the class (None until connect() sets it); tests also connect one and look.
    if not hasattr(StreamableHTTPServerTransport, LOOP_INPUT):
        return (
            f"StreamableHTTPServerTransport has no {LOOP_INPUT}: direct answers "
            "(actors/_direct_answers.py) are off and every request takes the transport's path"
        )
    return None


def _lowlevel_problem() -> str | None:
    if not isinstance(getattr(MCPServer("check"), LOWLEVEL, None), Server):
        return f"MCPServer has no {LOWLEVEL}: resolve_server (supervisor/_core/_loading.py) cannot unwrap it"
    return None


def _session_manager_problem() -> str | None:
    if not hasattr(Server("check"), SESSION_MANAGER):
        return (
            f"Server has no {SESSION_MANAGER}: building the server's own HTTP app "
            "(supervisor/_core/_sdk_surface.py) may leave it changed"
        )
    return None


def _lifespan_problem() -> str | None:
    server = Server("check")
    if not callable(getattr(server, "lifespan", None)):
        return (
            "Server.lifespan is gone: the stateless requests (supervisor/_core/_stateless.py) cannot share it"
        )
    return None


def _close_stream_problem() -> str | None:
    if not callable(getattr(StreamableHTTPServerTransport, "close_sse_stream", None)):
        return (
            "StreamableHTTPServerTransport.close_sse_stream is gone: SSE polling (actors/_polling.py) "
            "overrides it"
        )
    return None


def _handshake_loop_problem() -> str | None:
    # serve_loop is what the SDK's manager runs; ours is built from the same parts, so they must be there.
    source = inspect.getsource(serve_loop)
    parts = ("JSONRPCDispatcher(", 'inline_methods=frozenset({"initialize"})', "Connection.for_loop(")
    probe = Connection.for_loop(cast(Outbound, None), session_id="check")
    if not all(part in source for part in parts) or not isinstance(getattr(probe, "state", None), dict):
        return (
            "mcp.server.runner.serve_loop no longer builds its loop from JSONRPCDispatcher and "
            "Connection.for_loop as actors/_sdk.py's serve_handshake_loop does: compare the two"
        )
    return None


def _negotiate_problem() -> str | None:
    params = {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "c", "version": "0"},
    }
    found = negotiated(params)
    probe = Connection.for_loop(cast(Outbound, None), session_id="check")
    if found is None or not hasattr(probe, "client_params") or not hasattr(probe, "initialized"):
        return (
            f"ServerRunner.{NEGOTIATE} (or Connection.client_params/initialized) moved: a wake "
            "(actors/_incarnation.py) replays the handshake through the loop instead"
        )
    seed_handshake(probe, found, True)
    if not probe.initialize_accepted or probe.protocol_version != "2025-06-18":
        return "seeding a Connection no longer opens it as initialize does: see seed_handshake"
    return None


CHECKS: dict[str, Callable[[], str | None]] = {
    LOOP_INPUT: _loop_input_problem,
    LOWLEVEL: _lowlevel_problem,
    SESSION_MANAGER: _session_manager_problem,
    "lifespan": _lifespan_problem,
    "close_sse_stream": _close_stream_problem,
    "serve_loop": _handshake_loop_problem,
    NEGOTIATE: _negotiate_problem,
}


def sdk_internals_problems() -> list[str]:
    """One line per SDK internal that is not where this code expects it (empty: all in place)."""
    return [problem for check in CHECKS.values() if (problem := check()) is not None]
