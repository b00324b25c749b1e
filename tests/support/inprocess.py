"""Drive the ASGI app in process (for tests under MockClock, where real sockets cannot follow)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

from supervisor import SessionSupervisor, StoreSettings, SupervisorConfig, open_supervisor
from tests.support.helpers import initialize_body, mcp_headers, rpc
from tests.support.servers import build_server
from tests.support.sse import sse_messages


@attrs.define
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def messages(self) -> list[dict[str, Any]]:
        if self.headers.get("content-type", "").startswith("text/event-stream"):
            return sse_messages(self.body)
        return [json.loads(self.body)]


def scope_for(method: str, headers: dict[str, str], path: str = "/mcp") -> dict[str, Any]:
    """The ASGI scope of one loopback request (Host 127.0.0.1:8000) with these headers."""
    raw_headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    raw_headers.append((b"host", b"127.0.0.1:8000"))
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": raw_headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def call_app(
    supervisor: SessionSupervisor,
    method: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    path: str = "/mcp",
) -> Answer:
    """One request through the app; returns once the response body is complete."""
    scope = scope_for(method, headers or {}, path)
    sent_body = False
    finished = trio.Event()
    answer = Answer(0, {}, b"")

    async def receive() -> dict[str, Any]:
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": body, "more_body": False}
        await finished.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer.status = message["status"]
            answer.headers = {k.decode().lower(): v.decode() for k, v in message.get("headers", [])}
        elif message["type"] == "http.response.body":
            answer.body += message.get("body", b"")
            if not message.get("more_body", False):
                finished.set()

    await supervisor.asgi_app(scope, receive, send)  # type: ignore[arg-type]
    finished.set()
    return answer


async def post(supervisor: SessionSupervisor, body: bytes, session_id: str | None = None) -> Answer:
    return await call_app(supervisor, "POST", body, mcp_headers(session_id))


async def open_in_process(supervisor: SessionSupervisor) -> str:
    """Open a session in process (initialize, then initialized); return its id."""
    answer = await post(supervisor, initialize_body())
    assert answer.status == 200, answer.body
    session_id = answer.headers["mcp-session-id"]
    done = await post(supervisor, rpc("notifications/initialized", None), session_id)
    assert done.status == 202
    return session_id


@attrs.define(eq=False)
class OpenStream:
    """A GET stream driven in process: what arrived so far, and the client's way out."""

    status: int = 0
    headers: dict[str, str] = attrs.Factory(dict)
    body: bytes = b""
    ended: trio.Event = attrs.Factory(trio.Event)
    """The server ended the body."""
    _arrived: trio.Event = attrs.Factory(trio.Event)
    _left: trio.Event = attrs.Factory(trio.Event)

    def messages(self) -> list[dict[str, Any]]:
        return sse_messages(self.body)

    def leave(self) -> None:
        """The client disconnects."""
        self._left.set()

    async def next_chunk(self) -> None:
        """Wait until more of the body (or its end) arrives."""
        await self._arrived.wait()
        self._arrived = trio.Event()

    async def receive(self) -> dict[str, Any]:
        await self._left.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = {k.decode().lower(): v.decode() for k, v in message.get("headers", [])}
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")
            if not message.get("more_body", False):
                self.ended.set()
        self._arrived.set()


async def open_stream(supervisor: SessionSupervisor, session_id: str, nursery: trio.Nursery) -> OpenStream:
    """Open the session's standalone GET stream in `nursery`; returns once its head arrived."""
    stream = OpenStream()
    scope = scope_for("GET", mcp_headers(session_id, accept="text/event-stream"))

    async def run() -> None:
        await supervisor.asgi_app(scope, stream.receive, stream.send)  # type: ignore[arg-type]
        stream.ended.set()

    nursery.start_soon(run)
    while not stream.status and not stream.ended.is_set():
        await stream.next_chunk()
    return stream


@asynccontextmanager
async def two_nodes(redis_url: str) -> AsyncIterator[tuple[SessionSupervisor, SessionSupervisor]]:
    """Two supervisors in this process, nodes n1 and n2 (JSON answers), sharing the Redis at
    `redis_url`: a wake or a move between nodes with no HTTP around it."""
    store = StoreSettings(redis_url=redis_url, lease_ttl=6.0)

    def config(node_id: str) -> SupervisorConfig:
        return SupervisorConfig(store=store, node_id=node_id, json_response=True)

    async with (
        open_supervisor(build_server(), config("n1")) as n1,
        open_supervisor(build_server(), config("n2")) as n2,
    ):
        yield n1, n2
