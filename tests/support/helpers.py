"""Shared helpers for tests that speak raw HTTP to a served supervisor."""

from __future__ import annotations

import json
from typing import Any

import httpx
from mcp_types.version import LATEST_HANDSHAKE_VERSION

from tests.support.sse import sse_messages

PROTOCOL = LATEST_HANDSHAKE_VERSION
ACCEPT_BOTH = "application/json, text/event-stream"


def mcp_headers(session_id: str | None = None, **extra: str) -> dict[str, str]:
    headers = {"accept": ACCEPT_BOTH, "content-type": "application/json", "mcp-protocol-version": PROTOCOL}
    if session_id is not None:
        headers["mcp-session-id"] = session_id
    headers.update(extra)
    return headers


def rpc(method: str, request_id: int | str | None = 1, params: dict[str, Any] | None = None) -> bytes:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if request_id is not None:
        message["id"] = request_id
    if params is not None:
        message["params"] = params
    return json.dumps(message).encode()


def initialize_body(request_id: int = 1) -> bytes:
    return rpc(
        "initialize",
        request_id,
        {"protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}},
    )


def messages_of(response: httpx.Response) -> list[dict[str, Any]]:
    """The JSON-RPC messages in a JSON or SSE response body."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        return sse_messages(response.text)
    return [response.json()]


async def open_session(http: httpx.AsyncClient, url: str) -> str:
    """Initialize a session over raw HTTP and send `initialized`; return its id."""
    response = await http.post(url, content=initialize_body(), headers=mcp_headers())
    assert response.status_code == 200, response.text
    session_id = response.headers["mcp-session-id"]
    done = await http.post(
        url, content=rpc("notifications/initialized", None), headers=mcp_headers(session_id)
    )
    assert done.status_code == 202
    return session_id


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The JSON-RPC error object of a JSON error answer."""
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert "Traceback" not in response.text
    error: dict[str, Any] = body["error"]
    error["id"] = body["id"]
    return error
