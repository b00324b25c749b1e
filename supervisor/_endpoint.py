"""The supervisor's ASGI app: checks a request, routes it to its session actor, and answers for it.

Each handler waits for its request to finish. It is the single reader of `receive`, so it sees
the client leave (hypercorn never cancels an app task on disconnect) and cancels that request's
task in the actor. Whatever happens to the actor, the handler completes the answer.
"""

from __future__ import annotations

import contextvars
import logging
from typing import TYPE_CHECKING, Any

import trio
from mcp.server.transport_security import TransportSecurityMiddleware
from mcp_types import UNSUPPORTED_PROTOCOL_VERSION
from prometheus_client import CollectorRegistry
from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

from actors._actor import Admission, SessionActor
from actors._messages import RequestTicket, ServeRequest
from actors._reasons import CloseReason, RequestOutcome
from actors._state import ActorState
from supervisor._envelope import (
    Envelope,
    Rejection,
    RequestId,
    accepts,
    classify_body,
    header,
    is_handshake_era,
    is_known_version,
    media_types,
    passes_only_by_prefix,
    unsupported_version,
    valid_session_id,
)
from supervisor._exchange import Exchange
from supervisor._frames import INTERNAL_ERROR, INVALID_REQUEST, SESSION_ENDED, send_error
from supervisor._metrics import CONTENT_TYPE, metrics_registry, render
from supervisor._principal import Principal, principal_of
from supervisor._quick_open import InitializeAnswers, send_accepted, send_initialize_answer

if TYPE_CHECKING:
    from supervisor._core import SessionSupervisor

logger = logging.getLogger(__name__)

SESSION_HEADER = b"mcp-session-id"
VERSION_HEADER = b"mcp-protocol-version"
ALLOWED_METHODS = ("GET", "POST", "DELETE")
LAST_EVENT_ID_HEADER = b"last-event-id"
NO_RESUMPTION = "Bad Request: this server keeps no event store, so no stream can be resumed (Last-Event-ID)"


class _Answered(Exception):
    """Raised by checks that already sent their refusal."""


