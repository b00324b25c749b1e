"""Redis that is itself sharded (issue 26.2): the nodes keep their sessions in a Redis Cluster of
three primaries (`--redis-mode cluster`). A session's keys share one slot (its id is their hash
tag), so every script touches one shard; sessions open, move and survive a node's SIGKILL;
listing and revocation, which span slots, work across the shards. Real redis-server processes
joined with `redis-cli --cluster create`, haproxy and nodes."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.cluster.test_cluster_basics import answer_text, auth, call_where
from tests.cluster.test_store_tls import certificate
from tests.support.cluster import Cluster, have_cluster_tools, running_cluster, started
from tests.support.helpers import open_session
from tests.support.redis_cluster import RedisCluster

pytestmark = pytest.mark.skipif(
    not have_cluster_tools() and not os.environ.get("CI"), reason="needs redis-server and haproxy"
)


@pytest.fixture
async def shards(tmp_path: Path) -> AsyncIterator[RedisCluster]:
    async with started(RedisCluster(tmp_path)) as running:
        yield running


@pytest.fixture
async def cluster(tmp_path: Path, shards: RedisCluster) -> AsyncIterator[Cluster]:
    store = (shards.shards[0], shards.url)
    async with running_cluster(tmp_path, count=2, extra=("--redis-mode", "cluster"), store=store) as running:
        yield running


async def test_sessions_open_move_and_survive_a_node_kill_on_a_redis_cluster(
    cluster: Cluster, shards: RedisCluster
) -> None:
    a, b = cluster.nodes
    async with httpx.AsyncClient(timeout=30, headers=auth()) as http:
        ids = [await open_session(http, f"{a.url}/mcp") for _ in range(6)]
        for session_id in ids:
            assert answer_text(await call_where(http, f"{a.url}/mcp", session_id)) == "a"
        assert answer_text(await call_where(http, f"{b.url}/mcp", ids[0])) == "b"  # a move
        # Each session's record, lease and epoch are on one shard; the sessions on several.
        holding = set()
        for session_id in ids:
            on = [
                index
                for index, shard in enumerate(shards.shards)
                if await shard.command("EXISTS", f"mcp-supervisor:rec:{{{session_id}}}") == "1"
            ]
            assert len(on) == 1, on
            shard = shards.shards[on[0]]
            for kind in ("lease", "epoch"):
                assert await shard.command("EXISTS", f"mcp-supervisor:{kind}:{{{session_id}}}") == "1"
            holding.add(on[0])
        assert len(holding) > 1
        assert a.server is not None
        a.server.process.send_signal(signal.SIGKILL)
        await a.server.process.wait()
        for session_id in ids:
            assert answer_text(await call_where(http, cluster.haproxy.url, session_id)) == "b"


async def test_listing_and_revocation_span_the_shards(cluster: Cluster) -> None:
    a, b = cluster.nodes
    async with httpx.AsyncClient(timeout=30, headers=auth()) as http:
        ids = {await open_session(http, f"{node.url}/mcp") for node in (a, b, a, b)}
        listed = (await a.admin("GET", "/admin/sessions?scope=cluster")).json()
        assert {entry["session_id"] for entry in listed["sessions"]} >= ids
        revoked = await b.admin("POST", "/admin/revoke", json={"principal": "alice"})
        assert revoked.status_code == 200, revoked.text
        for session_id in ids:
            for node in (a, b):
                assert (await call_where(http, f"{node.url}/mcp", session_id)).status_code == 404


async def test_a_redis_cluster_over_tls(tmp_path: Path) -> None:
    """A sharded store that speaks only TLS (as managed Redis Clusters do): the seed node's
    `rediss://` URL and its CA reach every shard the client finds, the bus runs over TLS too, and
    sessions open and move as on the plain one."""
    cert = certificate(tmp_path, "127.0.0.1", ip=True)
    async with started(RedisCluster(tmp_path, tls=cert)) as shards:
        assert shards.url.startswith("rediss://")
        extra = ("--redis-mode", "cluster")
        async with running_cluster(
            tmp_path, count=2, extra=extra, store=(shards.shards[0], shards.url)
        ) as cluster:
            a, b = cluster.nodes
            async with httpx.AsyncClient(timeout=30, headers=auth()) as http:
                ids = [await open_session(http, f"{a.url}/mcp") for _ in range(4)]
                for session_id in ids:
                    assert answer_text(await call_where(http, f"{b.url}/mcp", session_id)) == "b"
            assert len(await shards.keys("mcp-supervisor:rec:*")) == 4
