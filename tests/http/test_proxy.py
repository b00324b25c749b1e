"""Behind a proxy, and hypercorn's conventions: allowed hosts, forwarded headers, root path, TLS,
several listeners, settings from the environment, a wrapped app that keeps the drain."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

import httpx
import pytest
import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from supervisor import hypercorn_config, open_supervisor, serve_supervisor
from tests.support.cli_process import run_serve, serving
from tests.support.helpers import initialize_body, mcp_headers, open_session, rpc
from tests.support.servers import Gate, build_server


async def _initialize(url: str, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.post(url, content=initialize_body(), headers={**mcp_headers(), **headers})


async def test_a_proxy_host_is_allowed_with_allowed_hosts_and_refused_without() -> None:
    async with serving() as server:
        refused = await _initialize(await server.url(), host="mcp.example.com")
    assert refused.status_code == 421
    async with serving("--allowed-hosts", "+mcp.example.com") as server:
        url = await server.url()
        assert (await _initialize(url, host="mcp.example.com")).status_code == 200
        assert (await _initialize(url)).status_code == 200, "the loopback defaults are kept with +"
    async with serving("--allowed-hosts", "mcp.example.com") as server:
        assert (await _initialize(await server.url())).status_code == 421, "replaced without +"


async def test_forwarded_headers_count_only_from_trusted_proxies() -> None:
    forwarded = {"x-forwarded-host": "mcp.example.com", "x-forwarded-proto": "https"}
    args = ("--allowed-hosts", "mcp.example.com")
    async with serving(*args, "--proxy-headers", "--forwarded-allow-ips", "127.0.0.1") as server:
        assert (await _initialize(await server.url(), **forwarded)).status_code == 200
    async with serving(*args) as server:
        # Without --proxy-headers the forwarded Host is not believed: the real one is checked.
        assert (await _initialize(await server.url(), **forwarded)).status_code == 421
    async with serving(*args, "--proxy-headers", "--forwarded-allow-ips", "10.9.9.9") as server:
        assert (await _initialize(await server.url(), **forwarded)).status_code == 421


async def test_a_root_path_serves_under_its_prefix() -> None:
    async with serving("--root-path", "/api") as server:
        url = await server.url()
        assert url.endswith("/api/mcp")
        assert (await _initialize(url)).status_code == 200
        async with httpx.AsyncClient(timeout=10) as http:
            assert (await http.get(url.removesuffix("/mcp") + "/healthz")).status_code == 200


LOCALHOST = ipaddress.ip_address("127.0.0.1")


def _self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


async def test_tls_with_a_self_signed_certificate(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    async with serving("--certfile", str(cert), "--keyfile", str(key)) as server:
        url = await server.url()
        assert url.startswith("https://127.0.0.1:")
        trust = ssl.create_default_context(cafile=str(cert))
        async with httpx.AsyncClient(timeout=10, verify=trust) as http:
            session_id = await open_session(http, url)
            answer = await http.post(url, content=rpc("ping", 3), headers=mcp_headers(session_id))
            assert answer.status_code == 200
    result = run_serve("--certfile", str(cert))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "mcp-supervisor: --certfile and --keyfile go together: give both for TLS"
    ]


async def test_several_listeners_and_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCP_SUPERVISOR_PATH", "/from-env")
    async with serving("-b", "127.0.0.1:0") as server:
        first = await server.url()
        second = await server.url()
        assert first != second and first.endswith("/from-env") and second.endswith("/from-env")
        for url in (first, second):
            assert (await _initialize(url)).status_code == 200
    monkeypatch.setenv("MCP_SUPERVISOR_IDLE_TIMEOUT", "soon")
    result = run_serve()
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "mcp-supervisor: MCP_SUPERVISOR_IDLE_TIMEOUT='soon' is not a valid value for --idle-timeout"
    ]


class _Stamp:
    """A wrapping middleware of the embedder's: adds a header to every answer."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"x-stamp", b"yes")]}
            await send(message)

        await self._app(scope, receive, stamped)


async def test_serve_supervisor_wraps_the_app_and_keeps_the_drain(gate: Gate) -> None:
    stop = trio.Event()
    async with open_supervisor(build_server(gate)) as supervisor, trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(
            lambda task_status: serve_supervisor(
                supervisor,
                hypercorn_config("127.0.0.1:0"),
                shutdown_trigger=stop.wait,
                task_status=task_status,
                wrap=_Stamp,
            )
        )
        url = binds[0] + "/mcp"
        async with httpx.AsyncClient(timeout=10) as http:
            session_id = await open_session(http, url)
            answer: list[httpx.Response] = []

            async def call() -> None:
                body = rpc("tools/call", 5, {"name": "wait", "arguments": {}})
                answer.append(await http.post(url, content=body, headers=mcp_headers(session_id)))

            async with trio.open_nursery() as calls:
                calls.start_soon(call)
                await gate.entered.wait()
                stop.set()  # the drain begins with the call in flight
                await trio.testing.wait_all_tasks_blocked()
                gate.release.set()
        assert answer[0].status_code == 200 and answer[0].headers["x-stamp"] == "yes"


def test_bad_proxy_and_environment_values_are_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_serve("--proxy-headers", "--forwarded-allow-ips", "proxy.internal")
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line == "mcp-supervisor: --forwarded-allow-ips: 'proxy.internal' is not an IP address (or give *)"
    result = run_serve("--root-path", "api")
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["mcp-supervisor: --root-path must start with '/', got 'api'"]
    monkeypatch.setenv("MCP_SUPERVISOR_JSON_RESPONSE", "maybe")
    result = run_serve()
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "mcp-supervisor: MCP_SUPERVISOR_JSON_RESPONSE='maybe': give 1/true/yes/on or 0/false/no/off"
    ]
