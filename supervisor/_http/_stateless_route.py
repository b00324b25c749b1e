"""Requests of the 2026-07-28 era (no session), and protocol versions no era knows.

They go to the SDK's own stateless manager, run by `StatelessRequests` in a nursery the
supervisor owns. The SDK answers some bad input there with plain text or an empty body, so the
shape of the request is checked here first, with JSON-RPC errors.
"""

from __future__ import annotations

from starlette.types import Receive, Send

import supervisor._http._refusals as refusals
from actors import Refusal
from supervisor._core import SessionSupervisor
from supervisor._http._dispatch import Dispatcher, Handover, handover_of
from supervisor._http._envelope import accepts, is_known_version, unsupported_version
from supervisor._http._request import McpRequest, content_refusal


def other_era_refusal(request: McpRequest) -> Refusal | None:
    """For a version outside the handshake era: None if the stateless path serves it.

    Any unknown version is answered as the SDK's request ladder answers one: -32022 (400) with
    the ladder's data and the request's id, whatever the body.
    """
    version = request.protocol_version
    assert version is not None
    if is_known_version(version):
        if request.method != "POST":
            return refusals.post_only()
        if not accepts(request.accept, json_response=True, method="POST"):
            return refusals.json_not_accepted()
        return content_refusal(request)
    message, data = unsupported_version(version)
    return refusals.unsupported_version(message, data, request.request_id)


class StatelessRoute:
    """Serves the other era's requests through the supervisor's stateless nursery."""

    def __init__(self, supervisor: SessionSupervisor, dispatcher: Dispatcher) -> None:
        self._supervisor = supervisor
        self._dispatcher = dispatcher
        self._retry_after = supervisor.config.retry_after

    async def serve(self, request: McpRequest, receive: Receive, send: Send) -> None:
        refusal = other_era_refusal(request)
        if refusal is not None:
            await self._dispatcher.refuse(send, refusal)
            return
        request_id = request.request_id
        exchange = self._dispatcher.exchange(request, send, Handover())
        ticket = exchange.ticket
        message = handover_of(request, exchange)
        if not self._supervisor.submit_stateless(message):
            await self._dispatcher.refuse(send, refusals.shutting_down(request_id, self._retry_after))
            return
        await self._dispatcher.await_ticket(exchange, receive, None)
        self._supervisor.record_outcome(ticket.outcome, stateless=True)
        await exchange.answer_unfinished(*refusals.stopped_in_flight(), request_id)
