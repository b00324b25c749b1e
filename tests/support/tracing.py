"""Spans kept in memory for tests: one provider for the process (OpenTelemetry's global one, so
the SDK's own spans land there too), its exporter cleared by each test that reads it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import attrs
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

_KEPT: dict[str, tuple[TracerProvider, InMemorySpanExporter]] = {}


@attrs.frozen
class Spans:
    provider: TracerProvider
    exporter: InMemorySpanExporter

    def finished(self) -> Sequence[ReadableSpan]:
        return self.exporter.get_finished_spans()

    def named(self, name: str) -> list[ReadableSpan]:
        return [span for span in self.finished() if span.name == name]

    def one(self, name: str, **attributes: object) -> ReadableSpan:
        found = [
            span
            for span in self.named(name)
            if all((span.attributes or {}).get(key) == value for key, value in attributes.items())
        ]
        assert len(found) == 1, (
            name,
            attributes,
            [(s.name, dict(s.attributes or {})) for s in self.finished()],
        )
        return found[0]


def _kept() -> tuple[TracerProvider, InMemorySpanExporter]:
    if "spans" not in _KEPT:
        provider = trace.get_tracer_provider()
        if not isinstance(provider, TracerProvider):
            provider = TracerProvider()
            trace.set_tracer_provider(provider)
        exporter = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        _KEPT["spans"] = (provider, exporter)
    return _KEPT["spans"]


def kept_spans() -> Iterator[Spans]:
    """The `spans` fixture (tests/conftest.py): cleared before and after the test."""
    provider, exporter = _kept()
    exporter.clear()
    yield Spans(provider, exporter)
    exporter.clear()
