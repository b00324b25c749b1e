"""The requests of the scale bench (issue 26.3): raw keep-alive connections, every answer checked.

httpx costs the load generator more CPU per request than the node spends on a `tools/call`; the
scale run makes some 400,000 requests, so it speaks HTTP itself (`tests.bench.client.Connection`)
with the bearer token and session header the cluster's nodes want.
"""

from __future__ import annotations

import json
import secrets
import time

import attrs

from tests.bench.client import PROTOCOL_VERSION, BadResponse, Connection, Response, rpc_message
from tests.support.cluster import ADMIN_TOKEN, TOKENS

SAME_BLOB = secrets.token_hex(8192)
"""Large capabilities that every client of a run sends alike (as clients of one release do)."""


def capabilities_of(padding: int) -> dict[str, object]:
    """A client's capabilities; `padding` characters of experimental ones (a client with large
    ones), random hex: no store may shrink them by compression. Each client's own when positive;
    when negative, the same for every client of the run."""
    if not padding:
        return {}
    blob = secrets.token_hex(padding // 2) if padding > 0 else SAME_BLOB[:-padding]
    return {"experimental": {"bench": {"blob": blob}}}


def _request(method: bytes, path: bytes, host: bytes, headers: list[bytes], body: bytes) -> bytes:
    head = b"%s %s HTTP/1.1\r\nHost: %s\r\n" % (method, path, host)
    return head + b"".join(h + b"\r\n" for h in headers) + b"Content-Length: %d\r\n\r\n" % len(body) + body


@attrs.define
class ScaleClient:
    """One simulated client's connection to one node (or to haproxy) and its MCP requests."""

    connection: Connection
    who: str = "alice"
    next_id: int = 1

    @property
    def _host(self) -> bytes:
        return f"{self.connection.host}:{self.connection.port}".encode()

    def _post(self, body: dict[str, object], session_id: bytes | None) -> bytes:
        headers = [
            b"Accept: application/json, text/event-stream",
            b"Content-Type: application/json",
            b"Mcp-Protocol-Version: " + PROTOCOL_VERSION.encode(),
            b"Authorization: Bearer " + TOKENS[self.who].encode(),
        ]
        if session_id is not None:
            headers.append(b"Mcp-Session-Id: " + session_id)
        raw = json.dumps(body, separators=(",", ":")).encode()
        return _request(b"POST", b"/mcp", self._host, headers, raw)

    async def open(self, padding: int = 0) -> bytes:
        """initialize and notifications/initialized: the new session's id."""
        self.next_id += 1
        params = {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": capabilities_of(padding),
            "clientInfo": {"name": "scale-bench", "version": "1.0"},
        }
        body = {"jsonrpc": "2.0", "id": self.next_id, "method": "initialize", "params": params}
        response = await self.connection.request(self._post(body, None))
        rpc_message(response, self.next_id)
        session_id = response.headers.get(b"mcp-session-id")
        if not session_id:
            raise BadResponse("initialize answered without Mcp-Session-Id")
        done = await self.connection.request(
            self._post({"jsonrpc": "2.0", "method": "notifications/initialized"}, session_id)
        )
        if done.status != 202:
            raise BadResponse(f"notifications/initialized got status {done.status}")
        return session_id

    async def call(self, session_id: bytes) -> str:
        """One `tools/call` of `where`, checked: the node that served it."""
        self.next_id += 1
        body = {
            "jsonrpc": "2.0",
            "id": self.next_id,
            "method": "tools/call",
            "params": {"name": "where", "arguments": {}},
        }
        response = await self.connection.request(self._post(body, session_id))
        result = rpc_message(response, self.next_id)["result"]
        text = result["content"][0]["text"]
        if result.get("isError") or not isinstance(text, str):
            raise BadResponse(f"tool error: {result!r}")
        return text

    async def timed_call(self, session_id: bytes) -> float:
        started = time.perf_counter()
        await self.call(session_id)
        return time.perf_counter() - started


@attrs.define
class AdminClient:
    """A node's admin API over one keep-alive connection."""

    connection: Connection

    async def request(self, method: bytes, path: bytes) -> Response:
        host = f"{self.connection.host}:{self.connection.port}".encode()
        headers = [b"Authorization: Bearer " + ADMIN_TOKEN.encode()]
        response = await self.connection.request(_request(method, path, host, headers, b""))
        if not 200 <= response.status < 300:
            raise BadResponse(f"admin {method!r} {path!r}: {response.status} {response.body[:200]!r}")
        return response

    async def evict(self, session_id: bytes) -> None:
        await self.request(b"DELETE", b"/admin/sessions/" + session_id + b"?mode=evict")

    async def stats(self) -> dict[str, object]:
        stats: dict[str, object] = json.loads((await self.request(b"GET", b"/admin/stats")).body)
        return stats
