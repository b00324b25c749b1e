"""Hostile input over real HTTP: each gets its exact status and JSON-RPC error, and harms no one."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import attrs
import httpx
import pytest
import trio
from mcp_types.version import MODERN_PROTOCOL_VERSIONS, SUPPORTED_PROTOCOL_VERSIONS

from supervisor import SupervisorConfig
from supervisor.testing import TestServer, check_quiescent, serve_for_test, settle
from tests.support.helpers import (
    ACCEPT_BOTH,
    error_of,
    initialize_body,
    mcp_headers,
    messages_of,
    open_session,
    rpc,
)
from tests.support.servers import build_server, sdk_auth

LIMIT = 64 * 1024


@attrs.frozen
class Case:
    name: str
    method: str
    body: bytes | None
    headers: dict[str, str | None]
    """Changes to the normal headers of a request in a session; None removes one."""
    status: int
    code: int | None
    """The JSON-RPC error code, or None for a success without a body to check."""
    with_session: bool = True


CASES = [
    Case("malformed JSON", "POST", b'{"jsonrpc": "2.0", "id": 1,', {}, 400, -32700),
    Case("not UTF-8", "POST", b"\xff\xfe\x00", {}, 400, -32700),
    Case("JSON but not JSON-RPC", "POST", b'{"hello": "world"}', {}, 400, -32600),
    Case("JSON-RPC 1.0", "POST", b'{"jsonrpc": "1.0", "id": 1, "method": "ping"}', {}, 400, -32600),
    Case("a bare string", "POST", b'"ping"', {}, 400, -32600),
    Case("a batch", "POST", b'[{"jsonrpc": "2.0", "id": 1, "method": "ping"}]', {}, 400, -32600),
    Case("an empty batch", "POST", b"[]", {}, 400, -32600),
    Case("boolean id", "POST", b'{"jsonrpc": "2.0", "id": true, "method": "ping"}', {}, 400, -32600),
    Case("wrong content type", "POST", rpc("ping"), {"content-type": "text/plain"}, 415, -32600),
    Case("missing content type", "POST", rpc("ping"), {"content-type": None}, 415, -32600),
    Case("empty accept", "POST", rpc("ping"), {"accept": ""}, 406, -32600),
    Case("accept without SSE", "POST", rpc("ping"), {"accept": "application/json"}, 406, -32600),
    Case("GET accepting only JSON", "GET", None, {"accept": "application/json"}, 406, -32600),
    # An unknown version is answered as the SDK's request ladder answers one: -32022, naming the
    # supported versions (test_unsupported_version_names_the_supported_ones).
    Case(
        "unsupported protocol version",
        "POST",
        rpc("ping"),
        {"mcp-protocol-version": "1999-01-01"},
        400,
        -32022,
    ),
    Case("unsupported protocol version on GET", "GET", None, {"mcp-protocol-version": "x"}, 400, -32022),
    Case("overlong session id", "POST", rpc("ping"), {"mcp-session-id": "a" * 300}, 400, -32600),
    Case("session id with a space", "POST", rpc("ping"), {"mcp-session-id": "ab cd"}, 400, -32600),
    Case("unknown session id", "POST", rpc("ping", 3), {"mcp-session-id": "b" * 32}, 404, -32600),
    Case("DELETE of an unknown id", "DELETE", None, {"mcp-session-id": "c" * 32}, 404, -32600),
    Case("no session, not initialize", "POST", rpc("tools/list", 4), {"mcp-session-id": None}, 400, -32600),
    Case(
        "GET without a session",
        "GET",
        None,
        {"mcp-session-id": None, "accept": "text/event-stream"},
        400,
        -32600,
    ),
    Case(
        "oversize body",
        "POST",
        b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"' + b"x" * LIMIT + b'"}}',
        {},
        413,
        -32600,
    ),
    Case("deeply nested JSON", "POST", b"[" * 30_000 + b"]" * 30_000, {}, 400, -32700),
    Case(
        "deeply nested params",
        "POST",
        b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":' + b"[" * 25_000 + b"]" * 25_000 + b"}}",
        {},
        400,
        -32700,
    ),
    Case(
        "stateless: deeply nested JSON",
        "POST",
        b"[" * 30_000 + b"]" * 30_000,
        {"mcp-protocol-version": "2026-07-28"},
        400,
        -32700,
    ),
    Case(
        "GET with Last-Event-ID and no event store",
        "GET",
        None,
        {"accept": "text/event-stream", "last-event-id": "17"},
        400,
        -32600,
    ),
    Case("PUT", "PUT", b"", {}, 405, -32600),
    Case("another path", "POST", rpc("ping"), {}, 404, -32600),
    Case("stateless: malformed JSON", "POST", b"{", {"mcp-protocol-version": "2026-07-28"}, 400, -32700),
    Case("stateless: empty body", "POST", b"", {"mcp-protocol-version": "2026-07-28"}, 400, -32700),
    Case("stateless: a batch", "POST", b"[]", {"mcp-protocol-version": "2026-07-28"}, 400, -32600),
    Case(
        "stateless: wrong content type",
        "POST",
        rpc("ping"),
        {"mcp-protocol-version": "2026-07-28", "content-type": "text/plain"},
        415,
        -32600,
    ),
    Case(
        "stateless: accept without JSON",
        "POST",
        rpc("ping"),
        {"mcp-protocol-version": "2026-07-28", "accept": "text/event-stream"},
        406,
        -32600,
    ),
    Case("stateless: GET", "GET", None, {"mcp-protocol-version": "2026-07-28"}, 405, -32600),
    Case("stateless: DELETE", "DELETE", None, {"mcp-protocol-version": "2026-07-28"}, 405, -32600),
    Case("notification only", "POST", rpc("notifications/initialized", None), {}, 202, None),
    Case("a response from the client", "POST", b'{"jsonrpc": "2.0", "id": "x", "result": {}}', {}, 202, None),
]


@attrs.frozen
class Scene:
    served: TestServer
    http: httpx.AsyncClient
    target: str
    bystander: str
    token: str | None = None
    """The bearer token every request carries (the sdk-auth scene)."""


@pytest.fixture(params=["no-auth", "sdk-auth"])
async def scene(request: pytest.FixtureRequest) -> AsyncIterator[Scene]:
    """The same cases without auth, and behind the server's own SDK bearer auth (a valid token)."""
    config = SupervisorConfig(max_request_body_size=LIMIT, body_timeout=1.0)
    authed = request.param == "sdk-auth"
    server = build_server(**sdk_auth()) if authed else build_server()
    token = {"authorization": "Bearer alice-token"} if authed else {}
    async with (
        serve_for_test(server, config) as served,
        httpx.AsyncClient(timeout=30, headers=token) as http,
    ):
        target = await open_session(http, served.url)
        bystander = await open_session(http, served.url)
        yield Scene(served, http, target, bystander, "alice-token" if authed else None)


