"""A request for a session another live node holds is forwarded there, not answered by moving it.

The holder serves; others forward. One internal hop (HTTP/1.1, kept-alive connections) instead of
a move, so a balancer's transient routing after a failure never moves a session back and forth,
and a move happens only when the holder is gone, or stopping. The request goes as it came (its
headers, its body, already read and checked here), marked with `X-MCP-Supervisor-Forwarded-By`
so that it is never forwarded twice; the holder's answer comes back as it goes, streamed.

When the holder cannot be reached, or answers 503 before anything was sent (its session closing,
or the node stopping), the caller serves the request here instead: it wakes the session, which
moves it.
"""

from __future__ import annotations

import logging

import httpx2
import trio
from opentelemetry import trace
from opentelemetry.propagate import inject
from starlette.types import Receive, Send

from supervisor._cluster import Directory, Forward
from supervisor._http._request import McpRequest

logger = logging.getLogger("supervisor._forward")

FORWARDED_BY = b"x-mcp-supervisor-forwarded-by"
_HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"transfer-encoding", b"te", b"upgrade", b"trailer", b"content-length"}
)
_NOT_RELAYED = _HOP_BY_HOP | {b"date", b"server"}


def forwarded(request: McpRequest) -> bool:
    """Whether another node forwarded this request here (it is then served here, never again sent on)."""
    return any(name == FORWARDED_BY for name, _ in request.scope["headers"])


class Forwarder:
    """The node's client for forwarding (one connection pool for every other node); made only for
    a cluster node, and it counts in the node's `Directory` what it forwarded."""

    def __init__(self, node_id: str, directory: Directory) -> None:
        self._node_id = node_id.encode()
        self._directory = directory
        timeout = httpx2.Timeout(connect=2.0, read=None, write=10.0, pool=5.0)
        self._client = httpx2.AsyncClient(timeout=timeout, limits=httpx2.Limits(max_keepalive_connections=64))

    async def forward(self, forward: Forward, request: McpRequest, receive: Receive, send: Send) -> bool:
        """Send the request to its session's holder and its answer back: True once answered so.

        False when the holder could not be reached or said 503 before anything was sent.
        """
        scope = request.scope
        path = scope.get("root_path", "") + scope["path"]
        query = scope.get("query_string", b"")
        url = forward.url.rstrip("/") + path + (f"?{query.decode('latin-1')}" if query else "")
        headers = _with_trace([(name, value) for name, value in scope["headers"] if name not in _HOP_BY_HOP])
        headers.append((FORWARDED_BY, self._node_id))
        built = self._client.build_request(request.method, url, headers=headers, content=request.body)
        try:
            response = await self._client.send(built, stream=True)
        except httpx2.TransportError as error:
            logger.info(
                "could not forward to node %s (%s): serving here", forward.node_id, type(error).__name__
            )
            self._directory.forget(forward.node_id)  # ask the store again next time
            return False
        try:
            if response.status_code == 503:
                self._directory.forget(forward.node_id)  # stopping, or its session closing
                return False
            self._directory.forwarded += 1
            relayed = [(n, v) for n, v in response.headers.raw if n.lower() not in _NOT_RELAYED]
            await send({"type": "http.response.start", "status": response.status_code, "headers": relayed})
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_until_client_leaves, receive, nursery.cancel_scope)
                async for chunk in response.aiter_raw():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                nursery.cancel_scope.cancel()
        except httpx2.TransportError:
            logger.info("node %s went away while answering a forwarded request", forward.node_id)
        finally:
            with trio.CancelScope(shield=True):
                await response.aclose()
        return True


def _with_trace(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The holder's span becomes a child of this node's (W3C trace context of the current span,
    when it is traced here; else the caller's headers as they came)."""
    if not trace.get_current_span().get_span_context().is_valid:
        return headers  # not traced here (tracing off): no propagator to run per request
    carrier: dict[str, str] = {}
    inject(carrier)
    if "traceparent" not in carrier:
        return headers
    kept = [(name, value) for name, value in headers if name not in (b"traceparent", b"tracestate")]
    kept.extend((name.encode("latin-1"), value.encode("latin-1")) for name, value in carrier.items())
    return kept


async def _until_client_leaves(receive: Receive, scope: trio.CancelScope) -> None:
    """The client went away: stop relaying (closing the hop, which the holder sees as the same)."""
    while (await receive())["type"] != "http.disconnect":
        pass
    scope.cancel()
