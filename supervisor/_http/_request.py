"""One HTTP request to the MCP endpoint as a value: its head read once, its body parsed once.

The HTTP layer makes an `McpRequest` as soon as the body is in and carries it through every
check and path; the checks are pure functions of it (and of the config) that return a `Refusal`
or None, in the order the SDK's manager checks. Only the edge sends.
"""

from __future__ import annotations

import json
from typing import Any

import attrs
from starlette.types import Scope

import supervisor._http._refusals as refusals
from actors import Principal, Refusal
from supervisor._http._envelope import (
    Envelope,
    classify_body,
    is_handshake_era,
    media_types,
    valid_session_id,
)
from supervisor._http._principal import principal_of

_WANTED = {
    b"mcp-session-id": "session_id",
    b"mcp-protocol-version": "protocol_version",
    b"accept": "accept",
    b"content-type": "content_type",
    b"last-event-id": "last_event_id",
}


@attrs.frozen(kw_only=True)
class McpRequest:
    """What the layers above the edge need of one request, and nothing they would have to re-read."""

    scope: Scope = attrs.field(eq=False, repr=False)
    method: str
    body: bytes = attrs.field(repr=False)
    session_id: str | None = None
    protocol_version: str | None = None
    accept: str | None = None
    content_type: str | None = None
    last_event_id: str | None = None
    principal: Principal | None = None
    parsed: Envelope | Refusal | None = None
    """What the body is (None without one): classified once, here."""

    @property
    def envelope(self) -> Envelope | None:
        return self.parsed if isinstance(self.parsed, Envelope) else None

    @property
    def request_id(self) -> Any:
        """The JSON-RPC id the body names, if any: refusals name the request when they can."""
        return self.parsed.request_id if self.parsed is not None else None

    @property
    def handshake_era(self) -> bool:
        return is_handshake_era(self.protocol_version)

    @property
    def method_name(self) -> str | None:
        envelope = self.envelope
        return envelope.method if envelope is not None else None


def read_request(scope: Scope, body: bytes) -> McpRequest:
    """The request value, from one pass over the headers and one parse of the body."""
    found: dict[str, str] = {}
    for name, value in scope["headers"]:
        field = _WANTED.get(name)
        if field is not None and field not in found:
            found[field] = value.decode("latin-1")
    return McpRequest(
        scope=scope,
        method=scope["method"],
        body=body,
        principal=principal_of(scope),
        parsed=classify_body(body) if body else None,
        **found,
    )


def session_header_refusal(request: McpRequest) -> Refusal | None:
    if request.session_id is not None and not valid_session_id(request.session_id):
        return refusals.malformed_session_header()
    return None


def content_refusal(request: McpRequest) -> Refusal | None:
    """A POST's content type, then what its body is; None when it is a JSON-RPC message."""
    if "application/json" not in media_types(request.content_type):
        return refusals.unsupported_media_type()
    parsed = request.parsed if request.parsed is not None else classify_body(b"")
    return parsed if isinstance(parsed, Refusal) else None


def initialize_refusal(request: McpRequest, limit: int) -> Refusal | None:
    """An `initialize` whose params are over `limit` bytes as compact JSON (the body bounds them, so
    only a body over the limit is measured)."""
    envelope = request.envelope
    if len(request.body) <= limit or envelope is None or not envelope.is_initialize:
        return None
    params = (envelope.message or {}).get("params")
    size = len(json.dumps(params, separators=(",", ":"), ensure_ascii=False).encode())
    if size <= limit:
        return None
    return refusals.initialize_too_large(size, limit, request.request_id)
