"""Every frame the supervisor writes itself: JSON-RPC bodies, SSE events, response heads.

Functions return bytes or ASGI messages; the few that send do nothing else. Every path (the
HTTP front, direct answers, quick open, health, auth) writes through here, so a refusal looks the
same wherever it comes from and SSE is framed in one place. Error codes are the SDK's.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
import mcp_types
from starlette.types import Message, Send

PARSE_ERROR = mcp_types.PARSE_ERROR
INVALID_REQUEST = mcp_types.INVALID_REQUEST
INTERNAL_ERROR = mcp_types.INTERNAL_ERROR
INVALID_PARAMS = mcp_types.INVALID_PARAMS
SESSION_ENDED = mcp_types.CONNECTION_CLOSED
"""-32000: the request could not be completed because its session ended (as the SDK answers it)."""

Header = tuple[bytes, bytes]

SSE_HEADERS: tuple[Header, ...] = (
    (b"cache-control", b"no-cache, no-transform"),
    (b"connection", b"keep-alive"),
    (b"content-type", b"text/event-stream"),
    (b"x-accel-buffering", b"no"),
)
"""What the SDK transport (through sse-starlette) sends with an SSE answer, less the session id."""

SSE_PING = b": ping\r\n\r\n"
"""A comment line: keeps a quiet stream alive through proxies, as sse-starlette's ping does."""


STATUS_CAUSES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "body_timeout",
    413: "body_too_large",
    415: "unsupported_media_type",
    421: "misdirected",
    429: "too_many_requests",
    503: "unavailable",
}


@attrs.frozen
class Refusal:
    """A precise answer to a request we do not serve: HTTP status plus the JSON-RPC error it carries."""

    status: int
    code: int
    message: str
    request_id: Any = attrs.field(default=None, kw_only=True)
    headers: tuple[tuple[str, str], ...] = attrs.field(default=(), kw_only=True)
    data: Any = attrs.field(default=None, hash=False, kw_only=True)
    cause: str = attrs.field(default="", kw_only=True)
    """Why, as a metrics label (`mcp_refusals_total{cause}`); empty: the status's own name."""

    @property
    def label(self) -> str:
        return self.cause or STATUS_CAUSES.get(self.status, str(self.status))


def error_body(code: int, message: str, request_id: Any = None, data: Any = None) -> bytes:
    """The JSON-RPC error object for one request (`id` null when unknown)."""
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return json_bytes({"jsonrpc": "2.0", "id": request_id, "error": error})


def result_body(request_id: Any, result: Any) -> bytes:
    return json_bytes({"jsonrpc": "2.0", "id": request_id, "result": result})


def json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def notification_body(method: str, params: Mapping[str, Any] | None = None) -> bytes:
    """One JSON-RPC notification (no `params` member when there are none, as JSON-RPC allows)."""
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params:
        message["params"] = dict(params)
    return json_bytes(message)


def sse_event(data: bytes) -> bytes:
    """One SSE `message` event carrying `data` (one JSON-RPC message)."""
    return b"event: message\r\ndata: " + data + b"\r\n\r\n"


def sse_error_event(code: int, message: str, request_id: Any) -> bytes:
    """A final SSE event that answers a request whose stream is already open."""
    return sse_event(error_body(code, message, request_id))


def session_header(session_id: str | bytes) -> Header:
    return (b"mcp-session-id", session_id if isinstance(session_id, bytes) else session_id.encode())


def json_headers(length: int, *extra: Header) -> list[Header]:
    return [(b"content-type", b"application/json"), (b"content-length", str(length).encode()), *extra]


def start(status: int, headers: Sequence[Header]) -> Message:
    return {"type": "http.response.start", "status": status, "headers": list(headers)}


def chunk(body: bytes, *, more: bool) -> Message:
    return {"type": "http.response.body", "body": body, "more_body": more}


async def send_whole(send: Send, status: int, headers: Sequence[Header], body: bytes = b"") -> None:
    """A complete response: head, then the whole body."""
    await send(start(status, headers))
    await send(chunk(body, more=False))


async def send_json(send: Send, status: int, body: bytes, *extra: Header) -> None:
    await send_whole(send, status, json_headers(len(body), *extra), body)


async def send_error(
    send: Send,
    status: int,
    code: int,
    message: str,
    request_id: Any = None,
    headers: Iterable[tuple[str, str]] = (),
    data: Any = None,
) -> None:
    """Send a complete JSON-RPC error response."""
    extra = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]
    await send_json(send, status, error_body(code, message, request_id, data), *extra)


async def send_refusal(send: Send, refusal: Refusal) -> None:
    await send_error(
        send, refusal.status, refusal.code, refusal.message, refusal.request_id, refusal.headers, refusal.data
    )
