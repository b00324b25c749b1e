"""A minimal HTTP/1.1 keep-alive client on raw trio sockets, and the MCP calls the benchmark makes.

One `Connection` per simulated client. Requests are hand-built bytes; responses are parsed just far
enough to check them: the status line, the headers, and a body framed by Content-Length or chunked
transfer coding (an SSE answer to a POST ends with the terminating chunk). Every answer is checked
(status, and the JSON-RPC id and result of the message that answers the request) so that a broken
server cannot look fast: a failed check raises `BadResponse`, which the caller counts as an error.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from typing import Any

import attrs
import trio

PROTOCOL_VERSION = "2025-11-25"
MAX_HEAD = 64 * 1024
MAX_BODY = 16 * 1024 * 1024
IDLE_REUSE_LIMIT = 2.0
"""Seconds a connection may sit unused and still be reused; after that it is replaced. Hypercorn
closes keep-alive connections idle for 5 s (its `keep_alive_timeout`), and a POST sent into a
connection the server is closing would fail through no fault of the server."""


class BadResponse(Exception):
    """The server's answer was not the one an MCP server must give (or the connection broke)."""


@attrs.frozen
class Response:
    status: int
    headers: dict[bytes, bytes]
    body: bytes


@attrs.define
class Connection:
    """One HTTP/1.1 keep-alive connection; reconnects on the next request after a failure."""

    host: str
    port: int
    sock: trio.socket.SocketType | None = None
    buffer: bytearray = attrs.field(factory=bytearray)
    last_used: float = 0.0

    async def connect(self) -> None:
        sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_STREAM)
        sock.setsockopt(trio.socket.IPPROTO_TCP, trio.socket.TCP_NODELAY, 1)
        try:
            await sock.connect((self.host, self.port))
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self.buffer.clear()

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        self.buffer.clear()

    async def request(self, raw: bytes) -> Response:
        """Send one hand-built request and read its whole response; a failure closes the connection."""
        if self.sock is not None and time.monotonic() - self.last_used > IDLE_REUSE_LIMIT:
            self.close()
        if self.sock is None:
            await self.connect()
        try:
            response = await self._exchange(raw)
            self.last_used = time.monotonic()
            return response
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError, BadResponse) as error:
            self.close()
            if isinstance(error, BadResponse):
                raise
            raise BadResponse(f"connection failed: {error!r}") from error

    async def _fill(self) -> None:
        assert self.sock is not None
        data = await self.sock.recv(65536)
        if not data:
            raise BadResponse("connection closed by the server")
        self.buffer += data

    async def _exchange(self, raw: bytes) -> Response:
        assert self.sock is not None
        view = memoryview(raw)
        while view:
            sent = await self.sock.send(view)
            view = view[sent:]
        buffer = self.buffer
        while (end := buffer.find(b"\r\n\r\n")) < 0:
            if len(buffer) > MAX_HEAD:
                raise BadResponse("response head too large")
            await self._fill()
        head = bytes(buffer[:end])
        del buffer[: end + 4]
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise BadResponse(f"bad status line {lines[0]!r}")
        status = int(parts[1])
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        if b"content-length" in headers:
            body = await self._read_exact(int(headers[b"content-length"]))
        elif headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            body = await self._read_chunked()
        elif status in (204, 304) or 100 <= status < 200:
            body = b""
        else:
            raise BadResponse(f"status {status} without Content-Length or chunked body")
        if headers.get(b"connection", b"").lower() == b"close":
            self.close()
        return Response(status, headers, body)

    async def _read_exact(self, size: int) -> bytes:
        if size > MAX_BODY:
            raise BadResponse("body too large")
        buffer = self.buffer
        while len(buffer) < size:
            await self._fill()
        body = bytes(buffer[:size])
        del buffer[:size]
        return body

    async def _read_chunked(self) -> bytes:
        buffer = self.buffer
        chunks: list[bytes] = []
        while True:
            while (end := buffer.find(b"\r\n")) < 0:
                await self._fill()
            size = int(bytes(buffer[:end]).split(b";", 1)[0], 16)
            del buffer[: end + 2]
            if size == 0:
                # trailers (none expected) end with an empty line
                while (end := buffer.find(b"\r\n")) != 0:
                    if end > 0:
                        del buffer[: end + 2]
                        continue
                    await self._fill()
                del buffer[:2]
                return b"".join(chunks)
            while len(buffer) < size + 2:
                await self._fill()
            chunks.append(bytes(buffer[:size]))
            del buffer[: size + 2]


