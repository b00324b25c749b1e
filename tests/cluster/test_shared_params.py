"""A record has a bounded size whatever the client sent (issue 26): long `initialize` params are
stored once per distinct value, and the record names them. Against a real redis-server."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest

from actors import CloseReason
from actors._record import Principal, SessionRecord, new_record
from supervisor import StoreSettings
from supervisor._cluster._cluster_secret import ClusterSecret
from supervisor._cluster._redis_connect import open_store
from supervisor._cluster._redis_records import INLINE_LIMIT
from supervisor._cluster._redis_store import RedisStore
from tests.support.cluster import Redis, have_cluster_tools
from tests.support.helpers import PROTOCOL, rpc
from tests.support.inprocess import post, two_nodes

pytestmark = pytest.mark.skipif(
    not have_cluster_tools() and not os.environ.get("CI"), reason="needs redis-server"
)

LARGE: dict[str, object] = {
    "protocolVersion": PROTOCOL,
    "capabilities": {"experimental": {"big": {"schema": "x" * 8192}}},
    "clientInfo": {"name": "large-client", "version": "1"},
}
SECRET = ClusterSecret((b"k" * 40,))


def large_record(number: int) -> SessionRecord:
    return new_record(f"a.{number:032d}", Principal("alice"), LARGE)


@pytest.fixture(params=[None, SECRET], ids=["plain", "sealed"])
async def nodes(redis: Redis, request: pytest.FixtureRequest) -> AsyncIterator[list[RedisStore]]:
    settings = StoreSettings(redis_url=redis.url, lease_ttl=2.0, secret=request.param)
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(open_store(settings, name)) for name in ("a", "b")]


async def keys(redis: Redis, kind: str) -> list[str]:
    return (await redis.command("--scan", "--pattern", f"*:{kind}:*")).split()


async def test_sessions_with_the_same_long_params_share_one_key(
    nodes: list[RedisStore], redis: Redis
) -> None:
    a, b = nodes
    records = [large_record(number) for number in range(3)]
    for record in records:
        assert await a.put(record, 0, ttl=60) > 0
    assert len(await keys(redis, "params")) == 1
    for record_key in await keys(redis, "rec"):
        assert int(await redis.command("MEMORY", "USAGE", record_key)) < 1024
    # Another node, which has never seen the params, reads every record whole: one read of the
    # params, then none (its cache).
    loaded = await b.load_many([record.session_id for record in records])
    assert [found for found, _ in loaded] == records
    assert b.health().operations["params"] == 1
    assert (await b.load(records[0].session_id))[0] == records[0]
    assert b.health().operations["params"] == 1
    assert json.loads(records[0].client_params or "") == LARGE


async def test_short_params_stay_in_the_record(nodes: list[RedisStore], redis: Redis) -> None:
    a, b = nodes
    small = new_record("a." + "5" * 32, Principal("alice"), {"protocolVersion": PROTOCOL, "capabilities": {}})
    assert len(small.client_params or "") <= INLINE_LIMIT
    await a.put(small, 0, ttl=60)
    assert await keys(redis, "params") == []
    assert (await b.load(small.session_id))[0] == small


async def test_a_record_that_never_expires_keeps_its_params(nodes: list[RedisStore], redis: Redis) -> None:
    """No idle timeout: a record lives until its session ends, and nothing would tell when no
    record names shared params any more, so such a record keeps its params inline."""
    a, b = nodes
    record = large_record(8)
    await a.put(record, 0, ttl=None)
    assert await keys(redis, "params") == []
    assert (await b.load(record.session_id))[0] == record


async def test_shared_params_live_as_long_as_the_records_that_name_them(
    nodes: list[RedisStore], redis: Redis
) -> None:
    a, b = nodes
    record = large_record(7)
    epoch = await a.put(record, 0, ttl=60)
    [params_key] = await keys(redis, "params")
    assert int(await redis.command("PTTL", params_key)) > 55_000
    # The holder keeps its records near their end; the params it names are kept as long.
    assert await a.renew([(record.session_id, epoch)], 600) == ([], [])
    assert int(await redis.command("PTTL", params_key)) > 590_000
    # Redis lost them (a failover before they reached the replica): the holder writes them again.
    await redis.command("DEL", params_key)
    await a.renew([(record.session_id, epoch)], 900)
    assert int(await redis.command("PTTL", params_key)) > 890_000
    assert (await b.load(record.session_id))[0] == record


async def test_params_changed_in_redis_make_the_record_unreadable(
    nodes: list[RedisStore], redis: Redis
) -> None:
    a, b = nodes
    record = large_record(9)
    await a.put(record, 0, ttl=60)
    [params_key] = await keys(redis, "params")
    changed = json.dumps({**LARGE, "clientInfo": {"name": "someone-else", "version": "1"}})
    await redis.command("SET", params_key, changed)
    assert (await b.load(record.session_id))[0] is None
    assert b.health().refused == {"params": 1}
    await redis.command("DEL", params_key)
    assert (await b.load(record.session_id))[0] is None


async def test_a_client_with_long_params_is_woken_on_another_node_as_it_was(redis: Redis) -> None:
    async with two_nodes(redis.url) as (n1, n2):
        opened = await post(n1, rpc("initialize", 1, LARGE))
        assert opened.status == 200, opened.body
        session_id = opened.headers["mcp-session-id"]
        assert (await post(n1, rpc("notifications/initialized", None), session_id)).status == 202
        assert await n1.close_session(session_id, reason=CloseReason.EVICTED)
        assert len(await keys(redis, "params")) == 1
        answer = await post(n2, rpc("tools/call", 2, {"name": "client_name", "arguments": {}}), session_id)
        assert answer.status == 200, answer.body
        assert answer.messages()[-1]["result"]["content"][0]["text"] == "large-client"
        await n1.shutdown()
