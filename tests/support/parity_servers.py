"""Servers configured the SDK's documented way, served both by the SDK's own app and by us.

`mcp-supervisor serve tests.support.parity_servers:authed` and `authed.streamable_http_app()` must
answer alike (tests/http/test_sdk_parity.py).
"""

from __future__ import annotations

import secrets
import time

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken, AuthorizationParams, RefreshToken
from mcp.server.auth.settings import AuthSettings, ClientRegistrationOptions, RevocationOptions
from mcp.server.mcpserver import MCPServer
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

RESOURCE = "http://127.0.0.1:8000/mcp"
ISSUER = "https://auth.example.com"
TOKENS = {
    "alice-token": ("alice", ["mcp:use"]),
    "alice-other-token": ("alice", ["mcp:use"]),
    "bob-token": ("bob", ["mcp:use"]),
    "noscope-token": ("carol", []),
}
"""Bearer token -> (client id, scopes) for `Verifier`."""


class Verifier:
    """A `TokenVerifier` over `TOKENS` (what a JWT or introspection verifier would return)."""

    async def verify_token(self, token: str) -> AccessToken | None:
        known = TOKENS.get(token)
        if known is None:
            return None
        client_id, scopes = known
        return AccessToken(token=token, client_id=client_id, scopes=list(scopes))


def _tools(server: MCPServer) -> None:
    @server.tool()
    def whoami() -> str:
        """The principal the SDK's auth context sees for this call."""
        token = get_access_token()
        return token.client_id if token is not None else "anonymous"

    @server.custom_route("/health", methods=["GET"])  # type: ignore[untyped-decorator]
    async def health(request: Request) -> Response:
        user = request.user.display_name if request.user.is_authenticated else None
        return JSONResponse({"status": "ok", "user": user})

    @server.custom_route("/echo-form", methods=["POST"])  # type: ignore[untyped-decorator]
    async def echo_form(request: Request) -> Response:
        return JSONResponse({"body": (await request.body()).decode()})


authed: MCPServer = MCPServer(
    "authed",
    token_verifier=Verifier(),
    auth=AuthSettings(
        issuer_url=ISSUER,  # type: ignore[arg-type]
        resource_server_url=RESOURCE,  # type: ignore[arg-type]
        required_scopes=["mcp:use"],
        validate_token_resource=False,
    ),
)
_tools(authed)


class Provider:
    """A small in-memory OAuth authorization server (registration and access tokens only)."""

    def __init__(self) -> None:
        self.clients: dict[str, OAuthClientInformationFull] = {}
        self.tokens: dict[str, AccessToken] = {
            token: AccessToken(token=token, client_id=client, scopes=scopes, expires_at=None)
            for token, (client, scopes) in TOKENS.items()
        }

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        return self.clients.get(client_id)

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        assert client_info.client_id is not None
        self.clients[client_info.client_id] = client_info

    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        return f"{params.redirect_uri}?code={secrets.token_hex(16)}&state={params.state}"

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> None:
        return None

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, code: object
    ) -> OAuthToken:
        raise NotImplementedError

    async def load_refresh_token(self, client: OAuthClientInformationFull, refresh_token: str) -> None:
        return None

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: RefreshToken, scopes: list[str]
    ) -> OAuthToken:
        raise NotImplementedError

    async def load_access_token(self, token: str) -> AccessToken | None:
        found = self.tokens.get(token)
        if found is not None and found.expires_at is not None and found.expires_at < time.time():
            return None
        return found

    async def revoke_token(self, token: object) -> None:
        return None


provided: MCPServer = MCPServer(
    "provided",
    auth_server_provider=Provider(),  # type: ignore[arg-type]
    auth=AuthSettings(
        issuer_url="http://127.0.0.1:8000",  # type: ignore[arg-type]
        resource_server_url=RESOURCE,  # type: ignore[arg-type]
        required_scopes=["mcp:use"],
        client_registration_options=ClientRegistrationOptions(enabled=True, valid_scopes=["mcp:use"]),
        revocation_options=RevocationOptions(enabled=True),
        validate_token_resource=False,
    ),
)
_tools(provided)

routes_only: MCPServer = MCPServer("routes-only")
"""No auth, one custom route at /metrics: refused beside `--metrics-path /metrics`."""
_tools(routes_only)


@routes_only.custom_route("/metrics", methods=["GET"])  # type: ignore[untyped-decorator]
async def own_metrics(request: Request) -> Response:
    return Response("mine")
