"""Every refusal the HTTP layer gives, in one place: status, JSON-RPC code, wording and cause.

A refusal is a `Refusal` value (sent by `actors/_frames.py`); each one is made by a function here,
so its wording is changed here alone. `cause` is the `mcp_refusals_total{cause}` label (empty: the
status's own name). Wordings follow the SDK's manager wherever it answers the same case.

A session that is not there gets one of four answers, each for a different moment:

- the id is unknown, or another principal's (`not_found`): 404 -32600 "Session not found";
- it began to close as the request was handed over (`session_closed`): the same 404, counted
  under cause `session_closed`;
- it closed before its request reached the transport (`unfinished`): 404 -32000 "Session
  terminated before the request was served";
- it closed with the request in flight (`unfinished`): 404 -32000 "Session terminated (reason)
  while the request was in flight".

With a store, a session that lives on elsewhere (moved, evicted, fenced, shut down) is "retry"
instead (503 with Retry-After), never "gone".
"""

from __future__ import annotations

from typing import Any

from mcp_types import UNSUPPORTED_PROTOCOL_VERSION

from actors import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    PARSE_ERROR,
    SESSION_ENDED,
    CloseReason,
    Refusal,
    RequestOutcome,
    tells_retry,
)

NO_RESUMPTION = "Bad Request: this server keeps no event store, so no stream can be resumed (Last-Event-ID)"


def _retry(retry_after: int) -> tuple[tuple[str, str], ...]:
    return (("Retry-After", str(retry_after)),)


# ---------------------------------------------------------------------- the request itself


def method_not_allowed(allowed: str) -> Refusal:
    return Refusal(405, INVALID_REQUEST, "Method Not Allowed", headers=(("Allow", allowed),))


def unknown_path(detail: str = "Not Found") -> Refusal:
    """No route here (a custom route's own 404 keeps its detail)."""
    return Refusal(404, INVALID_REQUEST, detail, cause="unknown_path")


def payload_too_large(limit: int) -> Refusal:
    return Refusal(413, INVALID_REQUEST, f"Payload Too Large: the limit is {limit} bytes")


def body_timeout() -> Refusal:
    return Refusal(408, INVALID_REQUEST, "Request Timeout: the body did not arrive in time")


def malformed_session_header() -> Refusal:
    return Refusal(400, INVALID_REQUEST, "Bad Request: malformed Mcp-Session-Id header")


def unsupported_media_type() -> Refusal:
    return Refusal(415, INVALID_REQUEST, "Unsupported Media Type: Content-Type must be application/json")


def not_acceptable(method: str, json_response: bool) -> Refusal:
    if method == "GET":
        text = "Not Acceptable: Client must accept text/event-stream"
    elif json_response:
        text = "Not Acceptable: Client must accept application/json"
    else:
        text = "Not Acceptable: Client must accept both application/json and text/event-stream"
    return Refusal(406, INVALID_REQUEST, text)


def parse_error(text: str) -> Refusal:
    return Refusal(400, PARSE_ERROR, f"Parse error: {text}")


def invalid_request(text: str, request_id: Any = None) -> Refusal:
    """A body that is JSON but not a JSON-RPC message we serve (a batch, a bad id or method)."""
    return Refusal(400, INVALID_REQUEST, f"Invalid Request: {text}", request_id=request_id)


def initialize_too_large(size: int, limit: int, request_id: Any) -> Refusal:
    text = f"Invalid params: initialize params are {size} bytes; this server takes at most {limit}"
    return Refusal(400, INVALID_PARAMS, text, request_id=request_id, cause="initialize_too_large")


def no_resumption() -> Refusal:
    return Refusal(400, INVALID_REQUEST, NO_RESUMPTION)


# ---------------------------------------------------------------------- the 2026-07-28 era


def post_only() -> Refusal:
    text = "Method Not Allowed: the 2026-07-28 protocol uses POST only"
    return Refusal(405, INVALID_REQUEST, text, headers=(("Allow", "POST"),))


def json_not_accepted() -> Refusal:
    return Refusal(406, INVALID_REQUEST, "Not Acceptable: Accept must include application/json")


def unsupported_version(message: str, data: Any, request_id: Any) -> Refusal:
    return Refusal(400, UNSUPPORTED_PROTOCOL_VERSION, message, request_id=request_id, data=data)


# ---------------------------------------------------------------------- Host and Origin


def host_refused(status: int, text: str) -> Refusal:
    """The SDK's transport security said no (421 Host, 403 Origin, 400 Content-Type): its words."""
    return Refusal(status, INVALID_REQUEST, text)


def invalid_host() -> Refusal:
    return Refusal(421, INVALID_REQUEST, "Invalid Host header")


def invalid_origin() -> Refusal:
    return Refusal(403, INVALID_REQUEST, "Invalid Origin header")


# ---------------------------------------------------------------------- bearer tokens (our verifier)


