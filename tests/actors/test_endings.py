"""How an actor ends, in every state it can be in: one table, every cell's reason, answers and counts.

Endings: client DELETE, idle timeout, revocation, kill, a crash of the server loop, a crash in a
tool, shutdown. States: dormant (born so by quick open), awake and idle, a request in flight, a
standalone GET stream open, hibernated. In process, on pytest-trio's autojump clock.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from supervisor import Principal, SessionSupervisor, StaticTokenVerifier, SupervisorConfig, open_supervisor
from supervisor.testing import FaultPlan, check_quiescent, check_stopped
from tests.support.helpers import initialize_body, mcp_headers, rpc
from tests.support.inprocess import scope_for
from tests.support.servers import Gate, build_server
from tests.support.sse import sse_messages

IDLE = 600.0
HIBERNATE = 10.0
TOKEN = {"authorization": "Bearer tok"}
STATES = ["dormant", "awake idle", "request in flight", "GET stream open", "hibernated"]
ENDINGS = ["client delete", "idle", "revoke", "kill", "crash in the loop", "crash in a tool", "shutdown"]
NO_LOOP = {"dormant", "hibernated"}
HELD = {"request in flight", "GET stream open"}


@attrs.define
class Answer:
    """What the client of one in-process request got (`done` once its body was complete)."""

    status: int = 0
    headers: dict[str, str] = attrs.Factory(dict)
    body: bytes = b""
    done: trio.Event = attrs.Factory(trio.Event)
    leave: trio.Event = attrs.Factory(trio.Event)
    is_call: bool = False
    """A tool call (it needs an answer naming it), not a GET stream."""

    def messages(self) -> list[dict[str, Any]]:
        if self.body.startswith(b"event:") or b"\ndata:" in self.body:
            return sse_messages(self.body)
        return [json.loads(self.body)] if self.body else []


async def request(
    supervisor: SessionSupervisor, method: str, body: bytes, session_id: str | None, answer: Answer
) -> None:
    """One request through the app; the client leaves when `answer.leave` is set."""
    delivered = False
    headers = mcp_headers(session_id)
    if method == "GET":
        headers["accept"] = "text/event-stream"

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await answer.leave.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer.status = message["status"]
            answer.headers = {k.decode().lower(): v.decode() for k, v in message.get("headers", [])}
        elif message["type"] == "http.response.body":
            answer.body += message.get("body", b"")
            if not message.get("more_body", False):
                answer.done.set()
                answer.leave.set()

    scope = scope_for(method, {**headers, **TOKEN})
    await supervisor.asgi_app(scope, receive, send)  # type: ignore[arg-type]
    answer.done.set()


async def post(supervisor: SessionSupervisor, body: bytes, session_id: str | None = None) -> Answer:
    answer = Answer()
    await request(supervisor, "POST", body, session_id, answer)
    return answer


async def open_session(supervisor: SessionSupervisor) -> str:
    """As `tests.support.inprocess.open_in_process`, with this file's bearer token on each request."""
    opened = await post(supervisor, initialize_body())
    assert opened.status == 200, opened.body
    session_id = opened.headers["mcp-session-id"]
    done = await post(supervisor, rpc("notifications/initialized", None), session_id)
    assert done.status == 202
    return session_id


@attrs.define
class Cell:
    supervisor: SessionSupervisor
    plan: FaultPlan | None
    gate: Gate
    session_id: str
    before: dict[str, int] = attrs.Factory(dict)
    """Sessions closed before the cell began (the dormant state's first session)."""
    held: Answer | None = None
    """The in-flight request or the GET stream of the state, while it lasts."""


def config_for(state: str) -> SupervisorConfig:
    return SupervisorConfig(
        idle_timeout=IDLE,
        hibernate_after=HIBERNATE if state == "hibernated" else None,
        quick_open=state == "dormant",
        token_verifier=StaticTokenVerifier({"tok": "alice"}),
        drain_grace=0.0,
    )


@asynccontextmanager
async def cell(state: str) -> AsyncIterator[Cell]:
    gate = Gate()
    plan = None if state in NO_LOOP else FaultPlan()
    async with open_supervisor(build_server(gate), config_for(state), faults=plan) as supervisor:
        if state == "dormant":
            # A first session teaches quick open the server's answer, then goes (a sync tool runs
            # in a thread, during which the autojump clock would run its idle timeout out).
            teacher = await open_session(supervisor)
            await request(supervisor, "DELETE", b"", teacher, Answer())
        session_id = await open_session(supervisor)
        here = Cell(supervisor, plan, gate, session_id, before=dict(supervisor.stats().closed))
        info = supervisor.get(session_id)
        assert info is not None
        async with trio.open_nursery() as nursery:
            if state == "request in flight":
                here.held = Answer(is_call=True)
                body = rpc("tools/call", 9, {"name": "wait", "arguments": {}})
                nursery.start_soon(request, supervisor, "POST", body, session_id, here.held)
                await gate.entered.wait()
            elif state == "GET stream open":
                here.held = Answer()
                nursery.start_soon(request, supervisor, "GET", b"", session_id, here.held)
                await trio.testing.wait_all_tasks_blocked()
                assert here.held.status == 200
            elif state == "hibernated":
                assert (await post(supervisor, rpc("ping", 2), session_id)).status == 200
                await trio.sleep(HIBERNATE + 1)
            awake = supervisor.get(session_id)
            assert awake is not None
            assert awake.awake is (state not in NO_LOOP), state
            yield here
            gate.release.set()
            if here.held is not None:
                here.held.leave.set()
    check_stopped(supervisor)


