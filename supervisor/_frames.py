"""JSON-RPC error answers: every refusal carries a body a client can parse, never a traceback."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from starlette.types import Send

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
INTERNAL_ERROR = -32603
SESSION_ENDED = -32000
"""Server-defined: the request could not be completed because its session ended (the SDK's own code)."""


def error_body(code: int, message: str, request_id: Any = None, data: Any = None) -> bytes:
    """The JSON-RPC error object for one request (`id` null when unknown)."""
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    payload = {"jsonrpc": "2.0", "id": request_id, "error": error}
    return json.dumps(payload, separators=(",", ":")).encode()


def sse_error_event(code: int, message: str, request_id: Any) -> bytes:
    """A final SSE `message` event that answers a request whose stream is already open."""
    return b"event: message\r\ndata: " + error_body(code, message, request_id) + b"\r\n\r\n"


async def send_error(
    send: Send,
    status: int,
    code: int,
    message: str,
    request_id: Any = None,
    headers: Iterable[tuple[str, str]] = (),
    data: Any = None,
) -> None:
    """Send a complete JSON error response."""
    body = error_body(code, message, request_id, data)
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
