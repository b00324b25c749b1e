"""What a server's own `streamable_http_app()` would serve besides MCP, taken from the SDK itself.

The SDK builds one Starlette app per server: bearer-auth middleware from the server's
`token_verifier` and `AuthSettings`, the MCP route (wrapped in `RequireAuthMiddleware` when a
verifier is set), the authorization-server routes of an `auth_server_provider`, the RFC 9728
protected-resource metadata route, and every `custom_route`. Rather than re-reading the server's
private fields and re-deriving that list (and missing whatever the next SDK release adds), the
supervisor asks the SDK to build the app, then keeps everything but the SDK's session manager.

Whatever in that app the supervisor does not know is refused at start with a line saying what it
is: a new SDK release can add behaviour, never drop it silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
from mcp.server.auth.middleware.bearer_auth import RequireAuthMiddleware
from mcp.server.lowlevel.server import Server
from mcp.server.mcpserver import MCPServer
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.routing import BaseRoute, Route

from actors import session_manager_kept
from supervisor._core._config import DEFAULT_METRICS_PATH, SupervisorConfig
from supervisor._core._loading import resolve_server

KNOWN_MIDDLEWARE = (AuthenticationMiddleware, AuthContextMiddleware)
"""The only middleware the SDK's app adds today; anything else is refused (see `sdk_surface`)."""


class UnsupportedServerSetting(ValueError):
    """The server configures something its own HTTP app would honour and the supervisor cannot."""


@attrs.frozen
class McpGuard:
    """The SDK's bearer check on the MCP route: its required scopes and its metadata URL."""

    required_scopes: tuple[str, ...]
    resource_metadata_url: Any
    """An `AnyHttpUrl` (or None): named in `WWW-Authenticate` as `resource_metadata`."""


@attrs.frozen
class SdkSurface:
    """Everything of the server's own HTTP app but its MCP handling, ready to serve beside ours."""

    middleware: tuple[Middleware, ...] = ()
    """The SDK's app-wide middleware (bearer backend, auth context), outermost first."""
    guard: McpGuard | None = None
    """Set when the server has a token verifier: the MCP route requires a token as in the SDK."""
    routes: tuple[BaseRoute, ...] = ()
    """Authorization-server routes, protected-resource metadata, custom routes, in the SDK's order."""
    debug: bool = False

    @property
    def authenticates(self) -> bool:
        """Whether the server brings its own bearer authentication."""
        classes: list[object] = [entry.cls for entry in self.middleware]
        return self.guard is not None or AuthenticationMiddleware in classes

    @property
    def route_paths(self) -> tuple[str, ...]:
        return tuple(path for route in self.routes if (path := getattr(route, "path", None)) is not None)


def sdk_surface(server: MCPServer | Server[Any], mcp_path: str) -> SdkSurface:
    """Build the server's own streamable HTTP app (never run) and keep what is not MCP.

    Raises `UnsupportedServerSetting` for anything in that app the supervisor does not know.
    """
    app = _build_unused_app(server, mcp_path)
    middleware = tuple(app.user_middleware)
    for entry in middleware:
        cls: object = entry.cls
        if cls not in KNOWN_MIDDLEWARE:
            raise UnsupportedServerSetting(
                f"the server's HTTP app adds middleware {_name(entry.cls)}, which mcp-supervisor does not "
                "know how to apply; serve it with the SDK, or wrap the supervisor's app yourself"
            )
    guard: McpGuard | None = None
    routes: list[BaseRoute] = []
    found_mcp = False
    for route in app.routes:
        if not found_mcp and isinstance(route, Route) and route.path == mcp_path:
            found_mcp = True
            guard = _guard_of(route.app)
        else:
            routes.append(route)
    if not found_mcp:
        raise UnsupportedServerSetting(
            f"the server's own HTTP app serves no route at {mcp_path}; this SDK release builds its app "
            "in a way mcp-supervisor does not know"
        )
    return SdkSurface(middleware=middleware, guard=guard, routes=tuple(routes), debug=bool(app.debug))


def _build_unused_app(server: MCPServer | Server[Any], mcp_path: str) -> Any:
    """The server's own app, leaving the server as it was.

    Building it records its session manager on the low-level server (`_session_manager`, what
    `server.session_manager` returns): put back whatever was there, so a program that also serves
    the SDK's app itself, or calls `session_manager`, sees no change.
    """
    with session_manager_kept(resolve_server(server)):
        return server.streamable_http_app(streamable_http_path=mcp_path)


def _guard_of(endpoint: Any) -> McpGuard | None:
    if isinstance(endpoint, StreamableHTTPASGIApp):
        return None
    if isinstance(endpoint, RequireAuthMiddleware) and isinstance(endpoint.app, StreamableHTTPASGIApp):
        return McpGuard(tuple(endpoint.required_scopes), endpoint.resource_metadata_url)
    raise UnsupportedServerSetting(
        f"the server's own HTTP app wraps its MCP endpoint in {_name(type(endpoint))}, which mcp-supervisor "
        "does not know how to apply"
    )


def metrics_beside(surface: SdkSurface, config: SupervisorConfig) -> tuple[SupervisorConfig, str | None]:
    """The config with metrics off if the server has its own route at the default metrics path.

    Returns the config and a line to log when it changed. A metrics path chosen explicitly over a
    route of the server's is refused by `check_compatible` instead.
    """
    if config.metrics_path != DEFAULT_METRICS_PATH or DEFAULT_METRICS_PATH not in surface.route_paths:
        return config, None
    note = (
        f"the server has its own route at {DEFAULT_METRICS_PATH}: it keeps it, and the supervisor's "
        "metrics are off (choose another --metrics-path to serve them)"
    )
    return attrs.evolve(config, metrics_path=None), note


def surface_for(server: MCPServer | Server[Any], config: SupervisorConfig) -> SdkSurface:
    """The server's own HTTP surface, checked against the supervisor's config (or refused)."""
    surface = sdk_surface(server, config.path)
    check_compatible(
        surface,
        own_verifier=config.token_verifier is not None,
        required_scopes=config.required_scopes,
        reserved_paths=config.own_paths,
    )
    return surface


def check_compatible(
    surface: SdkSurface,
    *,
    own_verifier: bool,
    required_scopes: Sequence[str],
    reserved_paths: Sequence[str],
) -> None:
    """Refuse a second authentication on top of the server's, and our paths shadowing its routes."""
    if surface.authenticates and (own_verifier or required_scopes):
        raise UnsupportedServerSetting(
            "the server configures its own authentication (token_verifier / auth_server_provider with "
            "AuthSettings); a supervisor token verifier or required scopes (--auth-tokens-file) would be "
            "a second one: use one of them"
        )
    taken = set(surface.route_paths)
    for path in reserved_paths:
        if path in taken:
            raise UnsupportedServerSetting(
                f"the server has its own route at {path}, which the supervisor would serve instead "
                "(its metrics, health or readiness path): choose another path"
            )


def _name(kind: Any) -> str:
    return f"{getattr(kind, '__module__', '?')}.{getattr(kind, '__qualname__', repr(kind))}"
