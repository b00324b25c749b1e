"""Every HTTP request is in the access log and the duration histogram, whichever part answered it
(issue 27.3): quick open's initialize, notifications, calls, a GET stream, DELETE, refusals and the
2026-07-28 path. Real HTTP, a real hypercorn."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import httpx
import pytest
import trio
from mcp import Client
from starlette.types import Message

from supervisor import SessionSupervisor, SupervisorConfig, open_supervisor
from supervisor._http import ForwardedHeaders, trusted_peers
from supervisor.testing import serve_for_test, settle
from tests.support.cluster import eventually
from tests.support.helpers import initialize_body, mcp_headers, open_session, rpc
from tests.support.inprocess import scope_for
from tests.support.servers import build_server


async def _counted(supervisor: SessionSupervisor, requests: int) -> bool:
    return sum(histogram.count for histogram in supervisor.stats().durations.values()) >= requests


def access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "supervisor.access"]


def fields(record: logging.LogRecord) -> dict[str, Any]:
    names = ("client", "http_method", "path", "method", "status", "duration_ms", "session_id")
    return {name: getattr(record, name, None) for name in names}


async def test_every_request_is_logged_and_timed_once(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="supervisor.access")
    config = SupervisorConfig(access_log=True)  # quick open is on: sessions after the first are born dormant
    async with serve_for_test(build_server(), config) as served:
        sessions = [await open_session(http, served.url) for _ in range(3)]
        for n, session_id in enumerate(sessions):
            call = rpc("tools/call", n + 2, {"name": "echo", "arguments": {"text": "x"}})
            assert (
                await http.post(served.url, content=call, headers=mcp_headers(session_id))
            ).status_code == 200
        headers = {**mcp_headers(sessions[0]), "Accept": "text/event-stream"}
        async with http.stream("GET", served.url, headers=headers) as stream:
            assert stream.status_code == 200
        unknown = await http.post(served.url, content=rpc("ping"), headers=mcp_headers("0" * 32))
        assert unknown.status_code == 404
        for session_id in sessions:
            assert (await http.delete(served.url, headers=mcp_headers(session_id))).status_code == 200
        await settle(served.supervisor)
        # A line is written once its handler returns, just after the client has the answer.
        await eventually(lambda: _counted(served.supervisor, 14))
        stats = served.supervisor.stats()
    records = [fields(record) for record in access_records(caplog)]
    by_method = Counter(record["method"] for record in records if record["http_method"] == "POST")
    assert by_method == {"initialize": 3, "notifications/initialized": 3, "tools/call": 3, "ping": 1}
    assert Counter(r["http_method"] for r in records) == {"POST": 10, "GET": 1, "DELETE": 3}
    for record in records:
        assert record["path"] == "/mcp" and record["duration_ms"] >= 0
        assert record["client"].startswith("127.0.0.1:")
    opened = [r for r in records if r["method"] == "initialize"]
    assert sorted(r["session_id"] for r in opened) == sorted(sessions)  # from the answer's header
    deleted = [r for r in records if r["http_method"] == "DELETE"]
    assert all(r["status"] == 200 and r["session_id"] in sessions for r in deleted)
    [refused] = [r for r in records if r["status"] == 404]
    assert refused["method"] == "ping" and refused["session_id"] == "0" * 32
    # The histogram counts what the log shows: every initialize, quick open's included.
    assert stats.created == 3
    assert stats.durations["initialize"].count == 3
    assert stats.durations["tools/call"].count == 3
    assert stats.durations["DELETE"].count == 3 and stats.durations["GET"].count == 1


async def test_refused_bodies_health_and_the_other_era_are_logged_too(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="supervisor.access")
    config = SupervisorConfig(access_log=True, max_request_body_size=1000)
    async with serve_for_test(build_server(), config) as served:
        big = await http.post(served.url, content=b"x" * 2000, headers=mcp_headers())
        assert big.status_code == 413
        assert (await http.get(served.base_url + "/healthz")).status_code == 200
        async with Client(served.url, mode="2026-07-28") as client:
            await client.list_tools()
        await eventually(lambda: _counted(served.supervisor, 2))
        stats = served.supervisor.stats()
    records = access_records(caplog)
    [too_big] = [r for r in records if getattr(r, "status", None) == 413]
    assert too_big.levelno == logging.INFO and getattr(too_big, "method", "?") is None
    [health] = [r for r in records if getattr(r, "path", None) == "/healthz"]
    assert health.levelno == logging.DEBUG  # a balancer polls it: never at INFO
    listed = [r for r in records if getattr(r, "method", None) == "tools/list"]
    assert listed and all(r.levelno == logging.INFO for r in listed)
    assert stats.durations["unparsed"].count == 1 and stats.durations["tools/list"].count >= 1
    assert "healthz" not in stats.durations


async def test_behind_a_trusted_proxy_the_line_names_the_forwarded_client(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # As `serve --forwarded-allow-ips` wraps the app: the client is the one X-Forwarded-For names.
    caplog.set_level(logging.INFO, logger="supervisor.access")
    async with open_supervisor(build_server(), SupervisorConfig(access_log=True)) as supervisor:
        app = ForwardedHeaders(supervisor.asgi_app, trusted_peers("127.0.0.1"))
        scope = scope_for("POST", {**mcp_headers(), "X-Forwarded-For": "203.0.113.7, 10.0.0.2"})
        answered = trio.Event()
        bodies = [{"type": "http.request", "body": initialize_body(), "more_body": False}]

        async def receive() -> Message:
            if bodies:
                return bodies.pop()
            await answered.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                answered.set()

        await app(scope, receive, send)
    [line] = access_records(caplog)
    assert fields(line)["client"] == "203.0.113.7:0" and fields(line)["status"] == 200
    assert fields(line)["method"] == "initialize"
