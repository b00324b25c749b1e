"""One request's task inside an incarnation: hand it over, see how it ended, tidy up.

The task runs in the request nursery of the incarnation that was live when it started. It goes
to direct answers when the HTTP layer decided so and they are there, else to the SDK transport.
A client that leaves cancels the task only for streams (see `RequestTicket.client_left`); a
request whose task is cancelled that way is also cancelled in the loop, as a client would do it.
"""

from __future__ import annotations

from actors._asyncio import BRIDGE
from actors._direct_answers import as_request
from actors._faults import before_handoff
from actors._incarnation import Incarnation, Owner
from actors._inject import cancellation
from actors._log import SERVING
from actors._messages import RequestTicket, ServeRequest
from actors._polling import PollingTransport
from actors._reasons import RequestOutcome


def _ended(ticket: RequestTicket) -> RequestOutcome:
    """How a request that ran to its end ended: answered, or answered to a client that had left."""
    return RequestOutcome.CLIENT_GONE if ticket.client_left else RequestOutcome.COMPLETED


async def serve_request(incarnation: Incarnation, owner: Owner, message: ServeRequest) -> None:
    """The body of one request task; always finishes the ticket."""
    SERVING.set(owner)
    BRIDGE.set(incarnation.asyncio)
    ticket = message.ticket
    outcome = RequestOutcome.ABORTED
    try:
        with ticket.cancel_scope:
            outcome = await _handoff(incarnation, owner, message)
        if ticket.cancel_scope.cancelled_caught:
            # Cancelled through the ticket: the client left, or a drain ended its stream.
            outcome = RequestOutcome.CLIENT_GONE if not ticket.is_stream else RequestOutcome.COMPLETED
            if outcome is RequestOutcome.CLIENT_GONE and message.request_id is not None and not owner.closing:
                # Cancelling our task only stops waiting for the answer; the handler runs in the
                # SDK's loop. A `notifications/cancelled` through the front door stops it.
                await incarnation.post(cancellation(message.request_id), message.scope)
    except* Exception:
        # The SDK can raise a group (its own task group) when the loop dies under a request;
        # a Cancelled in the same group still propagates.
        if not owner.closing:
            owner.log.exception("transport raised while serving a request")
            outcome = RequestOutcome.FAILED
        else:
            # The session is closing and its loop went away under the request: that is the
            # close's doing, answered as such, not a failure of the request.
            owner.log.debug("transport gave up on a request while the session closed")
            outcome = RequestOutcome.ABORTED
    finally:
        ticket.finish(outcome)
        if incarnation.streams is not None:
            incarnation.streams.discard(ticket)
        owner.request_finished(ticket)


async def _handoff(incarnation: Incarnation, owner: Owner, message: ServeRequest) -> RequestOutcome:
    send = message.send
    faults = incarnation.faults
    if faults is not None:
        send = await before_handoff(faults, owner, message)
        if owner.closing:
            # Closing began at the fault point: the loop may be gone already.
            return RequestOutcome.REJECTED
    transport = incarnation.transport
    direct = incarnation.direct
    if message.direct and direct is not None and not transport.is_terminated:
        request = as_request(message.message)
        if request is not None:
            # Direct answers wait for the loop's answer even if the client has left.
            await direct.answer(request, message.scope, message.receive, send)
            return _ended(message.ticket)
        # Not a valid request after all: the transport answers it with its own 400.
    watch = incarnation.watch if message.request_id is not None else None
    answered = watch.watch(message.request_id) if watch is not None else None
    try:
        if isinstance(transport, PollingTransport) and message.request_id is not None:
            try:
                watched = transport.watch(message.request_id, send)
                await transport.handle_request(message.scope, message.receive, watched)
            finally:
                transport.unwatch(message.request_id)
        else:
            await transport.handle_request(message.scope, message.receive, send)
        if answered is not None and message.ticket.client_left:
            # The transport stopped streaming when the client left; the request runs on in the
            # loop (stored for resumption) and stays in flight until it is settled.
            await answered.wait()
    finally:
        if watch is not None and answered is not None:
            watch.unwatch(message.request_id, answered)
    return _ended(message.ticket)
