"""A server's own HTTP settings, served side by side: the SDK's app (hypercorn, trio) and our CLI.

The same server file (tests/support/parity_servers.py) is served both ways and gets the same requests;
statuses, the headers that carry meaning and the bodies must be equal.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import httpx
import pytest
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve as hypercorn_serve
from mcp.server.mcpserver import MCPServer

from supervisor import SupervisorConfig, UnsupportedServerSetting, open_supervisor
from tests.support import parity_servers
from tests.support.cli_process import run_serve, serving
from tests.support.helpers import initialize_body, mcp_headers, messages_of, rpc

MEANINGFUL = ("www-authenticate", "content-type", "cache-control", "location", "allow")


@attrs.frozen
class Pair:
    sdk: str
    ours: str
    """Base URLs (no path) of the SDK's app and of our CLI, serving the same server."""


@asynccontextmanager
async def sdk_app(server: MCPServer) -> AsyncIterator[str]:
    """The server's own `streamable_http_app()` under hypercorn's trio worker on a free port."""
    config = HypercornConfig()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.graceful_timeout = 1.0
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(
            lambda task_status: hypercorn_serve(
                server.streamable_http_app(),  # type: ignore[arg-type]
                config,
                shutdown_trigger=stop.wait,
                task_status=task_status,
            )
        )
        try:
            yield binds[0]
        finally:
            stop.set()


@asynccontextmanager
async def side_by_side(name: str) -> AsyncIterator[Pair]:
    server: MCPServer = getattr(parity_servers, name)
    async with sdk_app(server) as sdk, serving(f"tests.support.parity_servers:{name}") as ours:
        url = await ours.url()
        yield Pair(sdk=sdk, ours=url.removesuffix("/mcp"))


async def both(
    http: httpx.AsyncClient, pair: Pair, method: str, path: str, **kwargs: Any
) -> tuple[httpx.Response, httpx.Response]:
    sdk = await http.request(method, pair.sdk + path, **kwargs)
    ours = await http.request(method, pair.ours + path, **kwargs)
    return sdk, ours


def assert_alike(sdk: httpx.Response, ours: httpx.Response, *, body: bool = True) -> None:
    assert ours.status_code == sdk.status_code, (sdk.text, ours.text)
    for name in MEANINGFUL:
        if name == "location" and name in sdk.headers:
            # Each names its own port.
            assert ours.headers[name].split("/", 3)[3] == sdk.headers[name].split("/", 3)[3]
            continue
        if name == "allow" and name in sdk.headers:
            # Starlette lists a route's methods from a set: the order differs between processes.
            assert set(ours.headers[name].split(", ")) == set(sdk.headers[name].split(", "))
            continue
        assert ours.headers.get(name) == sdk.headers.get(name), name
    if body:
        assert ours.content == sdk.content


def bearer(token: str, session_id: str | None = None) -> dict[str, str]:
    return mcp_headers(session_id, authorization=f"Bearer {token}")


@pytest.fixture
async def authed() -> AsyncIterator[Pair]:
    async with side_by_side("authed") as pair:
        yield pair


async def test_no_token_wrong_token_and_wrong_scope_answer_as_the_sdk(
    authed: Pair, http: httpx.AsyncClient
) -> None:
    cases = [
        mcp_headers(),
        bearer("not-a-token"),
        mcp_headers(authorization="Basic YWxpY2U6c2VjcmV0"),
        bearer("noscope-token"),
    ]
    statuses = []
    for headers in cases:
        sdk, ours = await both(http, authed, "POST", "/mcp", content=initialize_body(), headers=headers)
        assert_alike(sdk, ours)
        statuses.append(ours.status_code)
        assert "resource_metadata=" in ours.headers["www-authenticate"]
    assert statuses == [401, 401, 401, 403]
    # GET and DELETE are guarded the same way.
    for method in ("GET", "DELETE"):
        sdk, ours = await both(http, authed, method, "/mcp", headers=mcp_headers("0" * 32))
        assert_alike(sdk, ours)
        assert ours.status_code == 401


async def test_protected_resource_metadata_is_served_alike(authed: Pair, http: httpx.AsyncClient) -> None:
    path = "/.well-known/oauth-protected-resource/mcp"
    sdk, ours = await both(http, authed, "GET", path)
    assert_alike(sdk, ours)
    assert ours.json()["resource"] == parity_servers.RESOURCE
    assert ours.json()["authorization_servers"] == [parity_servers.ISSUER]
    preflight = {"origin": "http://localhost:6274", "access-control-request-method": "GET"}
    sdk, ours = await both(http, authed, "OPTIONS", path, headers=preflight)
    assert_alike(sdk, ours)
    assert ours.headers["access-control-allow-origin"] == sdk.headers["access-control-allow-origin"]


async def test_custom_routes_are_served_beside_the_mcp_path(authed: Pair, http: httpx.AsyncClient) -> None:
    sdk, ours = await both(http, authed, "GET", "/health")
    assert_alike(sdk, ours)
    assert ours.json() == {"status": "ok", "user": None}
    # The route sees the token's user, as under the SDK's app-wide auth middleware.
    sdk, ours = await both(http, authed, "GET", "/health", headers={"authorization": "Bearer alice-token"})
    assert_alike(sdk, ours)
    assert ours.json()["user"] == "alice"
    sdk, ours = await both(http, authed, "POST", "/echo-form", content=b"a=1")
    assert_alike(sdk, ours)
    # Wrong method on a custom route, and the trailing-slash redirect: Starlette's, in both.
    sdk, ours = await both(http, authed, "PUT", "/health")
    assert_alike(sdk, ours)
    assert ours.status_code == 405
    sdk, ours = await both(http, authed, "POST", "/mcp/", headers=mcp_headers())
    assert_alike(sdk, ours)
    assert ours.status_code == 307