def unauthorized() -> Refusal:
    text = "Unauthorized: a valid bearer token is required"
    return Refusal(
        401, INVALID_REQUEST, text, headers=(("WWW-Authenticate", 'Bearer error="invalid_token"'),)
    )


def insufficient_scope(scope: str) -> Refusal:
    challenge = f'Bearer error="insufficient_scope", scope="{scope}"'
    text = f"Forbidden: the token lacks scope {scope}"
    return Refusal(403, INVALID_REQUEST, text, headers=(("WWW-Authenticate", challenge),))


# ---------------------------------------------------------------------- sessions


def missing_session(request_id: Any = None) -> Refusal:
    return Refusal(400, INVALID_REQUEST, "Bad Request: Missing session ID", request_id=request_id)


def not_found(request_id: Any = None, *, cause: str = "unknown_session") -> Refusal:
    return Refusal(404, INVALID_REQUEST, "Session not found", request_id=request_id, cause=cause)


def session_closed(request_id: Any) -> Refusal:
    """Routed to its actor just as that began to close: as unknown, counted apart."""
    return not_found(request_id, cause="session_closed")


def unavailable(text: str, request_id: object, retry_after: int, cause: str) -> Refusal:
    """503 with Retry-After: the session or the server is there, just not now."""
    return Refusal(503, INTERNAL_ERROR, text, request_id=request_id, headers=_retry(retry_after), cause=cause)


def not_opened(reason_text: str, reason_name: str, request_id: object, retry_after: int) -> Refusal:
    """A new session (or a wake) refused by the caps, a drain or the store (`OpenRefusal`)."""
    return unavailable(reason_text, request_id, retry_after, reason_name.lower())


def could_not_start(request_id: object, retry_after: int) -> Refusal:
    return unavailable("Session could not be started", request_id, retry_after, "could_not_start")


def session_moving(request_id: object, retry_after: int) -> Refusal:
    """Closing for a reason after which it lives on (moved, evicted, ...): retry, not gone."""
    return unavailable("Session is moving; retry", request_id, retry_after, "session_moving")


def session_busy(request_id: object, retry_after: int) -> Refusal:
    return unavailable("Session is busy", request_id, retry_after, "session_busy")


def too_many_requests(request_id: object, retry_after: int) -> Refusal:
    text = "Too Many Requests: this session has too many requests in flight"
    return Refusal(429, INVALID_REQUEST, text, request_id=request_id, headers=_retry(retry_after))


def shutting_down(request_id: object, retry_after: int) -> Refusal:
    """A stateless request (2026-07-28) while the server stops."""
    return unavailable("Server is shutting down", request_id, retry_after, "shutting_down")


STREAM_CONFLICT = "Conflict: Only one SSE stream is allowed per session"
"""The SDK transport's words for a second standalone GET stream."""


def stream_conflict() -> Refusal:
    """A second standalone GET stream while one is open (one per session, as the SDK allows)."""
    return Refusal(409, INVALID_REQUEST, STREAM_CONFLICT)


def internal_error() -> Refusal:
    """Something in the endpoint itself broke: never a traceback to the client."""
    return Refusal(500, INTERNAL_ERROR, "Internal server error")


# ---------------------------------------------------------------------- answers cut short


def open_timed_out() -> tuple[int, int, str]:
    """The opening initialize was not answered within the open timeout."""
    return 503, INTERNAL_ERROR, "Timed out opening the session"


def stopped_in_flight() -> tuple[int, int, str]:
    """A stateless request still running when the server stopped."""
    return 503, SESSION_ENDED, "Server is shutting down"


def unfinished(
    outcome: RequestOutcome | None,
    close_reason: CloseReason | None,
    *,
    closing: bool,
    has_cluster: bool,
    lost_sse_answer: bool,
) -> tuple[int, int, str, bool]:
    """What completes an answer the transport left unfinished: status, code, message, and
    whether it names the request."""
    if outcome is RequestOutcome.CONFLICT:
        return 409, INVALID_REQUEST, STREAM_CONFLICT, False
    if outcome is RequestOutcome.FAILED:
        return 500, INTERNAL_ERROR, "Internal error while serving the request", True
    if outcome is RequestOutcome.REJECTED and has_cluster and tells_retry(close_reason):
        return 503, INTERNAL_ERROR, "Session moved before the request was served; retry", True
    if outcome is RequestOutcome.REJECTED:
        return 404, SESSION_ENDED, "Session terminated before the request was served", True
    if outcome is RequestOutcome.ABORTED or closing:
        reason = close_reason.value if close_reason is not None else "closed"
        return 404, SESSION_ENDED, f"Session terminated ({reason}) while the request was in flight", True
    if lost_sse_answer:
        # The SDK gave up on the request (its loop died under it, before our close began), and
        # without an event store the client cannot resume: an error with its id now.
        return 500, INTERNAL_ERROR, "The request's stream ended without its answer", True
    # Completed (or a stream ended by a drain): at most the end of the body is missing.
    return 404, SESSION_ENDED, "Session terminated", False
