"""A request that reaches a session in the instant its eviction falls due is served, never lost
(issue 23.4): the eviction waits for every request the session has taken in, one queued in its
mailbox included. The clock is trio's MockClock, moved by hand to each side of the deadline (and on by
itself only once everything has waited a while); the store is a real redis-server."""

from __future__ import annotations

import os

import pytest
import trio
import trio.lowlevel
import trio.testing

from supervisor import StoreSettings, SupervisorConfig, open_supervisor
from tests.support.cluster import Redis, have_cluster_tools
from tests.support.helpers import rpc
from tests.support.inprocess import open_in_process, post
from tests.support.servers import build_server, state_keeping_server

pytestmark = pytest.mark.skipif(
    not have_cluster_tools() and not os.environ.get("CI"), reason="needs redis-server"
)

EVICT = 5.0


@pytest.fixture
def clock() -> trio.testing.MockClock:
    """Jumps only when every task has waited 50 ms of real time: a store round trip never
    sees its budget run out, and a countdown needs no real waiting."""
    return trio.testing.MockClock(autojump_threshold=0.05)


@pytest.mark.parametrize("offset", [-0.001, 0.0, 0.001])
async def test_a_request_at_the_eviction_deadline_is_answered(
    redis: Redis, clock: trio.testing.MockClock, offset: float
) -> None:
    store = StoreSettings(redis_url=redis.url, evict_after=EVICT, lease_ttl=600.0)
    config = SupervisorConfig(store=store, node_id="n1", json_response=True)
    async with open_supervisor(build_server(), config) as supervisor:
        for round_ in range(20):
            session_id = await open_in_process(supervisor)
            await trio.testing.wait_all_tasks_blocked()
            call = rpc("tools/call", round_, {"name": "echo", "arguments": {"text": "at the deadline"}})
            # To each side of the deadline, at once; the store's round trips are real.
            clock.jump(EVICT + offset)
            answer = await post(supervisor, call, session_id)
            assert answer.status == 200, answer.body
            message = answer.messages()[-1]
            assert message["id"] == round_
            assert message["result"]["content"][0]["text"] == "at the deadline"
        if offset > 0:
            assert supervisor.stats().closed.get("evicted", 0) > 0, "the deadline was raced"
        await supervisor.shutdown()


async def test_a_session_whose_server_keeps_connection_state_is_never_evicted(
    redis: Redis, clock: trio.testing.MockClock
) -> None:
    """Eviction comes from dormancy: a session that may not hibernate (its server keeps state on
    its connection, which a fresh loop would not have) is not evicted either; a plain one is."""
    store = StoreSettings(redis_url=redis.url, evict_after=EVICT, lease_ttl=600.0)
    config = SupervisorConfig(store=store, node_id="n1", json_response=True)
    async with open_supervisor(state_keeping_server(), config) as supervisor:
        keeping = await open_in_process(supervisor)
        plain = await open_in_process(supervisor)
        for request_id, (session_id, tool) in enumerate(((keeping, "keep"), (plain, "plain")), start=2):
            call = rpc("tools/call", request_id, {"name": tool, "arguments": {}})
            assert (await post(supervisor, call, session_id)).status == 200
        for _ in range(3):
            clock.jump(EVICT)
            await trio.testing.wait_all_tasks_blocked()
        await trio.sleep(1)  # the store's round trips are real: let the eviction finish
        info = supervisor.get(keeping)
        assert info is not None and info.awake
        assert supervisor.get(plain) is None
        assert supervisor.stats().closed == {"evicted": 1}
        await supervisor.shutdown()
