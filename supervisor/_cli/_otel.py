"""`--otel`: traces through OpenTelemetry's SDK, set up from the standard `OTEL_*` variables.

The exporter is `OTEL_TRACES_EXPORTER`: `otlp` (the default; OTLP over HTTP, where
`OTEL_EXPORTER_OTLP_ENDPOINT`, `..._TRACES_ENDPOINT`, `..._HEADERS` and the rest apply, read by the
exporter itself), `console` (one JSON span per line on standard output) or `none`. The service
name is `OTEL_SERVICE_NAME` (default `mcp-supervisor`); the sampler `OTEL_TRACES_SAMPLER`;
`OTEL_SDK_DISABLED=true` turns it all off. The provider is also made the global one, so that the
SDK's own spans (one per message, made through the global provider) land in the same traces.
"""

from __future__ import annotations

import atexit
import os
import sys
import urllib.parse
from typing import Any

from opentelemetry import trace

from supervisor._cli._startup import fail

EXTRA = "pip install 'trio-mcp-supervisor[otel]' (from a clone: pip install -e '.[otel]')"
EXPORTERS = ("otlp", "console", "none")


def otel_provider() -> Any:
    """The tracer provider `--otel` asks for, made global and flushed at exit; one line and exit 2
    if OpenTelemetry's SDK (the `otel` extra) is missing or a variable names what is not there."""
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        fail(f"--otel needs OpenTelemetry's SDK: {EXTRA}")
    chosen = os.environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower()
    if chosen not in EXPORTERS:
        fail(f"OTEL_TRACES_EXPORTER={chosen!r} is not one --otel knows: {', '.join(EXPORTERS)}")
    named = "OTEL_SERVICE_NAME" in os.environ or "service.name" in os.environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    )
    provider = TracerProvider(resource=Resource.create({} if named else {"service.name": "mcp-supervisor"}))
    exporter = _exporter(chosen)
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    atexit.register(provider.shutdown)
    return provider


def _exporter(chosen: str) -> Any:
    if chosen == "none":
        return None
    if chosen == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter(out=sys.stdout, formatter=lambda span: span.to_json(indent=None) + "\n")
    protocol = os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    )
    if protocol != "http/protobuf":
        fail(f"--otel sends OTLP over HTTP (http/protobuf), not {protocol!r}: use the collector's HTTP port")
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        fail(f"--otel with OTLP needs OpenTelemetry's OTLP exporter: {EXTRA}")
    return OTLPSpanExporter()


def exporting_to() -> str:
    """Where `--otel` sends spans, for the start-up log (no credentials: scheme, host, path)."""
    chosen = os.environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower()
    if chosen != "otlp":
        return chosen
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318"
    )
    parts = urllib.parse.urlsplit(endpoint)
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path} (OTLP)"
