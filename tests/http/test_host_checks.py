"""Host and Origin are checked by default everywhere the supervisor answers itself (issue 22.3).

DNS rebinding reaches a server under the attacker's host name: a Host that is not allowed is 421
and an Origin that is not allowed 403, on the MCP endpoint, metrics, health and readiness; the CLI
and an embedding application get the same loopback default, and a public bind must say which
names it serves (or that it checks none, by name).
"""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest
import trio
from mcp.server.transport_security import TransportSecuritySettings

from supervisor import ANY_HOST, SupervisorConfig, hypercorn_config, loopback_security, open_supervisor
from supervisor import serve_supervisor as serve_with_hypercorn
from supervisor.testing import serve_for_test
from tests.support.cli_process import ROOT, ServerProcess, run_serve
from tests.support.cluster import free_port
from tests.support.helpers import error_of, initialize_body, mcp_headers
from tests.support.servers import build_server

EVIL = {"host": "evil.example"}
EVIL_ORIGIN = {"origin": "http://evil.example"}


async def test_embedding_protects_loopback_by_default_on_every_path(http: httpx.AsyncClient) -> None:
    async with serve_for_test(build_server()) as served:  # SupervisorConfig() as an embedder writes it
        base = served.base_url
        answer = await http.post(served.url, content=initialize_body(), headers=mcp_headers(**EVIL))
        assert answer.status_code == 421
        assert error_of(answer)["message"] == "Invalid Host header"
        origin = await http.post(served.url, content=initialize_body(), headers=mcp_headers(**EVIL_ORIGIN))
        assert origin.status_code == 403
        for path in ("/metrics", "/readyz", "/healthz"):
            refused = await http.get(base + path, headers=EVIL)
            assert refused.status_code == 421, path
            assert error_of(refused)["code"] == -32600
            assert "python" not in refused.text.lower()
            assert (await http.get(base + path, headers=EVIL_ORIGIN)).status_code == 403, path
            assert (await http.get(base + path)).status_code == 200, path
        plain = await http.post(served.url, content=initialize_body(), headers=mcp_headers())
        assert plain.status_code == 200


async def _raw_get(base_url: str, path: str, head: str) -> bytes:
    host, port = base_url.removeprefix("http://").split(":")
    stream = await trio.open_tcp_stream(host, int(port))
    async with stream:
        await stream.send_all(f"GET {path} HTTP/1.0\r\n{head}\r\n".encode())
        answer = b""
        while chunk := await stream.receive_some(65536):
            answer += chunk
    return answer


async def test_a_health_check_without_any_host_header_passes_but_not_metrics() -> None:
    """HAProxy's `option httpchk` sends HTTP/1.0 with no Host; no browser sends a request so."""
    async with serve_for_test(build_server()) as served:
        assert (await _raw_get(served.base_url, "/readyz", "")).startswith(b"HTTP/1.1 200")
        assert (await _raw_get(served.base_url, "/healthz", "")).startswith(b"HTTP/1.1 200")
        assert (await _raw_get(served.base_url, "/metrics", "")).startswith(b"HTTP/1.1 421")
        with_origin = await _raw_get(served.base_url, "/readyz", "Origin: http://evil.example\r\n")
        assert not with_origin.startswith(b"HTTP/1.1 200")


async def test_serve_supervisor_refuses_a_public_bind_with_loopback_only_checks() -> None:
    async with open_supervisor(build_server(), SupervisorConfig()) as supervisor:
        with pytest.raises(ValueError, match=r"binding 0\.0\.0\.0:0 \(not loopback\).*--allowed-hosts"):
            await serve_with_hypercorn(supervisor, hypercorn_config("0.0.0.0:0"))
        await supervisor.shutdown()


def test_the_config_wants_host_checks_by_name() -> None:
    assert SupervisorConfig().security == loopback_security()
    with pytest.raises(TypeError, match=r"supervisor\.ANY_HOST"):
        SupervisorConfig(security=None)  # type: ignore[arg-type]
    assert not SupervisorConfig(security=ANY_HOST).security.enable_dns_rebinding_protection
    with pytest.raises(ValueError, match="not loopback"):
        loopback_security("0.0.0.0:8000")
    assert loopback_security("127.0.0.1:8000") == loopback_security()


def test_the_cli_refuses_a_public_bind_without_allow_lists_in_one_line() -> None:
    result = run_serve("--bind", f"0.0.0.0:{free_port()}")
    assert result.returncode == 2
    [said] = result.stderr.splitlines()
    assert said.startswith("mcp-supervisor: binding 0.0.0.0:")
    assert "--allowed-hosts" in said and "--allow-any-host" in said
    both = run_serve("--bind", "0.0.0.0:1", "--allow-any-host", "--allowed-hosts", "a.example")
    assert both.returncode == 2
    assert "not both" in both.stderr


async def _public_cli(*args: str) -> tuple[ServerProcess, str]:
    port = free_port()
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "supervisor", "serve", "--bind", f"0.0.0.0:{port}", *args],
        cwd=ROOT,
        stderr=subprocess.PIPE,
    )
    server = ServerProcess(process)
    await server.url()
    return server, f"http://127.0.0.1:{port}"


async def _stop(server: ServerProcess) -> None:
    server.process.terminate()
    with trio.fail_after(30):
        await server.process.wait()


@pytest.mark.parametrize(
    ("args", "evil_host", "evil_origin"),
    [
        (("--allowed-hosts", "127.0.0.1:*"), 421, 403),
        (("--allow-any-host",), 200, 200),
    ],
    ids=["allow-lists", "allow-any-host"],
)
async def test_a_public_bind_checks_what_it_was_told(
    http: httpx.AsyncClient, args: tuple[str, ...], evil_host: int, evil_origin: int
) -> None:
    server, base = await _public_cli(*args)
    try:
        url = base + "/mcp"
        assert (await http.post(url, content=initialize_body(), headers=mcp_headers())).status_code == 200
        hostile = await http.post(url, content=initialize_body(), headers=mcp_headers(**EVIL))
        assert hostile.status_code == evil_host
        origin = await http.post(url, content=initialize_body(), headers=mcp_headers(**EVIL_ORIGIN))
        assert origin.status_code == evil_origin
        assert (await http.get(base + "/metrics", headers=EVIL)).status_code == evil_host
    finally:
        await _stop(server)


def test_a_target_with_its_own_allow_lists_keeps_them_on_a_public_bind() -> None:
    """A `Served` bundle's settings are not replaced by the loopback default (they say more)."""
    from supervisor._cli._flags import apply_options, build_parser
    from supervisor._core._loading import Served

    own = TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=["mcp.example.com"])
    served = Served(build_server(), SupervisorConfig(security=own))
    options = build_parser().parse_args(["serve", "--bind", "0.0.0.0:8000"])
    assert apply_options(served, options).security == own
