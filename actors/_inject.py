"""POST a message to a session's own transport from inside its actor, as a client would.

Used for what the actor must tell its server loop itself: `notifications/cancelled` for a request
whose client left, and the handshake replayed into a fresh loop at wake where the loop's input
cannot be reached past the transport (`actors/_sdk.py`; otherwise the replay goes straight in). The answer is
discarded; the scope looks like the request it stands in for, less what the transport re-checks.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import trio
from mcp.server.streamable_http import StreamableHTTPServerTransport
from starlette.types import Message

_REPLACED = (b"content-length", b"content-type", b"accept", b"mcp-session-id")


def injected_scope(body: bytes, session_id: str, like: Mapping[str, Any]) -> dict[str, Any]:
    """An ASGI scope for POSTing `body` to the session, carrying over what `like` says of the client."""
    headers = [(name, value) for name, value in like.get("headers", ()) if name not in _REPLACED]
    headers += [
        (b"content-type", b"application/json"),
        (b"accept", b"application/json, text/event-stream"),
        (b"mcp-session-id", session_id.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": like.get("path", "/mcp"),
        "raw_path": b"",
        "query_string": b"",
        "root_path": "",
        "server": None,
        "client": None,
        **{key: value for key, value in like.items() if key not in ("headers", "method", "path")},
        "headers": headers,
    }


def cancellation(request_id: object) -> bytes:
    """The notification that tells a server loop to cancel a request whose client has left."""
    params = {"requestId": request_id, "reason": "client disconnected"}
    return json.dumps({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": params}).encode()


async def post_to_transport(
    transport: StreamableHTTPServerTransport, body: bytes, session_id: str, like: Mapping[str, Any]
) -> None:
    """Deliver `body` through the transport's front door and drop the answer."""
    delivered = False

    async def receive() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    async def discard(_: Message) -> None:
        return None

    await transport.handle_request(injected_scope(body, session_id, like), receive, discard)