async def open_as(http: httpx.AsyncClient, url: str, token: str) -> str:
    response = await http.post(url, content=initialize_body(), headers=bearer(token))
    assert response.status_code == 200, response.text
    session_id = response.headers["mcp-session-id"]
    done = await http.post(
        url, content=rpc("notifications/initialized", None), headers=bearer(token, session_id)
    )
    assert done.status_code == 202
    return session_id


async def whoami(http: httpx.AsyncClient, url: str, token: str, session_id: str) -> httpx.Response:
    body = rpc("tools/call", 7, {"name": "whoami", "arguments": {}})
    return await http.post(url, content=body, headers=bearer(token, session_id))


async def test_sessions_are_bound_to_the_sdk_verifiers_principal(
    authed: Pair, http: httpx.AsyncClient
) -> None:
    for base in (authed.sdk, authed.ours):
        url = base + "/mcp"
        session_id = await open_as(http, url, "alice-token")
        mine = await whoami(http, url, "alice-token", session_id)
        assert messages_of(mine)[-1]["result"]["content"][0]["text"] == "alice"
        # Another token of the same principal keeps the session.
        again = await whoami(http, url, "alice-other-token", session_id)
        assert messages_of(again)[-1]["result"]["content"][0]["text"] == "alice"
        # Another principal, with the scope, gets the unknown-session 404.
        theirs = await whoami(http, url, "bob-token", session_id)
        assert theirs.status_code == 404
        for method in ("GET", "DELETE"):
            refused = await http.request(method, url, headers=bearer("bob-token", session_id))
            assert refused.status_code == 404
        still = await whoami(http, url, "alice-token", session_id)
        assert still.status_code == 200


async def test_an_authorization_server_providers_routes_are_mounted_alike(http: httpx.AsyncClient) -> None:
    async with side_by_side("provided") as pair:
        for path in ("/.well-known/oauth-authorization-server", "/.well-known/oauth-protected-resource/mcp"):
            sdk, ours = await both(http, pair, "GET", path)
            assert_alike(sdk, ours)
            assert ours.status_code == 200
        registration = {
            "redirect_uris": ["http://localhost:3000/callback"],
            "client_name": "parity",
            "scope": "mcp:use",
        }
        sdk, ours = await both(http, pair, "POST", "/register", json=registration)
        assert ours.status_code == sdk.status_code == 201
        assert set(ours.json()) == set(sdk.json())
        bad = {"redirect_uris": "not a list"}
        sdk, ours = await both(http, pair, "POST", "/register", json=bad)
        assert_alike(sdk, ours)
        # The provider's tokens authenticate MCP requests (the SDK's ProviderTokenVerifier).
        for base in (pair.sdk, pair.ours):
            session_id = await open_as(http, base + "/mcp", "alice-token")
            answer = await whoami(http, base + "/mcp", "alice-token", session_id)
            assert messages_of(answer)[-1]["result"]["content"][0]["text"] == "alice"
        sdk, ours = await both(http, pair, "POST", "/mcp", content=initialize_body(), headers=mcp_headers())
        assert_alike(sdk, ours)
        assert ours.status_code == 401


def test_a_second_authentication_is_refused_in_one_line(tmp_path: Any) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("t0k3n alice\n")
    result = run_serve("tests.support.parity_servers:authed", "--auth-tokens-file", str(tokens))
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("mcp-supervisor: the server configures its own authentication")
    assert "t0k3n" not in result.stderr


def test_a_metrics_path_over_a_custom_route_is_refused_in_one_line() -> None:
    result = run_serve("tests.support.parity_servers:routes_only", "--metrics-path", "/metrics")
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert "own route at /metrics" in line


async def test_embedding_refuses_the_same() -> None:
    from supervisor import StaticTokenVerifier

    config = SupervisorConfig(token_verifier=StaticTokenVerifier({"t": "x"}))
    with pytest.raises(UnsupportedServerSetting, match="its own authentication"):
        async with open_supervisor(parity_servers.authed, config):
            pass  # pragma: no cover
    with pytest.raises(UnsupportedServerSetting, match="its own authentication"):
        async with open_supervisor(parity_servers.authed, SupervisorConfig(required_scopes=("x",))):
            pass  # pragma: no cover


async def test_the_start_up_log_names_the_servers_own_auth_and_routes() -> None:
    async with serving("tests.support.parity_servers:authed") as ours:
        await ours.url()
        said = "\n".join(ours.seen)
        assert "authentication: the server's own" in said
        assert "/health" in said
        assert "/.well-known/oauth-protected-resource/mcp" in said


async def test_the_sdk_verifiers_principals_have_caps_and_revocation(http: httpx.AsyncClient) -> None:
    """Sessions opened through the server's own auth are counted and revoked by principal."""
    from supervisor import Principal
    from supervisor.testing import serve_for_test
    from tests.support.servers import build_server, sdk_auth

    config = SupervisorConfig(max_sessions_per_principal=1)
    async with serve_for_test(build_server(**sdk_auth()), config) as served:
        alice = await open_as(http, served.url, "alice-token")
        second = await http.post(served.url, content=initialize_body(), headers=bearer("alice-other-token"))
        assert second.status_code == 503
        assert second.headers["retry-after"] == "1"
        bob = await open_as(http, served.url, "bob-token")
        assert await served.supervisor.close_sessions_for(Principal(client_id="alice"), grace=0) == 1
        gone = await whoami(http, served.url, "alice-token", alice)
        assert gone.status_code == 404
        kept = await whoami(http, served.url, "bob-token", bob)
        assert messages_of(kept)[-1]["result"]["content"][0]["text"] == "bob"
