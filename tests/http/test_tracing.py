"""OpenTelemetry (issue 27.2): one trace per request, from our HTTP span through the supervisor's
work (open, wake, hibernation, close) into the SDK's span and the tool, under the caller's trace
(`traceparent` header, or `_meta` as MCP clients send it); never a token. Real HTTP over loopback,
spans in an in-memory exporter."""

from __future__ import annotations

import os

import attrs
import httpx
import pytest
from mcp.server.mcpserver import MCPServer
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from supervisor import SessionSupervisor, StaticTokenVerifier, StoreSettings, SupervisorConfig
from supervisor.testing import serve_for_test
from tests.support.cluster import Redis, eventually, free_port, have_cluster_tools
from tests.support.helpers import initialize_body, mcp_headers, messages_of, rpc
from tests.support.servers import build_server
from tests.support.tracing import Spans

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE_ID}-{CALLER_SPAN}-01"
TOKEN = "secret-token-never-on-a-span"


def traced_server() -> MCPServer:
    """The test server with a tool that makes a span of its own."""
    server = build_server()

    @server.tool()
    async def traced() -> str:
        with trace.get_tracer("a tool").start_as_current_span("inside the tool"):
            return "traced"

    return server


async def asleep(supervisor: SessionSupervisor, session_id: str) -> None:
    """Until the session hibernates (at once after each request here, in trio's own time)."""

    async def hibernating() -> bool:
        info = supervisor.get(session_id)
        return info is not None and not info.awake

    await eventually(hibernating)


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


async def call(
    http: httpx.AsyncClient, url: str, body: bytes, session_id: str | None, **headers: str
) -> httpx.Response:
    response = await http.post(url, content=body, headers=mcp_headers(session_id, **headers))
    assert response.status_code < 300, response.text
    return response


async def open_traced(http: httpx.AsyncClient, url: str, **headers: str) -> str:
    opened = await call(http, url, initialize_body(), None, **headers)
    session_id = opened.headers["mcp-session-id"]
    await call(http, url, rpc("notifications/initialized", None), session_id, **headers)
    return session_id


async def test_a_call_is_one_trace_from_the_http_span_into_the_tool(spans: Spans) -> None:
    config = SupervisorConfig(
        tracer_provider=spans.provider, token_verifier=StaticTokenVerifier({TOKEN: "alice"})
    )
    auth = {"authorization": f"Bearer {TOKEN}"}
    async with serve_for_test(traced_server(), config) as served, httpx.AsyncClient(timeout=30) as http:
        session_id = await open_traced(http, served.url, **auth)
        answer = await call(
            http,
            served.url,
            rpc("tools/call", 7, {"name": "traced"}),
            session_id,
            traceparent=TRACEPARENT,
            **auth,
        )
        assert messages_of(answer)[-1]["result"]["content"][0]["text"] == "traced"
    http_span = spans.one("POST /mcp", **{"mcp.method.name": "tools/call"})
    assert http_span.kind is SpanKind.SERVER
    assert http_span.context.trace_id == int(TRACE_ID, 16)
    assert parent_of(http_span) == int(CALLER_SPAN, 16)  # the caller's span, from the header
    assert http_span.attributes is not None
    assert http_span.attributes["mcp.session.id"] == session_id
    assert http_span.attributes["http.response.status_code"] == 200
    sdk_span = spans.one("tools/call traced")
    assert sdk_span.context.trace_id == int(TRACE_ID, 16)
    assert parent_of(sdk_span) == http_span.context.span_id
    tool_span = spans.one("inside the tool")
    assert parent_of(tool_span) == sdk_span.context.span_id
    # The open is a child of the initialize's span; no token anywhere.
    initialize = spans.one("POST /mcp", **{"mcp.method.name": "initialize"})
    opened = spans.one("mcp.session.open")
    assert parent_of(opened) == initialize.context.span_id
    assert opened.attributes is not None and opened.attributes["mcp.session.id"] == session_id
    for span in spans.finished():
        assert TOKEN not in repr(dict(span.attributes or {})), span.name


