"""Property-based fuzzing of headers and bodies against a real `mcp-supervisor serve` process.

Whatever arrives: no 5xx but the documented 503, never a traceback, every error a JSON-RPC error
body, and no session harmed but the one the request names.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp_types.version import SUPPORTED_PROTOCOL_VERSIONS

from tests.support.helpers import initialize_body, mcp_headers, rpc

ROOT = Path(__file__).resolve().parent.parent.parent


class Served:
    def __init__(self, target: str, token: str | None) -> None:
        self.token = token
        """The bearer token of the server's own (SDK) auth; None when the server has none."""
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "supervisor",
                "serve",
                target,
                "--bind",
                "127.0.0.1:0",
                "--max-requests-per-session",
                "8",
            ],
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stderr is not None
        self.log: list[str] = []
        for line in self.process.stderr:
            self.log.append(line)
            if "serving MCP on " in line:
                self.url = line.split("serving MCP on ")[1].strip()
                break
        else:
            raise AssertionError("the server did not start:\n" + "".join(self.log))
        # Keep reading so the server never blocks on a full pipe.
        threading.Thread(target=self._drain, daemon=True).start()
        self.http = httpx.Client(timeout=30, headers={"authorization": f"Bearer {token}"} if token else None)
        self.others = httpx.Client(
            timeout=30, headers={"authorization": f"Bearer {token}"} if token else None
        )
        """The bystander's own client: another user, on connections of its own (a fuzzed request
        with a body the server does not read, a DELETE's say, ends its keep-alive connection,
        and a request sent on it in that instant would meet the close)."""
        self.bystander = self.open()
        self.target = self.open()

    def _drain(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.log.append(line)

    def open(self) -> str:
        response = self.http.post(self.url, content=initialize_body(), headers=mcp_headers())
        assert response.status_code == 200
        session_id = response.headers["mcp-session-id"]
        self.http.post(
            self.url, content=rpc("notifications/initialized", None), headers=mcp_headers(session_id)
        )
        return session_id

    def stop(self) -> int:
        self.http.close()
        self.others.close()
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


@pytest.fixture(scope="module", params=["no-auth", "sdk-auth"])
def served(request: pytest.FixtureRequest) -> Iterator[Served]:
    """The demo server, and a server with the SDK's own bearer auth (tests/support/parity_servers.py)."""
    if request.param == "sdk-auth":
        server = Served("tests.support.parity_servers:authed", "alice-token")
    else:
        server = Served("supervisor.demo:server", None)
    try:
        yield server
    finally:
        assert server.stop() == 0
        assert not any("Traceback" in line for line in server.log), "".join(server.log)


header_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80).map(
    str.strip
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
methods = st.sampled_from(
    [
        "ping",
        "initialize",
        "tools/list",
        "tools/call",
        "resources/read",
        "notifications/initialized",
        "nope",
        "",
    ]
)


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["bytes", "json", "rpc"]))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "json":
        return json.dumps(draw(json_values)).encode()
    message: dict[str, Any] = {
        "jsonrpc": draw(st.sampled_from(["2.0", "2.0", "1.0", 2])),
        "method": draw(methods),
    }
    if draw(st.booleans()):
        message["id"] = draw(st.one_of(st.integers(), st.text(max_size=10), st.none(), st.booleans()))
    if draw(st.booleans()):
        message["params"] = draw(json_values)
    return json.dumps(message).encode()


@st.composite
def requests(draw: st.DrawFn, served: Served) -> tuple[str, dict[str, str], bytes]:
    method = draw(st.sampled_from(["POST", "POST", "POST", "GET", "DELETE", "PUT", "PATCH"]))
    headers: dict[str, str] = {}
    choices = {
        "content-type": st.sampled_from(
            ["application/json", "application/json; charset=utf-8", "text/plain", ""]
        )
        | header_text,
        "accept": st.sampled_from(
            ["application/json, text/event-stream", "application/json", "text/event-stream", "*/*", ""]
        )
        | header_text,
        "mcp-session-id": st.sampled_from([served.target, "0" * 32]) | header_text,
        "mcp-protocol-version": st.sampled_from(list(SUPPORTED_PROTOCOL_VERSIONS)) | header_text,
        "last-event-id": header_text,
        "origin": st.sampled_from(["http://localhost:1", "http://evil.example"]) | header_text,
    }
    if served.token is not None:
        choices["authorization"] = (
            st.sampled_from(["Bearer bob-token", "Bearer noscope-token", "Bearer nope", "Basic x", ""])
            | header_text
        )
    for name, strategy in choices.items():
        if draw(st.booleans()):
            headers[name] = draw(strategy)
    return method, headers, draw(bodies())


@settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "150")),
    deadline=None,
    derandomize=os.environ.get("FUZZ_RANDOM") is None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_fuzzed_requests_never_break_the_server(served: Served, data: st.DataObject) -> None:
    method, headers, body = data.draw(requests(served))
    if method == "GET" and headers.get("mcp-session-id") == served.target:
        # A successful GET is a stream that never ends; cap it.
        headers["mcp-session-id"] = "0" * 32
    response = served.http.request(method, served.url, content=body or None, headers=headers)
    assert response.status_code < 500 or response.status_code == 503, response.text
    assert "Traceback" not in response.text
    if response.status_code in (401, 403) and "jsonrpc" not in response.json():
        # The SDK's own RequireAuthMiddleware answers, as under the SDK's app: an OAuth error body.
        assert served.token is not None
        assert response.json()["error"] in ("invalid_token", "insufficient_scope")
        assert "resource_metadata=" in response.headers["www-authenticate"]
    elif response.status_code >= 400:
        payload = response.json()
        assert payload["jsonrpc"] == "2.0"
        assert isinstance(payload["error"]["code"], int)
    # The bystander never notices.
    ping = served.others.post(served.url, content=rpc("ping", 1), headers=mcp_headers(served.bystander))
    assert ping.status_code == 200
    if response.status_code == 200 and method == "DELETE":
        served.target = served.open()
