"""Quick open: with hibernation on, a new session is born dormant and `initialize` answered at once.

A session's `initialize` answer depends only on the server and on the protocol version the
client asks for (the SDK negotiates the version and fills in the server's static options). So
the first session that asks for a version opens the normal way, and the supervisor keeps the
server's own answer; later sessions asking for that version get the same answer (with their
request id) from here, and their actor starts dormant, exactly as if it had hibernated right
after the handshake: no incarnation until the first real request wakes it from its record.
`notifications/initialized` is taken without waking.

Decisions are pure functions over the parsed message (`lookup`, `learn`); the only I/O is
`send_initialize_answer`, at the edge.
"""

from __future__ import annotations

from typing import Any

from mcp_types import InitializeRequestParams
from pydantic import ValidationError
from starlette.types import Send

from actors import SSE_HEADERS, chunk, json_headers, result_body, send_json, session_header, sse_event, start
from supervisor._http._envelope import Envelope


def requested_version(envelope: Envelope | None) -> str | None:
    """The protocol version an `initialize` asks for, if its params are valid (as the SDK checks)."""
    params = (envelope.message or {}).get("params") if envelope is not None else None
    try:
        return InitializeRequestParams.model_validate(params or {}, by_name=False).protocol_version
    except (ValueError, AttributeError, ValidationError):
        return None


class InitializeAnswers:
    """The server's own `initialize` results, by requested protocol version; learned, never made up."""

    def __init__(self) -> None:
        self._results: dict[str, dict[str, Any]] = {}

    def lookup(self, envelope: Envelope | None) -> dict[str, Any] | None:
        """The result to answer this `initialize` with, or None: open the normal way and learn."""
        version = requested_version(envelope)
        return self._results.get(version) if version is not None else None

    def learn(self, envelope: Envelope | None, response: dict[str, Any]) -> None:
        """Keep the result of a successful `initialize` the server answered itself."""
        version = requested_version(envelope)
        result = response.get("result")
        if version is not None and isinstance(result, dict):
            self._results[version] = result


async def send_initialize_answer(
    send: Send, session_id: str, request_id: Any, result: dict[str, Any], *, json_response: bool
) -> None:
    """Answer `initialize` the way the SDK transport would: one SSE event, or one JSON body."""
    body = result_body(request_id, result)
    if json_response:
        await send_json(send, 200, body, session_header(session_id))
        return
    await send(start(200, [*SSE_HEADERS, session_header(session_id)]))
    await send(chunk(sse_event(body), more=False))


async def send_accepted(send: Send, session_id: str) -> None:
    """202 for a notification, as the SDK transport answers one."""
    await send(start(202, json_headers(0, session_header(session_id))))
    await send(chunk(b"", more=False))