async def still_fine(scene: Scene, *session_ids: str) -> None:
    for session_id in session_ids:
        body = rpc("tools/call", 77, {"name": "echo", "arguments": {"text": "still here"}})
        response = await scene.http.post(scene.served.url, content=body, headers=mcp_headers(session_id))
        assert response.status_code == 200
        assert messages_of(response)[-1]["result"]["content"][0]["text"] == "still here"


@pytest.fixture(autouse=True)
def no_error_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """After every case: nothing was logged at ERROR or with a traceback."""
    yield
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not bad, [f"{r.name}: {r.getMessage()}" for r in bad]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_hostile_input(scene: Scene, case: Case) -> None:
    headers: dict[str, str] = {}
    for name, value in {**mcp_headers(scene.target), **case.headers}.items():
        if value is not None:
            headers[name] = value
    url = scene.served.url if case.name != "another path" else scene.served.base_url + "/elsewhere"
    response = await scene.http.request(case.method, url, content=case.body, headers=headers)
    assert response.status_code == case.status, response.text
    assert "Traceback" not in response.text
    if case.code is not None:
        assert error_of(response)["code"] == case.code
    if case.status == 405:
        stateless = case.headers.get("mcp-protocol-version") == "2026-07-28"
        assert response.headers["allow"] == ("POST" if stateless else "GET, POST, DELETE")
    await still_fine(scene, scene.target, scene.bystander)
    stats = scene.served.supervisor.stats()
    assert stats.live == 2
    assert stats.total_closed == 0


async def test_unsupported_version_names_the_supported_ones(scene: Scene) -> None:
    headers = mcp_headers(scene.target, **{"mcp-protocol-version": "1999-01-01"})
    response = await scene.http.post(scene.served.url, content=rpc("ping", 41), headers=headers)
    assert response.status_code == 400
    error = error_of(response)
    assert error["id"] == 41
    # The data is the SDK ladder's (per-request versions); the message names both eras' versions.
    assert error["data"] == {"supported": list(MODERN_PROTOCOL_VERSIONS), "requested": "1999-01-01"}
    for version in SUPPORTED_PROTOCOL_VERSIONS:
        assert version in error["message"]


async def test_error_answers_carry_the_request_id(scene: Scene) -> None:
    response = await scene.http.post(
        scene.served.url, content=rpc("tools/list", "abc"), headers=mcp_headers()
    )
    assert response.status_code == 400
    assert error_of(response)["id"] == "abc"


