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
from tests.support.servers import build_server

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
