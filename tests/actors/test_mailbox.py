"""The mailbox: requests wait in it only when they must.

An awake actor whose mailbox is empty starts a request in the handler's own step (the request is
still the incarnation's child); a request that finds others queued joins the end of the line.
"""

from __future__ import annotations

import contextvars
import json
from collections.abc import MutableMapping
from typing import Any

import trio
import trio.testing

from actors import Admission, RequestOutcome, RequestTicket, ServeRequest
from supervisor import SupervisorConfig, open_supervisor
from tests.support.helpers import mcp_headers, rpc
from tests.support.inprocess import open_in_process, post, scope_for
from tests.support.servers import Gate, build_server


def a_call(session_id: str, request_id: int, tool: str, arguments: dict[str, Any]) -> ServeRequest:
    """A tools/call as the HTTP layer hands it over, answered into nowhere."""
    body = rpc("tools/call", request_id, {"name": tool, "arguments": arguments})
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(_: MutableMapping[str, Any]) -> None:
        return None

    return ServeRequest(
        scope=scope_for("POST", mcp_headers(session_id)),
        receive=receive,
        send=send,
        context=contextvars.copy_context(),
        ticket=RequestTicket(),
        method="tools/call",
        request_id=request_id,
        body=body,
        message=json.loads(body),
        direct=True,
    )


async def test_a_request_to_an_awake_idle_session_is_in_flight_when_handed_over() -> None:
    gate = Gate()
    async with open_supervisor(build_server(gate), SupervisorConfig()) as supervisor:
        session_id = await open_in_process(supervisor)
        call = rpc("tools/call", 1, {"name": "echo", "arguments": {"text": "x"}})
        assert (await post(supervisor, call, session_id)).status == 200
        actor = supervisor.actor_of(session_id)
        assert actor is not None
        await trio.testing.wait_all_tasks_blocked()

        held = a_call(session_id, 2, "wait", {"label": "held"})
        assert await actor.submit(held, 1.0) is Admission.ACCEPTED
        # No checkpoint since: the request is in flight already, not waiting in the mailbox.
        seen = actor.statistics()
        assert (seen.in_flight, seen.queued) == (1, 0)

        # A busy session takes more the same way; each is answered, the held one once released.
        echo = a_call(session_id, 3, "echo", {"text": "2"})
        await gate.entered.wait()
        assert await actor.submit(echo, 1.0) is Admission.ACCEPTED
        assert actor.statistics().in_flight == 2
        await echo.ticket.done.wait()
        gate.release.set()
        await held.ticket.done.wait()
        assert [m.ticket.outcome for m in (held, echo)] == [RequestOutcome.COMPLETED] * 2