async def test_the_trace_in_meta_is_the_parent_when_the_headers_name_none(spans: Spans) -> None:
    config = SupervisorConfig(tracer_provider=spans.provider)
    async with serve_for_test(traced_server(), config) as served, httpx.AsyncClient(timeout=30) as http:
        session_id = await open_traced(http, served.url)
        body = rpc("tools/call", 8, {"name": "traced", "_meta": {"traceparent": TRACEPARENT}})
        await call(http, served.url, body, session_id)
        # A malformed traceparent starts a trace of its own, and is no error.
        bad = rpc("tools/call", 9, {"name": "echo", "arguments": {"text": "x"}})
        await call(http, served.url, bad, session_id, traceparent="00-not-a-trace-01")
    calls = [
        s for s in spans.named("POST /mcp") if (s.attributes or {}).get("mcp.method.name") == "tools/call"
    ]
    assert len(calls) == 2
    from_meta, fresh = sorted(calls, key=lambda s: s.context.trace_id != int(TRACE_ID, 16))
    assert from_meta.context.trace_id == int(TRACE_ID, 16) and parent_of(from_meta) == int(CALLER_SPAN, 16)
    assert fresh.context.trace_id != int(TRACE_ID, 16) and fresh.parent is None
    # The SDK takes the same `_meta` as its parent: a sibling of ours, in the same trace.
    sdk_span = spans.one("tools/call traced")
    assert sdk_span.context.trace_id == int(TRACE_ID, 16)


async def test_wake_hibernation_and_close_are_spans_of_the_requests_that_caused_them(spans: Spans) -> None:
    config = SupervisorConfig(tracer_provider=spans.provider, hibernate_after=1e-6)
    async with serve_for_test(traced_server(), config) as served, httpx.AsyncClient(timeout=30) as http:
        session_id = await open_traced(http, served.url)
        await asleep(served.supervisor, session_id)
        await call(
            http, served.url, rpc("tools/call", 3, {"name": "traced"}), session_id, traceparent=TRACEPARENT
        )
        await asleep(served.supervisor, session_id)
        deleted = await http.delete(served.url, headers=mcp_headers(session_id))
        assert deleted.status_code == 200
    the_call = spans.one("POST /mcp", **{"mcp.method.name": "tools/call"})
    wakes = [s for s in spans.named("mcp.session.wake") if s.context.trace_id == int(TRACE_ID, 16)]
    assert len(wakes) == 1 and parent_of(wakes[0]) == the_call.context.span_id
    assert wakes[0].attributes is not None and wakes[0].attributes["mcp.session.id"] == session_id
    hibernations = spans.named("mcp.session.hibernate")
    assert hibernations and all(span.parent is None for span in hibernations)  # traces of their own
    delete = spans.one("DELETE /mcp")
    close = spans.one("mcp.session.close", **{"mcp.session.close_reason": "client_delete"})
    assert parent_of(close) == delete.context.span_id