class SupervisorApp:
    """ASGI callable for one supervisor; serve it with hypercorn (trio worker)."""

    def __init__(self, supervisor: SessionSupervisor) -> None:
        self._supervisor = supervisor
        self._config = supervisor.config
        self._registry: CollectorRegistry | None = None
        self._quick = InitializeAnswers() if supervisor.quick_open else None
        """The server's own initialize answers, when new sessions may be born dormant."""
        security = self._config.security
        self._security = (
            TransportSecurityMiddleware(security)
            if security is not None and security.enable_dns_rebinding_protection
            else None
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        guard = _StartedGuard(send)
        try:
            await self._handle(scope, receive, guard)
        except Exception:
            logger.exception("unexpected error while handling %s %s", scope.get("method"), scope.get("path"))
            if not guard.started:
                await send_error(send, 500, INTERNAL_ERROR, "Internal server error")

    async def _metrics(self, send: Send) -> None:
        if self._registry is None:
            self._registry = metrics_registry(self._supervisor)
        body = render(self._registry)
        headers = [(b"content-type", CONTENT_TYPE.encode()), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    # ------------------------------------------------------------------ routing

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check and route one request, in the SDK manager's order where it has one.

        The body first (its size and time limits, as the SDK's body-limit middleware), then
        Host/Origin, the protocol era, the session (an unknown one is 404 whatever else is wrong
        with the request, as in the SDK), and only then Accept, Content-Type and the body itself.
        """
        config = self._config
        if not await self._for_the_endpoint(scope, send):
            return
        method = scope["method"]
        body = b""
        if method == "POST":
            read = await self._read_body(scope, receive, send)
            if read is None:
                return
            body = read
        if self._security is not None and not await self._secure(scope, send):
            return

        headers = scope["headers"]
        version = header(headers, VERSION_HEADER)
        # Only the handshake-era versions (or none) mean sessions; 2026-07-28 goes to the SDK's
        # stateless entry. Any other value is answered here, as the SDK's request ladder answers
        # an unknown version: -32022 (400) with the ladder's data and the request's id, whatever
        # the body (the ladder would first refuse a body without `_meta`); see `_other_era`.
        if version is not None and not is_handshake_era(version):
            await self._other_era(scope, receive, send, body, version)
            return

        session_id = header(headers, SESSION_HEADER)
        actor: SessionActor | None = None
        if session_id is not None:
            if not valid_session_id(session_id):
                await send_error(send, 400, INVALID_REQUEST, "Bad Request: malformed Mcp-Session-Id header")
                return
            actor = self._route(session_id, scope)
            if actor is None:
                # 404 whatever else is wrong with the request (as the SDK); it names the request
                # when the body says which (the SDK's says null).
                await _send_not_found(send, classify_body(body).request_id if body else None)
                return
        if method == "DELETE":
            await self._delete(actor, send)
            return
        if not accepts(header(headers, b"accept"), json_response=config.json_response, method=method):
            await send_error(send, 406, INVALID_REQUEST, _not_acceptable(method, config.json_response))
            return
        if actor is None:
            await self._without_session(scope, receive, send, body)
            return
        if method == "GET":
            await self._stream(actor, scope, receive, send)
            return
        envelope = await self._envelope(scope, send, body)
        if envelope is not None:
            await self._to_session(actor, scope, receive, send, body, envelope)

    async def _for_the_endpoint(self, scope: Scope, send: Send) -> bool:
        """The MCP path with a method it takes; False once anything else was answered (metrics too)."""
        config = self._config
        if scope["path"] != config.path:
            if scope["path"] == config.metrics_path and scope["method"] == "GET":
                await self._metrics(send)
                return False
            await send_error(send, 404, INVALID_REQUEST, "Not Found")
            return False
        if scope["method"] not in ALLOWED_METHODS:
            await send_error(
                send,
                405,
                INVALID_REQUEST,
                "Method Not Allowed",
                headers=[("Allow", ", ".join(ALLOWED_METHODS))],
            )
            return False
        return True

    async def _other_era(self, scope: Scope, receive: Receive, send: Send, body: bytes, version: str) -> None:
        """2026-07-28 to the SDK's stateless entry; an unknown version answered as its ladder would."""
        if is_known_version(version):
            await self._stateless(scope, receive, send, body)
            return
        message, data = unsupported_version(version)
        request_id = classify_body(body).request_id if body else None
        await send_error(send, 400, UNSUPPORTED_PROTOCOL_VERSION, message, request_id, data=data)

    async def _stream(self, actor: SessionActor, scope: Scope, receive: Receive, send: Send) -> None:
        """A GET: the session's standalone stream, or with Last-Event-ID the replay of a stream."""
        resuming = header(scope["headers"], LAST_EVENT_ID_HEADER) is not None
        if resuming and self._config.event_store is None:
            await send_error(send, 400, INVALID_REQUEST, NO_RESUMPTION)
            return
        await self._dispatch(actor, scope, receive, send, b"", None, is_stream=True, standalone=not resuming)

    async def _secure(self, scope: Scope, send: Send) -> bool:
        """The SDK's Host/Origin checks, with a wildcard port that must be a port; False once refused."""
        assert self._security is not None
        refusal = await self._security.validate_request(Request(scope), is_post=False)
        if refusal is not None:
            await send_error(send, refusal.status_code, INVALID_REQUEST, bytes(refusal.body).decode())
            return False
        settings = self._security.settings
        headers = scope["headers"]
        if passes_only_by_prefix(header(headers, b"host"), settings.allowed_hosts):
            await send_error(send, 421, INVALID_REQUEST, "Invalid Host header")
            return False
        if passes_only_by_prefix(header(headers, b"origin"), settings.allowed_origins):
            await send_error(send, 403, INVALID_REQUEST, "Invalid Origin header")
            return False
        return True

    async def _without_session(self, scope: Scope, receive: Receive, send: Send, body: bytes) -> None:
        """No Mcp-Session-Id: only a POSTed initialize can open a session."""
        if scope["method"] == "GET":
            await send_error(send, 400, INVALID_REQUEST, "Bad Request: Missing session ID")
            return
        envelope = await self._envelope(scope, send, body)
        if envelope is None:
            return
        if not envelope.is_initialize:
            await send_error(
                send, 400, INVALID_REQUEST, "Bad Request: Missing session ID", envelope.request_id
            )
            return
        await self._open(principal_of(scope), scope, receive, send, body, envelope)

    async def _envelope(self, scope: Scope, send: Send, body: bytes) -> Envelope | None:
        """A POST's JSON-RPC message: its content type, then what the body is; None once refused."""
        if "application/json" not in media_types(header(scope["headers"], b"content-type")):
            await send_error(
                send, 415, INVALID_REQUEST, "Unsupported Media Type: Content-Type must be application/json"
            )
            return None
        envelope = classify_body(body)
        if isinstance(envelope, Rejection):
            await send_error(send, envelope.status, envelope.code, envelope.message, envelope.request_id)
            return None
        return envelope

    async def _read_body(self, scope: Scope, receive: Receive, send: Send) -> bytes | None:
        """The whole body within the size and time limits; None once the refusal was sent."""
        limit = self._config.max_request_body_size
        declared = header(scope["headers"], b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await send_error(send, 413, INVALID_REQUEST, f"Payload Too Large: the limit is {limit} bytes")
            return None
        chunks: list[bytes] = []
        size = 0
        with trio.move_on_after(self._config.body_timeout) as timer:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return None
                chunk = bytes(message.get("body", b""))
                size += len(chunk)
                if size > limit:
                    await send_error(
                        send, 413, INVALID_REQUEST, f"Payload Too Large: the limit is {limit} bytes"
                    )
                    return None
                chunks.append(chunk)
                if not message.get("more_body", False):
                    return b"".join(chunks)
        if timer.cancelled_caught:
            await send_error(send, 408, INVALID_REQUEST, "Request Timeout: the body did not arrive in time")
        return None

    # ------------------------------------------------------------------ the three lanes

    async def _open(
        self,
        principal: Principal | None,
        scope: Scope,
        receive: Receive,
        send: Send,
        body: bytes,
        envelope: Envelope,
    ) -> None:
        """A new session: admit it (or 503), serve its initialize within the open timeout."""
        from supervisor._core import OpenRefusal

        quick = self._quick.lookup(body) if self._quick is not None else None
        opened = await self._supervisor.open_session(principal, dormant_with=body if quick else None)
        if isinstance(opened, OpenRefusal):
            await _send_unavailable(send, opened.value, envelope.request_id, self._config.retry_after)
            return
        actor = opened
        if actor.state is not ActorState.RUNNING:
            await _send_unavailable(
                send, "Session could not be started", envelope.request_id, self._config.retry_after
            )
            return
        if quick is not None:
            await send_initialize_answer(
                send, actor.session_id, envelope.request_id, quick, json_response=self._config.json_response
            )
            return
        established = False
        try:
            exchange, timed_out = await self._dispatch(
                actor,
                scope,
                receive,
                send,
                body,
                envelope.request_id,
                method=envelope.method,
                timeout=self._config.open_timeout,
                opening=True,
            )
            if exchange is None:
                return
            established = (
                not timed_out
                and exchange.ticket.outcome in (RequestOutcome.COMPLETED, RequestOutcome.CLIENT_GONE)
                and exchange.status is not None
                and exchange.status < 400
            )
            if established and self._quick is not None and exchange.response is not None:
                self._quick.learn(body, exchange.response)
            if timed_out:
                await exchange.answer_unfinished(
                    503, INTERNAL_ERROR, "Timed out opening the session", envelope.request_id
                )
        finally:
            if not established:
                with trio.move_on_after(self._config.send_timeout, shield=True):
                    await self._supervisor.close_actor(actor, CloseReason.FAILED_OPEN, 0.0)

    async def _to_session(
        self,
        actor: SessionActor,
        scope: Scope,
        receive: Receive,
        send: Send,
        body: bytes,
        envelope: Envelope,
    ) -> None:
        request_id = envelope.request_id
        if envelope.method == "notifications/initialized" and request_id is None and actor.dormant:
            # A dormant actor replays `initialized` when it wakes anyway: no need to wake it now.
            actor.touch()
            await send_accepted(send, actor.session_id)
            return
        await self._dispatch(actor, scope, receive, send, body, request_id, method=envelope.method)

    async def _delete(self, actor: SessionActor | None, send: Send) -> None:
        """DELETE ends the session through the supervisor, so in-flight requests still get answers."""
        if actor is None:
            await send_error(send, 400, INVALID_REQUEST, "Bad Request: Missing session ID")
            return
        await self._supervisor.close_actor(actor, CloseReason.CLIENT_DELETE, 0.0)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _stateless(self, scope: Scope, receive: Receive, send: Send, body: bytes) -> None:
        """A 2026-07-28-era request: the SDK's stateless manager serves it in the supervisor's lane."""
        # The SDK answers some bad input here with plain text or an empty body: check it first.
        headers = scope["headers"]
        if scope["method"] != "POST":
            await send_error(
                send,
                405,
                INVALID_REQUEST,
                "Method Not Allowed: the 2026-07-28 protocol uses POST only",
                headers=[("Allow", "POST")],
            )
            return
        if not accepts(header(headers, b"accept"), json_response=True, method="POST"):
            await send_error(
                send, 406, INVALID_REQUEST, "Not Acceptable: Accept must include application/json"
            )
            return
        envelope = await self._envelope(scope, send, body)
        if envelope is None:
            return
        request_id = envelope.request_id
        exchange = self._exchange(body, send, request_id=request_id, stateless=True)
        ticket = exchange.ticket
        message = ServeRequest(scope, exchange.receive, exchange.send, contextvars.copy_context(), ticket)
        if not self._supervisor.submit_stateless(message):
            await _send_unavailable(send, "Server is shutting down", request_id, self._config.retry_after)
            return
        await self._await_ticket(exchange, receive, None)
        self._supervisor.record_outcome(ticket.outcome, stateless=True)
        await exchange.answer_unfinished(503, SESSION_ENDED, "Server is shutting down", request_id)

    # ------------------------------------------------------------------ handing over and answering

    def _route(self, session_id: str, scope: Scope) -> SessionActor | None:
        """The actor for this id and principal; another principal's session looks exactly unknown."""
        actor = self._supervisor.route(session_id)
        if actor is None:
            logger.info("Rejected request with unknown or expired session ID: %s", session_id[:64])
            return None
        if actor.principal != principal_of(scope):
            actor.log.warning("refused a request from another principal")
            return None
        return actor

    async def _dispatch(
        self,
        actor: SessionActor,
        scope: Scope,
        receive: Receive,
        send: Send,
        body: bytes,
        request_id: RequestId | None,
        *,
        is_stream: bool = False,
        standalone: bool = False,
        method: str | None = None,
        timeout: float | None = None,
        opening: bool = False,
    ) -> tuple[Exchange | None, bool]:
        """Hand the request to the actor, wait for it, and complete its answer.

        Returns the exchange (None if it never reached the actor) and whether `timeout` ran out.
        """
        limit = self._config.max_requests_per_session
        if (
            not is_stream
            and limit is not None
            and actor.in_flight - actor.open_streams + actor.queued >= limit
        ):
            actor.log.warning("refused a request: %d requests in flight or queued", limit)
            await send_error(
                send,
                429,
                INVALID_REQUEST,
                "Too Many Requests: this session has too many requests in flight",
                request_id,
                headers=[("Retry-After", str(self._config.retry_after))],
            )
            return None, False
        # An SSE answer by the transport (sse-starlette) keeps reading `receive` for the client
        # leaving: let it, and save a watcher task per request. A JSON answer, or any answer of the
        # direct lane, reads nothing after the body: this handler watches the client.
        sse = is_stream or (
            not self._config.json_response
            and request_id is not None
            and not actor.answers_directly(method, request_id)
        )
        exchange = self._exchange(
            body,
            send,
            is_stream=is_stream,
            standalone=standalone,
            request_id=request_id,
            opening=opening,
            client_receive=receive if sse else None,
            session_id=actor.session_id,
        )
        ticket = exchange.ticket
        message = ServeRequest(
            scope,
            exchange.receive,
            exchange.send,
            contextvars.copy_context(),
            ticket,
            method,
            request_id,
            body,
        )
        admission = await self._supervisor.submit(actor, message)
        if admission is Admission.GONE:
            await _send_not_found(send, request_id)
            return None, False
        if admission is Admission.BUSY:
            await _send_unavailable(send, "Session is busy", request_id, self._config.retry_after)
            return None, False
        timed_out = await self._await_ticket(exchange, receive, timeout)
        self._supervisor.record_outcome(ticket.outcome)
        if not timed_out:
            await self._complete(exchange, actor, request_id)
        return exchange, timed_out

    def _exchange(
        self,
        body: bytes,
        send: Send,
        *,
        is_stream: bool = False,
        standalone: bool = False,
        request_id: RequestId | None = None,
        opening: bool = False,
        client_receive: Receive | None = None,
        stateless: bool = False,
        session_id: str | None = None,
    ) -> Exchange:
        """A fresh ticket and the exchange that carries one request's traffic.

        A client leaving cancels only a standalone stream and a 2026-07-28 request. The
        handshake-era protocol versions say a dropped connection is not a cancellation (the
        client sends `notifications/cancelled` for that): such a request, the opening initialize
        among them, runs on to its end, still counted in flight.
        """
        return Exchange(
            body,
            send,
            send_timeout=self._config.send_timeout,
            retry_after=self._config.retry_after,
            ticket=RequestTicket(is_stream=is_stream, is_standalone=standalone),
            request_id=request_id,
            cancel_if_client_leaves=is_stream or stateless,
            session_id=session_id,
            capture_response=opening and self._quick is not None,
            client_receive=client_receive,
        )

    async def _await_ticket(self, exchange: Exchange, receive: Receive, timeout: float | None) -> bool:
        """Wait for the serving task while watching for the client to leave; True if `timeout` ran out."""
        ticket = exchange.ticket
        timed_out = False
        try:
            if timeout is None:
                await _wait_for_ticket(exchange, receive)
            else:
                with trio.move_on_after(timeout) as timer:
                    await _wait_for_ticket(exchange, receive)
                timed_out = timer.cancelled_caught
        finally:
            if not ticket.done.is_set():
                if exchange.runs_on_without_client and not timed_out:
                    # This handler itself is being cancelled (an ASGI server that cancels its app
                    # when the client goes, or one that is stopping): to the request that is its
                    # client leaving. Writes through our `send` stop; the request runs on.
                    exchange.client_left()
                else:
                    # Timed out, or a stream or 2026-07-28 request: the serving task must not
                    # outlive us, since it writes through our `send`.
                    ticket.cancel_scope.cancel()
                    with trio.move_on_after(self._config.send_timeout + 1.0, shield=True):
                        await ticket.done.wait()
        return timed_out

    async def _complete(self, exchange: Exchange, actor: SessionActor, request_id: RequestId | None) -> None:
        """Answer whatever the transport left unanswered, by how the request ended."""
        outcome = exchange.ticket.outcome
        if outcome is RequestOutcome.CONFLICT:
            await exchange.answer_unfinished(
                409, INVALID_REQUEST, "Conflict: Only one SSE stream is allowed per session", None
            )
        elif outcome is RequestOutcome.FAILED:
            await exchange.answer_unfinished(
                500, INTERNAL_ERROR, "Internal error while serving the request", request_id
            )
        elif outcome is RequestOutcome.REJECTED:
            await exchange.answer_unfinished(
                404, SESSION_ENDED, "Session terminated before the request was served", request_id
            )
        elif outcome is RequestOutcome.ABORTED or actor.state is not ActorState.RUNNING:
            reason = actor.close_reason.value if actor.close_reason is not None else "closed"
            await exchange.answer_unfinished(
                404,
                SESSION_ENDED,
                f"Session terminated ({reason}) while the request was in flight",
                request_id,
            )
        elif (
            exchange.is_sse
            and not exchange.answered
            and request_id is not None
            and self._config.event_store is None
        ):
            # The transport returned but its SSE stream ended without the answer: the SDK gave up
            # on it (its loop died under the request, and our close has not begun yet). Without
            # an event store the client cannot resume, so it gets an error with its id now.
            await exchange.answer_unfinished(
                500, INTERNAL_ERROR, "The request's stream ended without its answer", request_id
            )
        else:
            # Completed (or a stream ended by a drain): at most the end of the body is missing.
            await exchange.answer_unfinished(404, SESSION_ENDED, "Session terminated", None)


async def _wait_for_ticket(exchange: Exchange, receive: Receive) -> None:
    """Until the serving task is done; meanwhile notice the client leaving if nothing else does."""
    ticket = exchange.ticket
    if exchange.watched_by_transport:
        await ticket.done.wait()
        return
    # Nothing downstream reads `receive`: this task watches the client itself, in a scope the
    # serving task ends when it finishes (no watcher task per request).
    ticket.waiter = trio.CancelScope()
    with ticket.waiter:
        if not ticket.done.is_set():
            await exchange.watch_client(receive)
        await ticket.done.wait()


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


async def _send_not_found(send: Send, request_id: Any) -> None:
    await send_error(send, 404, INVALID_REQUEST, "Session not found", request_id)


async def _send_unavailable(send: Send, text: str, request_id: Any, retry_after: int) -> None:
    await send_error(send, 503, INTERNAL_ERROR, text, request_id, headers=[("Retry-After", str(retry_after))])


def _not_acceptable(method: str, json_response: bool) -> str:
    if method == "GET":
        return "Not Acceptable: Client must accept text/event-stream"
    if json_response:
        return "Not Acceptable: Client must accept application/json"
    return "Not Acceptable: Client must accept both application/json and text/event-stream"


async def _lifespan(receive: Receive, send: Send) -> None:
    """The supervisor is opened around the server, so the ASGI lifespan only acknowledges."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