async def raw_exchange(scene: Scene, head: bytes, body_part: bytes, *, half_close: bool) -> bytes:
    """Send a request head and part of a body on a raw socket; return what the server says."""
    host, port = scene.served.base_url.removeprefix("http://").rsplit(":", 1)
    stream = await trio.open_tcp_stream(host, int(port))
    async with stream:
        await stream.send_all(head + body_part)
        if half_close:
            await stream.send_eof()
        received = b""
        with trio.fail_after(30):
            while chunk := await stream.receive_some(65536):
                received += chunk
                if b"\r\n\r\n" in received and received.endswith(b"}"):
                    break
        return received


def request_head(scene: Scene, length: int, *, accept: bool = True) -> bytes:
    lines = [
        "POST /mcp HTTP/1.1",
        f"Host: {scene.served.base_url.removeprefix('http://')}",
        "Content-Type: application/json",
        *([f"Accept: {ACCEPT_BOTH}"] if accept else []),
        f"Mcp-Session-Id: {scene.target}",
        *([f"Authorization: Bearer {scene.token}"] if scene.token else []),
        f"Content-Length: {length}",
        "",
        "",
    ]
    return "\r\n".join(lines).encode()


async def test_missing_accept_is_406(scene: Scene) -> None:
    body = rpc("ping", 12)
    answer = await raw_exchange(scene, request_head(scene, len(body), accept=False), body, half_close=False)
    assert answer.startswith(b"HTTP/1.1 406")
    assert b'"code":-32600' in answer
    await still_fine(scene, scene.target, scene.bystander)


async def test_slow_body_gets_408(scene: Scene) -> None:
    body = rpc("ping", 5)
    answer = await raw_exchange(scene, request_head(scene, len(body)), body[:10], half_close=False)
    assert answer.startswith(b"HTTP/1.1 408")
    assert b'"code":-32600' in answer
    await still_fine(scene, scene.target, scene.bystander)


async def test_truncated_body_harms_no_one(scene: Scene) -> None:
    body = rpc("ping", 6)
    answer = await raw_exchange(scene, request_head(scene, len(body)), body[:10], half_close=True)
    assert b"Traceback" not in answer
    await still_fine(scene, scene.target, scene.bystander)
    await settle(scene.served.supervisor)
    check_quiescent(scene.served.supervisor, sessions=2)


async def test_request_flood_on_one_session(scene: Scene) -> None:
    statuses: list[int] = []

    async def ping(request_id: int) -> None:
        response = await scene.http.post(
            scene.served.url, content=rpc("ping", request_id), headers=mcp_headers(scene.target)
        )
        assert "Traceback" not in response.text
        statuses.append(response.status_code)

    async with trio.open_nursery() as nursery:
        for request_id in range(300):
            nursery.start_soon(ping, request_id)
    assert len(statuses) == 300
    assert set(statuses) <= {200, 429, 503}
    assert statuses.count(200) > 0
    await still_fine(scene, scene.target, scene.bystander)
    await settle(scene.served.supervisor)
    check_quiescent(scene.served.supervisor, sessions=2)


async def test_initialize_with_an_existing_session_id_is_routed_to_it(scene: Scene) -> None:
    response = await scene.http.post(
        scene.served.url, content=initialize_body(8), headers=mcp_headers(scene.bystander)
    )
    # The session's own server refuses a second initialize; the session itself carries on.
    assert response.status_code in (200, 400)
    assert "Traceback" not in response.text
    await still_fine(scene, scene.target, scene.bystander)


async def test_bad_tokens_under_sdk_auth_harm_no_one() -> None:
    """The SDK's own 401/403 (OAuth error bodies, as the SDK's app sends), and no session is touched."""
    async with serve_for_test(build_server(**sdk_auth())) as served, httpx.AsyncClient(timeout=30) as http:
        good = {"authorization": "Bearer alice-token"}
        async with httpx.AsyncClient(timeout=30, headers=good) as authed:
            target = await open_session(authed, served.url)
        cases = [
            ({}, 401, "invalid_token"),
            ({"authorization": "Bearer " + "x" * 5000}, 401, "invalid_token"),
            ({"authorization": "Bearer"}, 401, "invalid_token"),
            ({"authorization": "bearer %00"}, 401, "invalid_token"),
            ({"authorization": "Bearer noscope-token"}, 403, "insufficient_scope"),
        ]
        for extra, status, error in cases:
            headers = {**mcp_headers(target), **extra}
            for method, body in (("POST", rpc("ping", 3)), ("GET", None), ("DELETE", None)):
                response = await http.request(method, served.url, content=body, headers=headers)
                assert response.status_code == status, response.text
                assert response.json()["error"] == error
                assert "resource_metadata=" in response.headers["www-authenticate"]
        still = await http.post(served.url, content=rpc("ping", 4), headers={**mcp_headers(target), **good})
        assert still.status_code == 200
        assert served.supervisor.stats().live == 1
