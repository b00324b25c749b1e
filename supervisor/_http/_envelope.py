"""Pure decisions about a request before any I/O: what the body is, and what its headers allow.

Sans-IO in the manner of h11: these functions look at bytes and headers and return a value;
the HTTP layer does the sending. The body is parsed here once; everything after reads the result.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

import attrs
from mcp_types.version import (
    HANDSHAKE_PROTOCOL_VERSIONS,
    MODERN_PROTOCOL_VERSIONS,
    SUPPORTED_PROTOCOL_VERSIONS,
)

import supervisor._http._refusals as refusals
from actors import Refusal

MAX_SESSION_ID_LENGTH = 256
"""Longest Mcp-Session-Id we look at; ours are 32 characters."""
MAX_JSON_DEPTH = 128
"""Deepest nesting of arrays and objects a body may have. Checked before any parser recurses:
the stdlib's parser would raise RecursionError near 1,000 levels and the SDK's (pydantic's)
refuses past 200, so every parser behind this one gets a body it can parse."""

_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_NOT_A_BRACKET = bytes(byte for byte in range(256) if byte not in b"[]{}")
_OPENING = frozenset(b"[{")

RequestId = str | int


class MessageKind(enum.Enum):
    REQUEST = "request"
    NOTIFICATION = "notification"
    RESPONSE = "response"


@attrs.frozen
class Envelope:
    """The routing facts of one JSON-RPC message, and the message as parsed (the only parse)."""

    kind: MessageKind
    request_id: RequestId | None = None
    method: str | None = None
    message: Mapping[str, Any] | None = attrs.field(default=None, eq=False, repr=False)
    """The whole message: direct answers validate it into the SDK's type, the record reads its params."""

    @property
    def is_initialize(self) -> bool:
        return self.kind is MessageKind.REQUEST and self.method == "initialize"


Rejection = Refusal
"""A precise answer to bad input: HTTP status plus the JSON-RPC error it carries."""


def _valid_id(value: object) -> bool:
    return isinstance(value, str | int) and not isinstance(value, bool)


def too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the body nests arrays and objects deeper than `limit`, without parsing it.

    Free for almost every body (fewer brackets than the limit); otherwise strings are cut out and
    only the brackets left are walked, in C but for the walk.
    """
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    depth = 0
    for byte in _JSON_STRING.sub(b"", body).translate(None, _NOT_A_BRACKET):
        if byte in _OPENING:
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def classify_body(body: bytes) -> Envelope | Rejection:
    """Say what a POST body is, or why it is not an acceptable JSON-RPC message."""
    if too_deep(body):
        return refusals.parse_error(f"the body nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return refusals.parse_error("the body is not valid JSON")
    if isinstance(data, list):
        return refusals.invalid_request("JSON-RPC batches are not supported")
    if not isinstance(data, dict) or data.get("jsonrpc") != "2.0":
        return refusals.invalid_request("not a JSON-RPC 2.0 message")
    method = data.get("method")
    has_id = "id" in data
    request_id = data.get("id")
    if method is not None:
        if not isinstance(method, str):
            return refusals.invalid_request("method must be a string")
        if not has_id:
            return Envelope(MessageKind.NOTIFICATION, method=method, message=data)
        if not _valid_id(request_id):
            return refusals.invalid_request("id must be a string or an integer")
        return Envelope(MessageKind.REQUEST, request_id=request_id, method=method, message=data)
    if ("result" in data) != ("error" in data) and has_id:
        kept_id = request_id if _valid_id(request_id) else None
        return Envelope(MessageKind.RESPONSE, request_id=kept_id, message=data)
    return refusals.invalid_request("neither a request, a notification nor a response")


def valid_session_id(value: str) -> bool:
    """Visible ASCII only and not absurdly long: checked before any lookup or log line."""
    return (
        0 < len(value) <= MAX_SESSION_ID_LENGTH
        and value.isascii()
        and value.isprintable()
        and " " not in value
    )


def is_handshake_era(protocol_version: str | None) -> bool:
    """Requests without the header, or with a 2024-11-05 .. 2025-11-25 version, go to session actors."""
    return protocol_version is None or protocol_version in HANDSHAKE_PROTOCOL_VERSIONS


def is_known_version(protocol_version: str) -> bool:
    """A protocol version this SDK serves at all (either era)."""
    return protocol_version in SUPPORTED_PROTOCOL_VERSIONS


def unsupported_version(protocol_version: str) -> tuple[str, dict[str, object]]:
    """The message and data of the -32022 answer to an unknown `MCP-Protocol-Version` header.

    `data` is the SDK ladder's (the per-request versions, as `server/discover` lists them: the
    conformance suite checks they agree); the message also names the handshake-era versions.
    """
    modern = list(MODERN_PROTOCOL_VERSIONS)
    message = (
        f"Unsupported protocol version {protocol_version[:64]!r}; supported: {', '.join(modern)}, "
        f"and with an initialize handshake {', '.join(HANDSHAKE_PROTOCOL_VERSIONS)}"
    )
    return message, {"supported": modern, "requested": protocol_version[:64]}


def passes_only_by_prefix(value: str | None, allowed: Iterable[str]) -> bool:
    """Whether a Host or Origin gets past an `X:*` pattern only because the SDK compares by prefix.

    The SDK's check takes `127.0.0.1:*` to allow any value starting with `127.0.0.1:`, so
    `127.0.0.1:8000.evil.example` passes it. A wildcard stands for a port: digits only.
    """
    if value is None:
        return False
    patterns = list(allowed)
    if value in patterns:
        return False
    for pattern in patterns:
        if pattern.endswith(":*") and value.startswith(pattern[:-1]) and value[len(pattern) - 1 :].isdigit():
            return False
    return any(pattern.endswith(":*") and value.startswith(pattern[:-1]) for pattern in patterns)


def header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    """First value of a header (name in lower case), decoded as latin-1 like Starlette does."""
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


def media_types(value: str | None) -> set[str]:
    """The media types listed in an Accept or Content-Type header, lower case, parameters dropped."""
    if not value:
        return set()
    return {part.split(";")[0].strip().lower() for part in value.split(",") if part.strip()}


def accepts(accept: str | None, *, json_response: bool, method: str) -> bool:
    """Whether the Accept header allows what the transport will answer with."""
    types = media_types(accept)
    wildcard = "*/*" in types
    has_json = wildcard or bool(types & {"application/json", "application/*"})
    has_sse = wildcard or bool(types & {"text/event-stream", "text/*"})
    if method == "GET":
        return has_sse
    return has_json if json_response else has_json and has_sse
