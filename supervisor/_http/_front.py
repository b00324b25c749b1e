"""The ASGI app a supervisor serves: its MCP endpoint, with the server's own HTTP surface around it.

Built the way the SDK's `streamable_http_app()` is: app-wide auth middleware (the server's own,
or the supervisor's token verifier), the MCP route behind a bearer check, and the server's other
routes (authorization server, protected-resource metadata, custom routes) beside it. Requests for
the MCP path (and the metrics path) skip Starlette's router: one set lookup on the hot path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
from mcp.server.auth.middleware.bearer_auth import BearerAuthBackend, RequireAuthMiddleware
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

import supervisor._http._refusals as refusals
from actors import error_body
from supervisor._core import SdkSurface, SupervisorConfig
from supervisor._http._auth import RequireBearer
from supervisor._http._auth_trace import AuthTrace
from supervisor._http._health import HealthFront, Readiness
from supervisor._http._proxy import HostCheck


def build_front(
    mcp_app: ASGIApp,
    config: SupervisorConfig,
    surface: SdkSurface,
    readiness: Readiness,
    refused: Callable[[int, str], None],
) -> ASGIApp:
    """Health and readiness first (no auth); then `mcp_app` behind auth, beside the server's routes.

    `refused(status, cause)` counts each refused authentication (`AuthTrace`).
    """
    app = _authenticated(mcp_app, config, surface, refused)
    if config.health_path is None and config.ready_path is None:
        return app
    return HealthFront(
        app,
        readiness,
        health_path=config.health_path,
        ready_path=config.ready_path,
        max_sessions=config.max_sessions,
        hosts=HostCheck(config.security),
    )


def _authenticated(
    mcp_app: ASGIApp, config: SupervisorConfig, surface: SdkSurface, refused: Callable[[int, str], None]
) -> ASGIApp:
    """`mcp_app` (the supervisor's endpoint) behind auth, beside the server's own routes."""
    middleware: tuple[Middleware, ...] = surface.middleware
    endpoint = mcp_app
    if surface.guard is not None:
        # The server's own auth: the SDK's check, so statuses, headers and bodies are the SDK's.
        endpoint = RequireAuthMiddleware(
            mcp_app, list(surface.guard.required_scopes), surface.guard.resource_metadata_url
        )
    elif config.token_verifier is not None:
        middleware = (Middleware(AuthenticationMiddleware, backend=BearerAuthBackend(config.token_verifier)),)
        endpoint = RequireBearer(AuthContextMiddleware(mcp_app), config.required_scopes)
    if endpoint is not mcp_app:
        endpoint = AuthTrace(endpoint, refused)
    chain = _wrap(endpoint, middleware)
    if not surface.routes:
        return chain if chain is mcp_app else PathFront(mcp_app, chain)
    fast = frozenset(path for path in (config.path, config.metrics_path) if path is not None)
    routes: list[BaseRoute] = [Route(path, endpoint=endpoint) for path in sorted(fast)]
    routes.extend(surface.routes)
    other = Starlette(
        debug=surface.debug,
        routes=routes,
        middleware=list(middleware),
        exception_handlers={404: _not_found},
    )
    return PathFront(mcp_app, chain, fast, other)


class PathFront:
    """Lifespan straight to the supervisor's app; HTTP for the MCP paths through the auth chain;
    every other path through the Starlette app of the server's routes, when it has any.

    The Starlette app holds the MCP route too, so what it routes (a trailing-slash redirect to the
    MCP path, say) is what the SDK's app would do.
    """

    def __init__(
        self,
        mcp_app: ASGIApp,
        chain: ASGIApp,
        mcp_paths: frozenset[str] = frozenset(),
        other: ASGIApp | None = None,
    ) -> None:
        self._mcp_app = mcp_app
        self._chain = chain
        self._paths = mcp_paths
        self._other = other

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._mcp_app(scope, receive, send)
        elif self._other is None or scope["path"] in self._paths:
            await self._chain(scope, receive, send)
        else:
            await self._other(scope, receive, send)


def _wrap(app: ASGIApp, middleware: Iterable[Middleware]) -> ASGIApp:
    """Apply middleware outermost-first, as Starlette does."""
    for cls, args, kwargs in reversed(list(middleware)):
        app = cls(app, *args, **kwargs)
    return app


async def _not_found(request: Request, error: Exception) -> Response:
    """Unknown paths get the supervisor's JSON-RPC 404, as they do without custom routes."""
    detail = error.detail if isinstance(error, HTTPException) else "Not Found"
    headers = dict(error.headers or {}) if isinstance(error, HTTPException) else None
    refusal = refusals.unknown_path(detail)
    body = error_body(refusal.code, refusal.message)
    return Response(body, status_code=refusal.status, media_type="application/json", headers=headers)
