"""OpenTelemetry spans for a session's own work (wake, hibernation, close), when tracing is on.

Spans go through the OpenTelemetry API, which the SDK already depends on: whoever embeds the
supervisor (or `--otel`) gives it a `TracerProvider`. With tracing off the tracer is None and
nothing here runs on the request path.

An actor runs in the supervisor's own context, not in the context of any request, so a span the
actor makes for a request's sake (a wake) names that request's context as its parent explicitly;
spans of the session's own (hibernation, an idle close) start traces of their own.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.trace import Span, SpanKind, Tracer, TracerProvider

TRACER_NAME = "trio-mcp-supervisor"
SESSION_ID = "mcp.session.id"
"""The attribute that names the session (never a metric label: spans only)."""


def tracer_of(provider: TracerProvider | None) -> Tracer | None:
    """Our tracer from `provider`, or None when tracing is off."""
    return None if provider is None else provider.get_tracer(TRACER_NAME)


def context_of(context: contextvars.Context) -> otel_context.Context:
    """The OpenTelemetry context (the current span among it) that a task's `context` carries."""
    return context.run(otel_context.get_current)


@contextmanager
def session_span(
    tracer: Tracer | None,
    name: str,
    session_id: str | None,
    *,
    parent: otel_context.Context | None = None,
    own_trace: bool = False,
    attributes: dict[str, Any] | None = None,
) -> Iterator[Span | None]:
    """A span for the session's work, current inside the block; nothing when `tracer` is None.

    `parent`: the context to make it a child of (a request's); `own_trace`: a trace of its own.
    """
    if tracer is None:
        yield None
        return
    context = otel_context.Context() if own_trace else parent
    fields = dict(attributes or {})
    if session_id is not None:
        fields[SESSION_ID] = session_id
    with tracer.start_as_current_span(
        name, context=context, kind=SpanKind.INTERNAL, attributes=fields
    ) as span:
        yield span


def started_span(tracer: Tracer | None, name: str, session_id: str) -> Span | None:
    """A span begun now under the current context and ended later by its owner (a close that
    spans several tasks), or None when tracing is off."""
    if tracer is None:
        return None
    return tracer.start_span(name, attributes={SESSION_ID: session_id})
