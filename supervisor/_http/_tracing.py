"""One OpenTelemetry span per HTTP request, the parent of everything done for it.

The span's parent is the caller's trace: the W3C `traceparent` header if the request has one (an
instrumented HTTP client, a proxy), else the `traceparent` an MCP client put in the message's
`_meta` (SEP-414; the SDK's clients do). The body is read before the span begins, so that `_meta`
can be seen; the span's start is still the request's arrival. Once begun, the span is the current
one in the handler's context: the request task (started in that context), the session's wake,
the store's calls and the SDK's own span for the message (the SDK's streams carry the sender's
context) all become its children. With the client's context in `_meta` the SDK's span takes that
as its parent instead: a sibling of ours, in the same trace.

Attributes name the request (method, route, status, the MCP method, the session id); never a
header's value, so never a token.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import attrs
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import extract
from opentelemetry.trace import Span, SpanKind, StatusCode, Tracer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from actors import SESSION_ID
from supervisor._http._access import AccessNote, note_of

_PROPAGATED = frozenset({b"traceparent", b"tracestate"})
"""The only headers read for the parent: W3C trace context (never, say, Authorization)."""

TRACE_KEY = "supervisor.trace"
"""Where in the ASGI scope the request's `RequestTrace` is."""


@attrs.define(eq=False)
class RequestTrace:
    """The span of one request: begun once its parent is known, ended when the answer is done."""

    _tracer: Tracer
    _scope: Scope
    _arrived_ns: int
    span: Span | None = attrs.field(init=False, default=None)
    _token: object = attrs.field(init=False, default=None)

    def begin(self, message: Mapping[str, Any] | None) -> None:
        """Begin the span (once) under the caller's trace, and make it current in this task."""
        if self.span is not None:
            return
        scope = self._scope
        span = self.span = self._tracer.start_span(
            f"{scope['method']} {scope.get('path', '')}",
            context=_parent(scope, message),
            kind=SpanKind.SERVER,
            start_time=self._arrived_ns,
            attributes=_request_attributes(scope),
        )
        self._token = otel_context.attach(trace.set_span_in_context(span))

    def end(self, note: AccessNote | None, status: int | None, error: BaseException | None) -> None:
        self.begin(None)
        assert self.span is not None
        span = self.span
        if status is not None:
            span.set_attribute("http.response.status_code", int(status))
        if note is not None:
            if note.mcp_method is not None:
                span.set_attribute("mcp.method.name", note.mcp_method)
            if note.session_id is not None:
                span.set_attribute(SESSION_ID, note.session_id)
        if isinstance(error, Exception) or (error is None and status is not None and status >= 500):
            # A cancellation (the client left, a shutdown) is not the server's error.
            span.set_status(StatusCode.ERROR)
            span.set_attribute("error.type", type(error).__qualname__ if error is not None else str(status))
        span.end()
        if self._token is not None:
            otel_context.detach(self._token)  # type: ignore[arg-type]


def begin_trace(scope: Scope, message: Mapping[str, Any] | None) -> None:
    """The body is parsed: begin the request's span, its parent taken from `_meta` if the headers
    name none."""
    traced = scope.get(TRACE_KEY)
    if isinstance(traced, RequestTrace):
        traced.begin(message)


class HttpTracing:
    """Traces every HTTP request of `app` (inside `AccessLog`, whose note says what it was)."""

    def __init__(self, app: ASGIApp, tracer: Tracer, *, bodies_at: frozenset[str]) -> None:
        self._app = app
        self._tracer = tracer
        self._bodies_at = bodies_at
        """Paths whose POST body is read before the span begins (the MCP path)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        traced = scope[TRACE_KEY] = RequestTrace(self._tracer, scope, time.time_ns())
        if scope["method"] != "POST" or scope.get("path") not in self._bodies_at:
            traced.begin(None)
        status: int | None = None

        async def watched(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                traced.begin(None)  # answered before its body was parsed (a refusal)
            await send(message)

        error: BaseException | None = None
        try:
            await self._app(scope, receive, watched)
        except BaseException as exc:
            error = exc
            raise
        finally:
            traced.end(note_of(scope), status, error)


def _parent(scope: Scope, message: Mapping[str, Any] | None) -> otel_context.Context | None:
    """The caller's trace: the `traceparent` header, else the message's `_meta`; None: a new trace."""
    headers = {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in scope["headers"]
        if name in _PROPAGATED
    }
    if "traceparent" in headers:
        return _valid(extract(headers))
    params = message.get("params") if message is not None else None
    meta = params.get("_meta") if isinstance(params, Mapping) else None
    if isinstance(meta, Mapping) and isinstance(meta.get("traceparent"), str):
        return _valid(extract({key: value for key, value in meta.items() if isinstance(value, str)}))
    return None


def _valid(context: otel_context.Context) -> otel_context.Context | None:
    """A context with a valid remote span, or None (a malformed traceparent starts a new trace)."""
    return context if trace.get_current_span(context).get_span_context().is_valid else None


def _request_attributes(scope: Scope) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "http.request.method": scope["method"],
        "url.path": scope.get("path", ""),
        "url.scheme": scope.get("scheme", "http"),
        "network.protocol.version": scope.get("http_version", "1.1"),
    }
    client = scope.get("client")
    if client:
        attributes["client.address"] = client[0]
    return attributes
