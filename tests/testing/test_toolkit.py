"""The testing toolkit itself, and the downstream example of docs/testing.md kept true."""

from __future__ import annotations

import httpx
import pytest
import trio
from mcp import Client, MCPError
from mcp.server.mcpserver import MCPServer

from supervisor import SupervisorConfig
from supervisor.testing import FaultPlan, FaultPoint, check_quiescent, serve_for_test, settle
from tests.support.helpers import mcp_headers, open_session, rpc
from tests.support.servers import Gate, build_server

# --- the example from docs/testing.md, verbatim between the markers ---------------------------
# example:start
my_server = MCPServer("my-server")


@my_server.tool()
async def slow_report(name: str) -> str:
    await trio.sleep(1)
    return f"report for {name}"


async def test_kill_mid_tool_call_answers_and_leaks_nothing() -> None:
    plan = FaultPlan()
    plan.kill_at(FaultPoint.TOOL_RUNNING)
    async with serve_for_test(my_server, faults=plan) as served:
        async with Client(served.url, mode="legacy") as client:
            with pytest.raises(MCPError, match="killed"):
                await client.call_tool("slow_report", {"name": "q3"})
        await settle(served.supervisor)
        check_quiescent(served.supervisor, sessions=0)
        assert served.supervisor.stats().closed == {"killed": 1}


# example:end


async def test_a_rule_fires_once_and_only_for_its_session(http: httpx.AsyncClient) -> None:
    plan = FaultPlan()
    async with serve_for_test(build_server(), SupervisorConfig(json_response=True), faults=plan) as served:
        spared = await open_session(http, served.url)
        target = await open_session(http, served.url)
        plan.kill_at(FaultPoint.BEFORE_HANDOFF, target)
        assert plan.armed == 1
        ok = await http.post(served.url, content=rpc("ping", 1), headers=mcp_headers(spared))
        assert ok.status_code == 200
        assert plan.armed == 1
        killed = await http.post(served.url, content=rpc("ping", 2), headers=mcp_headers(target))
        assert killed.status_code == 404
        await plan.fired(FaultPoint.BEFORE_HANDOFF)
        assert plan.armed == 0
        actions = [
            (hit.session_id, hit.action) for hit in plan.hits if hit.point is FaultPoint.BEFORE_HANDOFF
        ]
        assert (target, plan.hits[-1].action) in actions
        assert all(action is None for session_id, action in actions if session_id == spared)


async def test_check_quiescent_names_what_is_left(http: httpx.AsyncClient) -> None:
    gate = Gate()
    async with serve_for_test(build_server(gate)) as served:
        session_id = await open_session(http, served.url)
        await settle(served.supervisor)
        check_quiescent(served.supervisor, sessions=1)
        with pytest.raises(AssertionError, match="1 live session"):
            check_quiescent(served.supervisor, sessions=0)
        body = rpc("tools/call", 3, {"name": "wait", "arguments": {}})
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: http.post(served.url, content=body, headers=mcp_headers(session_id)))
            await gate.entered.wait()
            with pytest.raises(AssertionError, match="in flight"):
                check_quiescent(served.supervisor)
            gate.release.set()
        await settle(served.supervisor)
        check_quiescent(served.supervisor, sessions=1)
