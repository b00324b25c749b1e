"""The session routes: open a session, route a request to one, stream from one, delete one.

Everything here has a parsed `McpRequest`; the decisions are the SDK manager's (an unknown or
foreign session is 404, a missing one 400) and the hand-over is `Dispatcher`'s.
"""

from __future__ import annotations

import logging

import trio
from starlette.types import Receive, Send

import supervisor._http._refusals as refusals
from actors import (
    SESSION_ID,
    ActorState,
    CloseReason,
    Refusal,
    RequestOutcome,
    SessionActor,
    send_refusal,
    send_whole,
    session_span,
    tracer_of,
)
from supervisor._cluster import Forward
from supervisor._core import Membership, OpenRefusal, SessionSupervisor
from supervisor._http._dispatch import Dispatcher, Handover
from supervisor._http._forward import forwarded
from supervisor._http._quick_open import InitializeAnswers, send_accepted, send_initialize_answer
from supervisor._http._request import McpRequest

logger = logging.getLogger("supervisor._session_routes")


class SessionRoutes:
    """Requests in the handshake era: with a session id, or a POSTed initialize to open one."""

    def __init__(self, supervisor: SessionSupervisor, dispatcher: Dispatcher) -> None:
        self._supervisor = supervisor
        self._config = supervisor.config
        self._dispatcher = dispatcher
        self._quick = InitializeAnswers() if supervisor.quick_open else None
        """The server's own initialize answers, when new sessions may be born dormant."""
        self._membership = Membership(supervisor) if supervisor.cluster is not None else None
        self._tracer = tracer_of(supervisor.config.tracer_provider)

    async def find(
        self, request: McpRequest, *, forward: bool = True
    ) -> SessionActor | Refusal | Forward | None:
        """The actor for this id and principal, woken from the store if need be (a cluster node).

        None: unknown (404); a Refusal: the store could not say (503, retry); a Forward: another
        live node holds it (unless `forward` is off, or the request was forwarded here already).
        """
        assert request.session_id is not None
        here = self._supervisor.route(request.session_id)
        cluster = self._supervisor.cluster
        if here is not None and cluster is not None and cluster.lease_in_doubt:
            # Paused or cut off for a while: never answer for a session another node may own now.
            await cluster.confirm(request.session_id)
            here = self._supervisor.route(request.session_id)
        if self._membership is None or here is not None:
            return self.route(request)
        found = await self._membership.find(
            request.session_id, request.principal, forward=forward and not forwarded(request)
        )
        if isinstance(found, Forward):
            return found
        if isinstance(found, OpenRefusal):
            return refusals.not_opened(found.value, found.name, request.request_id, self._config.retry_after)
        # Not routed again: the woken actor may already be closing (moved on), and then the
        # dispatch answers "retry" by its close reason, where a fresh lookup would say 404.
        return self._owned(found, request)

    def route(self, request: McpRequest) -> SessionActor | None:
        """The actor for this id and principal; another principal's session looks exactly unknown."""
        assert request.session_id is not None
        return self._owned(self._supervisor.route(request.session_id), request)

    @staticmethod
    def _owned(actor: SessionActor | None, request: McpRequest) -> SessionActor | None:
        if actor is None:
            assert request.session_id is not None
            logger.info("Rejected request with unknown or expired session ID: %s", request.session_id[:64])
            return None
        if actor.principal != request.principal:
            asking = request.principal.client_id if request.principal is not None else "nobody"
            actor.log.warning("refused a request from another principal (client id %r)", asking[:64])
            return None
        return actor

    async def delete(self, actor: SessionActor | None, send: Send) -> None:
        """DELETE ends the session through the supervisor, so in-flight requests still get answers."""
        if actor is None:
            await self._dispatcher.refuse(send, refusals.missing_session())
            return
        await self._supervisor.close_actor(actor, CloseReason.CLIENT_DELETE, 0.0)
        await send_whole(send, 200, [(b"content-length", b"0")])

    async def stream(self, actor: SessionActor, request: McpRequest, receive: Receive, send: Send) -> None:
        """A GET: the session's standalone stream, or with Last-Event-ID the replay of a stream."""
        resuming = request.last_event_id is not None
        if resuming and self._config.event_store is None:
            await self._dispatcher.refuse(send, refusals.no_resumption())
            return
        if self._config.event_store is None:
            # Held by the actor, not served by a transport: no wake, and no request in flight.
            await self._dispatcher.hold_stream(actor, request, receive, send)
            return
        await self._dispatcher.dispatch(
            actor, request, receive, send, Handover(is_stream=True, standalone=not resuming)
        )

    async def post(self, actor: SessionActor, request: McpRequest, receive: Receive, send: Send) -> None:
        """A POST to a live session."""
        envelope = request.envelope
        assert envelope is not None
        if (
            envelope.method == "notifications/initialized"
            and envelope.request_id is None
            and actor.statistics().dormant
        ):
            # A dormant actor replays what its record says when it wakes: no need to wake it now.
            actor.took_without_waking(envelope.method, (envelope.message or {}).get("params"))
            await send_accepted(send, actor.session_id)
            return
        await self._dispatcher.dispatch(actor, request, receive, send, Handover())

    async def without_session(self, request: McpRequest, receive: Receive, send: Send) -> None:
        """No Mcp-Session-Id: only a POSTed initialize can open a session (content checked already)."""
        envelope = request.envelope
        if request.method == "GET" or envelope is None or not envelope.is_initialize:
            await self._dispatcher.refuse(
                send, refusals.missing_session(request.request_id if request.method != "GET" else None)
            )
            return
        await self._open(request, receive, send)

    async def _admitted(
        self, request: McpRequest, params: dict[str, object] | None
    ) -> SessionActor | OpenRefusal:
        """Admit and start a new session (traced as its open, a child of the initialize's span)."""
        with session_span(self._tracer, "mcp.session.open", None) as span:
            opened = await self._supervisor.open_session(request.principal, dormant_with=params)
            if span is not None:
                if isinstance(opened, OpenRefusal):
                    span.set_attribute("mcp.session.refused", opened.name.lower())
                else:
                    span.set_attribute(SESSION_ID, opened.session_id)
            return opened

    async def _open(self, request: McpRequest, receive: Receive, send: Send) -> None:
        """A new session: admit it (or 503), serve its initialize within the open timeout."""
        config = self._config
        request_id = request.request_id
        quick = self._quick.lookup(request.envelope) if self._quick is not None else None
        params = _params(request) if quick is not None else None
        opened = await self._admitted(request, params)
        if isinstance(opened, OpenRefusal):
            refusal = refusals.not_opened(opened.value, opened.name, request_id, config.retry_after)
            await self._dispatcher.refuse(send, refusal)
            return
        actor = opened
        if actor.statistics().state is not ActorState.RUNNING:
            await send_refusal(
                send,
                refusals.could_not_start(request_id, config.retry_after),
            )
            return
        cluster = self._supervisor.cluster
        if cluster is not None:
            # In the store before the client holds the id: a node killed after the answer
            # leaves it behind for another to wake (quick open: the record has the params).
            await cluster.write_through(actor.record.after("initialize", _params(request)))
        if quick is not None:
            await send_initialize_answer(
                send, actor.session_id, request_id, quick, json_response=config.json_response
            )
            return
        established = False
        try:
            handover = Handover(timeout=config.open_timeout, opening=True)
            exchange, timed_out = await self._dispatcher.dispatch(actor, request, receive, send, handover)
            if exchange is None:
                return
            established = (
                not timed_out
                and exchange.ticket.outcome in (RequestOutcome.COMPLETED, RequestOutcome.CLIENT_GONE)
                and exchange.status is not None
                and exchange.status < 400
            )
            if established and self._quick is not None and exchange.response is not None:
                self._quick.learn(request.envelope, exchange.response)
            if timed_out:
                await exchange.answer_unfinished(*refusals.open_timed_out(), request_id)
        finally:
            if not established:
                with trio.move_on_after(config.send_timeout, shield=True):
                    await self._supervisor.close_actor(actor, CloseReason.FAILED_OPEN, 0.0)


def _params(request: McpRequest) -> dict[str, object]:
    envelope = request.envelope
    params = (envelope.message or {}).get("params") if envelope is not None else None
    return dict(params) if isinstance(params, dict) else {}
