"""Quick open: with hibernation on, a new session is born dormant and `initialize` answered at once.

A session's `initialize` answer depends only on the server and on the protocol version the
client asks for (the SDK negotiates the version and fills in the server's static options). So
the first session that asks for a version opens the normal way, and the supervisor keeps the
server's own answer; later sessions asking for that version get the same answer (with their
request id) from here, and their actor starts dormant, exactly as if it had hibernated right
after the handshake: no SDK transport, no server loop, until the first real request wakes it and
replays the handshake into fresh ones. `notifications/initialized` is taken without waking.

Decisions are pure functions over bytes (`lookup`, `learn`, the framing helpers); the only I/O
is `send_initialize_answer`, at the edge.
"""

from __future__ import annotations

import json
from typing import Any

from mcp_types import InitializeRequestParams
from pydantic import ValidationError
from starlette.types import Send

SSE_HEADERS = (
    (b"cache-control", b"no-cache, no-transform"),
    (b"connection", b"keep-alive"),
    (b"content-type", b"text/event-stream"),
    (b"x-accel-buffering", b"no"),
)
"""What the SDK transport (through sse-starlette) sends with an SSE answer, less the session id."""


def requested_version(body: bytes) -> str | None:
    """The protocol version an `initialize` body asks for, if its params are valid (as the SDK checks)."""
    try:
        params = json.loads(body).get("params")
        return InitializeRequestParams.model_validate(params or {}, by_name=False).protocol_version
    except (ValueError, AttributeError, ValidationError):
        return None


class InitializeAnswers:
    """The server's own `initialize` results, by requested protocol version; learned, never made up."""

    def __init__(self) -> None:
        self._results: dict[str, dict[str, Any]] = {}

    def lookup(self, body: bytes) -> dict[str, Any] | None:
        """The result to answer this `initialize` with, or None: open the normal way and learn."""
        version = requested_version(body)
        return self._results.get(version) if version is not None else None

    def learn(self, body: bytes, response: dict[str, Any]) -> None:
        """Keep the result of a successful `initialize` the server answered itself."""
        version = requested_version(body)
        result = response.get("result")
        if version is not None and isinstance(result, dict):
            self._results[version] = result


def answer_body(request_id: Any, result: dict[str, Any]) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "result": result}, separators=(",", ":")).encode()


async def send_initialize_answer(
    send: Send, session_id: str, request_id: Any, result: dict[str, Any], *, json_response: bool
) -> None:
    """Answer `initialize` the way the SDK transport would: one SSE event, or one JSON body."""
    body = answer_body(request_id, result)
    session = (b"mcp-session-id", session_id.encode())
    if json_response:
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            session,
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})
        return
    await send({"type": "http.response.start", "status": 200, "headers": [*SSE_HEADERS, session]})
    event = b"event: message\r\ndata: " + body + b"\r\n\r\n"
    await send({"type": "http.response.body", "body": event, "more_body": False})


async def send_accepted(send: Send, session_id: str) -> None:
    """202 for a notification, as the SDK transport answers one."""
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", b"0"),
        (b"mcp-session-id", session_id.encode()),
    ]
    await send({"type": "http.response.start", "status": 202, "headers": headers})
    await send({"type": "http.response.body", "body": b"", "more_body": False})
