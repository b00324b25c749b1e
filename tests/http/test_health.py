"""Liveness and readiness over real HTTP: outside auth, 503 while draining or at the cap."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
import trio
import trio.testing

from supervisor import StaticTokenVerifier, SupervisorConfig
from supervisor.testing import TestServer, serve_for_test
from tests.support.cli_process import run_serve
from tests.support.helpers import error_of, mcp_headers, open_session, rpc
from tests.support.servers import Gate, build_server


@asynccontextmanager
async def shutting_down_with_a_call_in_flight(
    http: httpx.AsyncClient, served: TestServer, gate: Gate, session_id: str
) -> AsyncIterator[None]:
    """The block runs while shutdown drains a call held at the gate; the call is let go after."""
    call = rpc("tools/call", 3, {"name": "wait", "arguments": {}})
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: http.post(served.url, content=call, headers=mcp_headers(session_id)))
        await gate.entered.wait()
        nursery.start_soon(served.supervisor.shutdown)
        await trio.testing.wait_all_tasks_blocked()
        try:
            yield
        finally:
            gate.release.set()


async def test_liveness_and_readiness_answer_without_a_token(http: httpx.AsyncClient) -> None:
    config = SupervisorConfig(token_verifier=StaticTokenVerifier({"t": "alice"}))
    async with serve_for_test(build_server(), config) as served:
        alive = await http.get(served.base_url + "/healthz")
        assert alive.status_code == 200
        assert alive.json() == {"status": "ok"}
        assert alive.headers["cache-control"] == "no-store"
        ready = await http.get(served.base_url + "/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"ready": True, "reasons": []}
        head = await http.head(served.base_url + "/readyz")
        assert head.status_code == 200
        assert head.content == b""
        post = await http.post(served.base_url + "/healthz")
        assert post.status_code == 405
        assert error_of(post)["code"] == -32600
        # The MCP endpoint itself still wants a token.
        assert (await http.post(served.url, content=rpc("ping"), headers=mcp_headers())).status_code == 401


async def test_not_ready_at_the_session_cap(http: httpx.AsyncClient) -> None:
    async with serve_for_test(build_server(), SupervisorConfig(max_sessions=1)) as served:
        session_id = await open_session(http, served.url)
        ready = await http.get(served.base_url + "/readyz")
        assert ready.status_code == 503
        assert ready.json()["reasons"] == ["at the session cap"]
        assert (await http.get(served.base_url + "/healthz")).status_code == 200
        await http.delete(served.url, headers=mcp_headers(session_id))
        assert (await http.get(served.base_url + "/readyz")).status_code == 200


async def test_not_ready_while_draining(http: httpx.AsyncClient, gate: Gate) -> None:
    async with serve_for_test(build_server(gate), SupervisorConfig(drain_grace=60)) as served:
        session_id = await open_session(http, served.url)
        async with shutting_down_with_a_call_in_flight(http, served, gate, session_id):
            ready = await http.get(served.base_url + "/readyz")
            assert ready.status_code == 503
            assert ready.json()["reasons"] == ["draining"]
            assert (await http.get(served.base_url + "/healthz")).status_code == 200


async def test_paths_move_and_switch_off(http: httpx.AsyncClient) -> None:
    config = SupervisorConfig(health_path="/live", ready_path=None)
    async with serve_for_test(build_server(), config) as served:
        assert (await http.get(served.base_url + "/live")).status_code == 200
        assert (await http.get(served.base_url + "/readyz")).status_code == 404
        assert (await http.get(served.base_url + "/healthz")).status_code == 404


def test_a_health_path_on_the_mcp_path_is_refused() -> None:
    with pytest.raises(ValueError, match="path and health_path are both '/mcp'"):
        SupervisorConfig(health_path="/mcp")
    result = run_serve("--ready-path", "/mcp")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "mcp-supervisor: --path and --ready-path are both '/mcp': each needs a path of its own"
    ]


async def test_a_servers_own_route_on_a_health_path_is_refused() -> None:
    from mcp.server.mcpserver import MCPServer
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response

    from supervisor import UnsupportedServerSetting, open_supervisor

    server: MCPServer = MCPServer("own-health")

    @server.custom_route("/healthz", methods=["GET"])  # type: ignore[untyped-decorator]
    async def health(request: Request) -> Response:
        return PlainTextResponse("mine")

    with pytest.raises(UnsupportedServerSetting, match="own route at /healthz"):
        async with open_supervisor(server):
            pass  # pragma: no cover
    # Moved out of its way, the server's own route is served.
    async with (
        serve_for_test(server, SupervisorConfig(health_path="/livez")) as served,
        httpx.AsyncClient() as http,
    ):
        assert (await http.get(served.base_url + "/healthz")).text == "mine"
        assert (await http.get(served.base_url + "/livez")).json() == {"status": "ok"}


async def test_serving_the_held_sessions_is_a_signal_of_its_own(http: httpx.AsyncClient, gate: Gate) -> None:
    """Full or draining, a node still serves what it holds; once shutdown began, it does not."""
    async with serve_for_test(build_server(gate), SupervisorConfig(max_sessions=1, drain_grace=60)) as served:
        held = served.base_url + "/readyz?sessions=held"
        session_id = await open_session(http, served.url)
        assert (await http.get(served.base_url + "/readyz")).status_code == 503
        answer = await http.get(held)
        assert answer.status_code == 200
        assert answer.json() == {"serving": True, "reasons": []}
        served.supervisor.drain()
        assert (await http.get(held)).status_code == 200
        async with shutting_down_with_a_call_in_flight(http, served, gate, session_id):
            stopping = await http.get(held)
            assert stopping.status_code == 503
            assert stopping.json() == {"serving": False, "reasons": ["stopping"]}
            assert (await http.get(served.base_url + "/healthz")).status_code == 200