@pytest.mark.skipif(not have_cluster_tools() and not os.environ.get("CI"), reason="needs redis-server")
async def test_a_move_between_nodes_is_one_trace_through_the_store_and_the_holder(
    spans: Spans, redis: Redis
) -> None:
    """Two nodes on one Redis: a call that reaches B for a session A holds moves it (no advertised
    URLs, so no forwarding). B's HTTP span is the parent of its wake from the store and its Redis
    calls; A's release of the session joins the same trace through the message that asked for it."""
    store = StoreSettings(redis_url=redis.url, lease_ttl=30.0)
    a_config = SupervisorConfig(tracer_provider=spans.provider, store=store, node_id="a")
    b_config = attrs.evolve(a_config, node_id="b")
    async with (
        serve_for_test(traced_server(), a_config) as a,
        serve_for_test(traced_server(), b_config) as b,
        httpx.AsyncClient(timeout=30) as http,
    ):
        session_id = await open_traced(http, a.url)
        moved = await call(
            http, b.url, rpc("tools/call", 4, {"name": "traced"}), session_id, traceparent=TRACEPARENT
        )
        assert messages_of(moved)[-1]["result"]["content"][0]["text"] == "traced"
    on_b = spans.one("POST /mcp", **{"mcp.method.name": "tools/call"})
    assert on_b.context.trace_id == int(TRACE_ID, 16)
    wake = spans.one("mcp.session.wake_from_store", **{"mcp.session.outcome": "woken"})
    assert parent_of(wake) == on_b.context.span_id
    redis_calls = [
        s for s in spans.finished() if s.name.startswith("redis ") and s.context.trace_id == int(TRACE_ID, 16)
    ]
    assert {"redis claim", "redis member", "redis publish"} <= {s.name for s in redis_calls}
    assert all(s.kind is SpanKind.CLIENT for s in redis_calls)
    release = spans.one("mcp.session.release")
    assert release.context.trace_id == int(TRACE_ID, 16)  # on node A, asked by B's request
    assert spans.one("mcp.session.close", **{"mcp.session.close_reason": "moved"}).context.trace_id == int(
        TRACE_ID, 16
    )
    assert spans.one("tools/call traced").context.trace_id == int(TRACE_ID, 16)


@pytest.mark.skipif(not have_cluster_tools() and not os.environ.get("CI"), reason="needs redis-server")
async def test_a_forwarded_request_is_traced_on_the_holder_under_the_forwarding_node(
    spans: Spans, redis: Redis
) -> None:
    """A holds the session and advertises its URL: B forwards the call to it, and A's span for the
    forwarded request is a child of B's (the trace rides the forwarded request's headers)."""
    port = free_port()
    a_store = StoreSettings(redis_url=redis.url, lease_ttl=30.0, advertise_url=f"http://127.0.0.1:{port}")
    a_config = SupervisorConfig(tracer_provider=spans.provider, store=a_store, node_id="a")
    b_config = SupervisorConfig(
        tracer_provider=spans.provider, store=StoreSettings(redis_url=redis.url, lease_ttl=30.0), node_id="b"
    )
    async with (
        serve_for_test(traced_server(), a_config, bind=f"127.0.0.1:{port}") as a,
        serve_for_test(traced_server(), b_config) as b,
        httpx.AsyncClient(timeout=30) as http,
    ):
        session_id = await open_traced(http, a.url)
        body = rpc("tools/call", 6, {"name": "traced"})
        forwarded = await call(http, b.url, body, session_id, traceparent=TRACEPARENT)
        assert messages_of(forwarded)[-1]["result"]["content"][0]["text"] == "traced"
        assert a.supervisor.get(session_id) is not None  # served where it was: not moved
    calls = [
        s for s in spans.named("POST /mcp") if (s.attributes or {}).get("mcp.method.name") == "tools/call"
    ]
    assert len(calls) == 2 and all(s.context.trace_id == int(TRACE_ID, 16) for s in calls)
    on_b, on_a = sorted(
        calls, key=lambda s: s.parent is not None and s.parent.span_id != int(CALLER_SPAN, 16)
    )
    assert parent_of(on_b) == int(CALLER_SPAN, 16)
    assert parent_of(on_a) == on_b.context.span_id
    assert parent_of(spans.one("tools/call traced")) == on_a.context.span_id


async def test_a_refused_open_is_an_error_span_that_says_why(spans: Spans) -> None:
    config = SupervisorConfig(tracer_provider=spans.provider, max_sessions=1)
    async with serve_for_test(traced_server(), config) as served, httpx.AsyncClient(timeout=30) as http:
        await open_traced(http, served.url)
        refused = await http.post(served.url, content=initialize_body(), headers=mcp_headers())
        assert refused.status_code == 503
    [span] = [
        s for s in spans.named("POST /mcp") if (s.attributes or {}).get("http.response.status_code") == 503
    ]
    assert span.status.status_code is StatusCode.ERROR
    assert spans.one("mcp.session.open", **{"mcp.session.refused": "at_capacity"}).parent is not None
