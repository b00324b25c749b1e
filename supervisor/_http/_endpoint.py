"""The MCP endpoint as an ASGI app: the edge where a request is read, checked and sent on its way.

The order of checks is the SDK manager's where it has one: the body first (its size and time
limits), then Host/Origin, the protocol era, the session (an unknown one is 404 whatever else is
wrong with the request), and only then Accept, Content-Type and the body itself. Each check is a
pure function of the `McpRequest`; the paths behind them are `SessionRoutes` and `StatelessRoute`.
"""

from __future__ import annotations

import logging

import trio
from prometheus_client import CollectorRegistry
from starlette.types import Message, Receive, Scope, Send

import supervisor._http._refusals as refusals
from actors import Refusal, send_refusal, send_whole
from supervisor._cluster import Forward
from supervisor._core import CONTENT_TYPE, SessionSupervisor, metrics_registry, render
from supervisor._http._access import note_of
from supervisor._http._dispatch import Dispatcher
from supervisor._http._envelope import accepts
from supervisor._http._forward import Forwarder
from supervisor._http._intake import ClientLeft, read_body
from supervisor._http._proxy import HostCheck
from supervisor._http._request import (
    McpRequest,
    content_refusal,
    initialize_refusal,
    read_request,
    session_header_refusal,
)
from supervisor._http._session_routes import SessionRoutes
from supervisor._http._stateless_route import StatelessRoute
from supervisor._http._tracing import TRACE_KEY, begin_trace

logger = logging.getLogger("supervisor._endpoint")

ALLOWED_METHODS = ("GET", "POST", "DELETE")


class SupervisorEndpoint:
    """ASGI callable for one supervisor's MCP path (and metrics path); serve it with hypercorn (trio)."""

    def __init__(self, supervisor: SessionSupervisor) -> None:
        self._supervisor = supervisor
        self._config = supervisor.config
        self._registry: CollectorRegistry | None = None
        dispatcher = self._dispatcher = Dispatcher(supervisor)
        self._sessions = SessionRoutes(supervisor, dispatcher)
        self._stateless = StatelessRoute(supervisor, dispatcher)
        self._hosts = HostCheck(self._config.security)
        cluster = supervisor.cluster
        self._forwarder = Forwarder(self._config.node_id, cluster.directory) if cluster is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        guard = _StartedGuard(send)
        try:
            await self._handle(scope, receive, guard)
        except ClientLeft:
            return
        except Exception:
            logger.exception("unexpected error while handling %s %s", scope.get("method"), scope.get("path"))
            if not guard.started:
                await send_refusal(send, refusals.internal_error())

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        config = self._config
        if scope["path"] == config.metrics_path:
            refusal = await self._hosts.refusal(scope)
            if refusal is not None:
                await self._dispatcher.refuse(send, refusal)
                return
        if scope["path"] != config.path:
            if scope["path"] == config.metrics_path and scope["method"] == "GET":
                await self._metrics(send)
            else:
                await self._dispatcher.refuse(send, refusals.unknown_path())
            return
        if scope["method"] not in ALLOWED_METHODS:
            await self._dispatcher.refuse(send, refusals.method_not_allowed(", ".join(ALLOWED_METHODS)))
            return
        body = b""
        if scope["method"] == "POST":
            read = await read_body(
                scope, receive, limit=self._config.max_request_body_size, timeout=self._config.body_timeout
            )
            if isinstance(read, Refusal):
                await self._dispatcher.refuse(send, read)
                return
            body = read
        refusal = await self._hosts.refusal(scope)
        if refusal is not None:
            await self._dispatcher.refuse(send, refusal)
            return
        request = read_request(scope, body)
        note = note_of(scope)
        if note is not None:
            note.parsed, note.mcp_method = request.envelope is not None, request.method_name
            note.session_id = request.session_id
        if TRACE_KEY in scope:
            envelope = request.envelope
            begin_trace(scope, envelope.message if envelope is not None else None)
        if not request.handshake_era:
            # 2026-07-28 goes to the SDK's stateless entry; an unknown version is answered there.
            await self._stateless.serve(request, receive, send)
            return
        await self._handshake_era(request, receive, send)

    async def _handshake_era(self, request: McpRequest, receive: Receive, send: Send) -> None:
        refusal = session_header_refusal(request)
        if refusal is not None:
            await self._dispatcher.refuse(send, refusal)
            return
        actor = await self._sessions.find(request) if request.session_id is not None else None
        if isinstance(actor, Forward):
            # Another live node holds the session: it serves; if it cannot, the session moves here.
            assert self._forwarder is not None, "only a cluster node forwards"
            if await self._forwarder.forward(actor, request, receive, send):
                return
            actor = await self._sessions.find(request, forward=False)
        assert not isinstance(actor, Forward)
        if isinstance(actor, Refusal):
            await self._dispatcher.refuse(send, actor)
            return
        if request.session_id is not None and actor is None:
            # 404 whatever else is wrong with the request (as the SDK); it names the request when
            # the body says which (the SDK's says null).
            await self._dispatcher.refuse(send, refusals.not_found(request.request_id))
            return
        method = request.method
        if method == "DELETE":
            await self._sessions.delete(actor, send)
            return
        json_response = self._config.json_response
        if not accepts(request.accept, json_response=json_response, method=method):
            await self._dispatcher.refuse(send, refusals.not_acceptable(method, json_response))
            return
        if method == "GET":
            if actor is None:
                await self._dispatcher.refuse(send, refusals.missing_session())
            else:
                await self._sessions.stream(actor, request, receive, send)
            return
        refusal = content_refusal(request) or initialize_refusal(request, self._config.max_initialize_bytes)
        if refusal is not None:
            await self._dispatcher.refuse(send, refusal)
        elif actor is None:
            await self._sessions.without_session(request, receive, send)
        else:
            await self._sessions.post(actor, request, receive, send)

    async def _metrics(self, send: Send) -> None:
        if self._registry is None:
            self._registry = metrics_registry(self._supervisor)
        body = render(self._registry)
        headers = [(b"content-type", CONTENT_TYPE.encode()), (b"content-length", str(len(body)).encode())]
        await send_whole(send, 200, headers, body)


class _StartedGuard:
    """Remembers whether a response was started, so an unexpected error still gets a JSON 500.

    It is also where a send meets the client having closed its connection in the same instant:
    hypercorn's trio server then half-closes the socket (`send_eof`) outside its send lock, and
    our send, the response's only one, gets `BusyResourceError`. The client is gone; the rest of
    the answer is dropped quietly, as for any client that left.
    """

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False
        self._gone = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        if self._gone:
            return
        try:
            await self._send(message)
        except trio.BusyResourceError:
            self._gone = True
            logger.debug("the client closed its connection while its answer was being sent")


async def _lifespan(receive: Receive, send: Send) -> None:
    """The supervisor is opened around the server, so the ASGI lifespan only acknowledges."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
