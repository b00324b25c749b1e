"""Handing one request to its session actor, waiting for it, and completing its answer.

Each handler waits for its request to finish. It is the single reader of `receive`, so it sees
the client leave (hypercorn never cancels an app task on disconnect) and tells the request.
Whatever happens to the actor, the handler completes the answer, by how the request ended.
"""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from typing import Any

import attrs
import trio
from starlette.types import Receive, Send

import supervisor._http._refusals as refusals
from actors import (
    Admission,
    Refusal,
    RequestOutcome,
    RequestTicket,
    ServeRequest,
    SessionActor,
    answers_directly,
    chunk,
    send_refusal,
    tells_retry,
)
from supervisor._core import SessionSupervisor
from supervisor._http._exchange import Exchange
from supervisor._http._request import McpRequest


@attrs.frozen
class Handover:
    """How one request is handed over: what it is, and what waiting for it may take."""

    is_stream: bool = False
    standalone: bool = False
    timeout: float | None = None
    opening: bool = False
    """The session's opening initialize: quick open may learn the server's answer from it."""


def handover_of(
    request: McpRequest,
    exchange: Exchange,
    *,
    method: str | None = None,
    request_id: str | int | None = None,
    body: bytes = b"",
    message: Mapping[str, Any] | None = None,
    direct: bool = False,
) -> ServeRequest:
    """The message that hands `request` to an actor: through `exchange`, in this handler's context."""
    return ServeRequest(
        scope=request.scope,
        receive=exchange.receive,
        send=exchange.send,
        context=contextvars.copy_context(),
        ticket=exchange.ticket,
        method=method,
        request_id=request_id,
        body=body,
        message=message,
        direct=direct,
    )


class Dispatcher:
    """The one place a request meets its actor."""

    def __init__(self, supervisor: SessionSupervisor) -> None:
        self._supervisor = supervisor
        self._config = supervisor.config
        self._capture = supervisor.quick_open
        self._direct = supervisor.direct_answers
        self._tally = supervisor.tally

    async def refuse(self, send: Send, refusal: Refusal) -> None:
        """Send a refusal, counted by status and cause (every refusal of the HTTP layer comes here)."""
        self._tally.refused(refusal.status, refusal.label)
        await send_refusal(send, refusal)

    def exchange(self, request: McpRequest, send: Send, handover: Handover, **extra: object) -> Exchange:
        """A fresh ticket and the exchange that carries one request's traffic.

        A client leaving cancels only a stream and a 2026-07-28 request. The handshake-era protocol
        versions say a dropped connection is not a cancellation (the client sends
        `notifications/cancelled` for that): such a request, the opening initialize among them,
        runs on to its end, still counted in flight.
        """
        config = self._config
        return Exchange(
            request.body,
            send,
            send_timeout=config.send_timeout,
            retry_after=config.retry_after,
            ticket=RequestTicket(is_stream=handover.is_stream, is_standalone=handover.standalone),
            request_id=request.request_id,
            cancel_if_client_leaves=handover.is_stream or not request.handshake_era,
            capture_response=handover.opening and self._capture,
            **extra,  # type: ignore[arg-type]
        )

    async def dispatch(
        self, actor: SessionActor, request: McpRequest, receive: Receive, send: Send, handover: Handover
    ) -> tuple[Exchange | None, bool]:
        """Hand the request to the actor, wait for it, and complete its answer.

        Returns the exchange (None if it never reached the actor) and whether the timeout ran out.
        """
        config = self._config
        request_id = request.request_id
        method = request.method_name
        direct = answers_directly(self._direct, method, request_id)
        # An SSE answer by the transport (sse-starlette) keeps reading `receive` for the client
        # leaving: let it, and save a watcher task per request. A JSON answer, or a direct
        # answer, reads nothing after the body: this handler watches the client.
        sse = handover.is_stream or (not config.json_response and request_id is not None and not direct)
        exchange = self.exchange(
            request, send, handover, client_receive=receive if sse else None, session_id=actor.session_id
        )
        envelope = request.envelope
        message = handover_of(
            request,
            exchange,
            method=method,
            request_id=request_id,
            body=request.body,
            message=envelope.message if envelope is not None else None,
            direct=direct,
        )
        admission = await self._supervisor.submit(actor, message)
        if admission is not Admission.ACCEPTED:
            await self.refuse(send, self._refusal(actor, admission, request_id))
            return None, False
        timed_out = await self.await_ticket(exchange, receive, handover.timeout)
        self._supervisor.record_outcome(exchange.ticket.outcome, session_id=actor.session_id)
        if not timed_out:
            await self._complete(exchange, actor, request_id)
        return exchange, timed_out

    async def hold_stream(
        self, actor: SessionActor, request: McpRequest, receive: Receive, send: Send
    ) -> None:
        """A standalone GET stream the actor holds (actors/_standalone.py): this handler writes it.

        It wakes nothing and is no request in flight: the session may hibernate while it is open.
        """
        handover = Handover(is_stream=True, standalone=True)
        exchange = self.exchange(request, send, handover, session_id=actor.session_id)
        ticket = exchange.ticket
        stream = actor.streams.open(ticket)
        if isinstance(stream, Admission):
            if stream is Admission.CONFLICT:
                # An outcome, as when the transport answered it: counted with the requests.
                self._supervisor.record_outcome(RequestOutcome.CONFLICT, session_id=actor.session_id)
                await send_refusal(send, refusals.stream_conflict())
            else:
                await self.refuse(send, self._refusal(actor, stream, None))
            return
        try:
            async with trio.open_nursery() as nursery:
                # The client leaving cancels the ticket, which ends the pump.
                nursery.start_soon(exchange.watch_client, receive)
                await stream.pump(exchange.send)
                nursery.cancel_scope.cancel()
        finally:
            actor.streams.release(stream)
            ticket.finish(RequestOutcome.COMPLETED)
        self._supervisor.record_outcome(ticket.outcome, session_id=actor.session_id)
        await exchange.send(chunk(b"", more=False))

    def _refusal(self, actor: SessionActor, admission: Admission, request_id: object) -> Refusal:
        retry_after = self._config.retry_after
        if (
            admission is Admission.GONE
            and self._supervisor.cluster is not None
            and tells_retry(actor.close_reason)
        ):
            # It is moving (or being evicted): its record lives on, so this is "retry", not "gone".
            return refusals.session_moving(request_id, retry_after)
        if admission is Admission.GONE:
            return refusals.session_closed(request_id)
        if admission is Admission.BUSY:
            return refusals.session_busy(request_id, retry_after)
        limit = self._config.max_requests_per_session
        actor.log.warning("refused a request: %s requests in flight or queued", limit)
        return refusals.too_many_requests(request_id, retry_after)

    async def await_ticket(self, exchange: Exchange, receive: Receive, timeout: float | None) -> bool:
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

    async def _complete(self, exchange: Exchange, actor: SessionActor, request_id: object) -> None:
        """Answer whatever the transport left unanswered, by how the request ended."""
        status, code, text, named = refusals.unfinished(
            exchange.ticket.outcome,
            actor.close_reason,
            closing=actor.closing,
            has_cluster=self._supervisor.cluster is not None,
            lost_sse_answer=exchange.is_sse
            and not exchange.answered
            and request_id is not None
            and self._config.event_store is None,
        )
        await exchange.answer_unfinished(status, code, text, request_id if named else None)


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