def closed(here: Cell) -> dict[str, int]:
    """Sessions closed since the cell began, by reason."""
    now = here.supervisor.stats().closed
    return {
        reason: count - here.before.get(reason, 0)
        for reason, count in now.items()
        if count > here.before.get(reason, 0)
    }


async def assert_alive(here: Cell) -> None:
    ping = await post(here.supervisor, rpc("ping", 77), here.session_id)
    assert ping.status == 200
    assert here.supervisor.get(here.session_id) is not None


async def assert_held_ended_with_an_error(here: Cell) -> None:
    """The request in flight got exactly one answer, an error naming it; an open stream ended."""
    if here.held is None:
        return
    with trio.fail_after(30):
        await here.held.done.wait()
    if not here.held.is_call:
        assert here.held.status == 200  # the GET stream ended with a proper end of body
        return
    [answer] = [m for m in here.held.messages() if m.get("id") == 9]
    assert "error" in answer, answer


Ending = Callable[[Cell, str], Awaitable[None]]


async def client_delete(here: Cell, state: str) -> None:
    answer = Answer()
    await request(here.supervisor, "DELETE", b"", here.session_id, answer)
    assert answer.status == 200
    await assert_held_ended_with_an_error(here)
    assert closed(here) == {"client_delete": 1}


async def idle(here: Cell, state: str) -> None:
    await trio.sleep(IDLE * 2)
    if state in HELD:
        # A request in flight, or an open stream, holds the session however long it takes.
        await assert_alive(here)
        here.gate.release.set()
        assert here.held is not None
        if state == "GET stream open":
            here.held.leave.set()
        with trio.fail_after(IDLE):
            await here.held.done.wait()
        if state == "request in flight":
            [answer] = [m for m in here.held.messages() if m.get("id") == 9]
            assert answer["result"]["content"][0]["text"] == "released "
        await trio.sleep(IDLE * 2)
    assert here.supervisor.get(here.session_id) is None
    assert closed(here) == {"idle": 1}


async def revoke(here: Cell, state: str) -> None:
    assert await here.supervisor.close_sessions_for(Principal(client_id="alice"), grace=0) == 1
    await assert_held_ended_with_an_error(here)
    assert closed(here) == {"revoked": 1}
    assert here.supervisor.get(here.session_id) is None


async def kill(here: Cell, state: str) -> None:
    assert here.supervisor.kill(here.session_id)
    await assert_held_ended_with_an_error(here)
    with trio.fail_after(30):
        while here.supervisor.get(here.session_id) is not None:
            await trio.testing.wait_all_tasks_blocked()
    assert closed(here) == {"killed": 1}


async def crash_in_the_loop(here: Cell, state: str) -> None:
    if state in NO_LOOP:
        # No loop to crash: the session simply lives on (and wakes when asked).
        await assert_alive(here)
        assert closed(here) == {}
        return
    assert here.plan is not None
    here.plan.crash_now(here.session_id)
    await assert_held_ended_with_an_error(here)
    with trio.fail_after(30):
        while here.supervisor.get(here.session_id) is not None:
            await trio.testing.wait_all_tasks_blocked()
    assert closed(here) == {"crashed": 1}


async def crash_in_a_tool(here: Cell, state: str) -> None:
    exploded = await post(here.supervisor, rpc("tools/call", 5, {"name": "explode"}), here.session_id)
    [answer] = [m for m in exploded.messages() if m.get("id") == 5]
    assert answer["result"]["isError"] is True
    await assert_alive(here)
    assert closed(here) == {}
    if here.held is not None:
        assert not here.held.done.is_set()


async def shutdown(here: Cell, state: str) -> None:
    await here.supervisor.shutdown(grace=0)
    await assert_held_ended_with_an_error(here)
    assert closed(here) == {"shutdown": 1}


HANDLERS: dict[str, Ending] = {
    "client delete": client_delete,
    "idle": idle,
    "revoke": revoke,
    "kill": kill,
    "crash in the loop": crash_in_the_loop,
    "crash in a tool": crash_in_a_tool,
    "shutdown": shutdown,
}


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("ending", ENDINGS)
async def test_every_ending_in_every_state(
    ending: str, state: str, autojump_clock: trio.testing.MockClock
) -> None:
    async with cell(state) as here:
        before = here.supervisor.stats().created
        await HANDLERS[ending](here, state)
        stats = here.supervisor.stats()
        assert stats.created == before
        assert stats.created == stats.live + stats.total_closed
        if here.supervisor.get(here.session_id) is not None and ending != "crash in a tool":
            check_quiescent(here.supervisor)