def build_post(host_header: bytes, body: bytes, session_id: bytes | None) -> bytes:
    session = b"Mcp-Session-Id: " + session_id + b"\r\n" if session_id is not None else b""
    return (
        b"POST /mcp HTTP/1.1\r\nHost: " + host_header + b"\r\n"
        b"Accept: application/json, text/event-stream\r\nContent-Type: application/json\r\n"
        b"Mcp-Protocol-Version: "
        + PROTOCOL_VERSION.encode()
        + b"\r\n"
        + session
        + b"Content-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


def build_delete(host_header: bytes, session_id: bytes) -> bytes:
    return (
        b"DELETE /mcp HTTP/1.1\r\nHost: " + host_header + b"\r\nMcp-Session-Id: " + session_id + b"\r\n"
        b"Mcp-Protocol-Version: " + PROTOCOL_VERSION.encode() + b"\r\nContent-Length: 0\r\n\r\n"
    )


def rpc_message(response: Response, request_id: int) -> dict[str, Any]:
    """The JSON-RPC message answering `request_id` in a JSON or SSE body; raises if absent or an error."""
    if response.status != 200:
        raise BadResponse(f"status {response.status}: {response.body[:200]!r}")
    content_type = response.headers.get(b"content-type", b"")
    if content_type.startswith(b"text/event-stream"):
        candidates = [
            line[5:] for line in response.body.split(b"\n") if line.startswith(b"data:") and line[5:].strip()
        ]
    elif content_type.startswith(b"application/json"):
        candidates = [response.body]
    else:
        raise BadResponse(f"unexpected content type {content_type!r}")
    for candidate in candidates:
        try:
            message = json.loads(candidate)
        except ValueError as error:
            raise BadResponse(f"bad JSON {candidate[:200]!r}") from error
        if isinstance(message, dict) and message.get("id") == request_id:
            if not isinstance(message.get("result"), dict):
                raise BadResponse(f"no result for id {request_id}: {candidate[:200]!r}")
            return message
    raise BadResponse(f"no answer with id {request_id} in {response.body[:200]!r}")


@attrs.define
class McpClient:
    """The MCP requests of one simulated client, over its own connection.

    `check_echo` is off only for the floor, whose fixed answer cannot echo the text sent.
    """

    connection: Connection
    check_echo: bool = True
    next_id: int = 1
    host_header: bytes = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.host_header = f"{self.connection.host}:{self.connection.port}".encode()

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id

    async def open_session(self) -> bytes:
        """initialize, then notifications/initialized; returns the session id."""
        request_id = self._id()
        body = json.dumps(
            {
                "jsonrpc": "2.0",
                "id": request_id,
                "method": "initialize",
                "params": {
                    "protocolVersion": PROTOCOL_VERSION,
                    "capabilities": {},
                    "clientInfo": {"name": "bench", "version": "0"},
                },
            },
            separators=(",", ":"),
        ).encode()
        response = await self.connection.request(build_post(self.host_header, body, None))
        rpc_message(response, request_id)
        session_id = response.headers.get(b"mcp-session-id")
        if not session_id:
            raise BadResponse("initialize answered without Mcp-Session-Id")
        done = await self.connection.request(
            build_post(
                self.host_header, b'{"jsonrpc":"2.0","method":"notifications/initialized"}', session_id
            )
        )
        if done.status != 202:
            raise BadResponse(f"notifications/initialized got status {done.status}")
        return session_id

    async def call_echo(self, session_id: bytes) -> None:
        """One tools/call of `echo`, checked: status, id, and (MCP servers) the echoed text."""
        request_id = self._id()
        text = f"t{request_id}"
        body = (
            b'{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"echo","arguments":{"text":"%s"}}}'
            % (request_id, text.encode())
        )
        response = await self.connection.request(build_post(self.host_header, body, session_id))
        result = rpc_message(response, request_id)["result"]
        if result.get("isError"):
            raise BadResponse(f"tool error: {result!r}")
        if self.check_echo:
            content = result.get("content")
            if not (isinstance(content, list) and content and content[0].get("text") == text):
                raise BadResponse(f"echo returned {result!r}, sent {text!r}")

    async def delete_session(self, session_id: bytes) -> None:
        response = await self.connection.request(build_delete(self.host_header, session_id))
        if response.status not in (200, 204):
            raise BadResponse(f"DELETE got status {response.status}")


async def wait_for_port(host: str, port: int, timeout: float, alive: Callable[[], bool]) -> None:
    """Poll until something accepts connections on host:port (or the server process is gone)."""
    deadline = time.monotonic() + timeout
    while True:
        if not alive():
            raise RuntimeError(f"the server for port {port} exited before it listened")
        sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_STREAM)
        try:
            await sock.connect((host, port))
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            await trio.sleep(0.05)
        finally:
            sock.close()


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (the server binds it right after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port
