"""Redis that is itself highly available (issue 26.2): the nodes reach a primary with a replica
through Redis Sentinel (`--redis-mode sentinel`). Sessions open, move and survive a node's
SIGKILL; a SIGKILL of the Redis primary fails over with no awake session lost and no call hung,
and sessions move again on the new primary. Real redis-server primary, replica and three
sentinels, haproxy and nodes."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import trio

from tests.cluster.test_cluster_basics import answer_text, auth, call_where
from tests.cluster.test_store_tls import certificate
from tests.support.cluster import (
    Cluster,
    eventually,
    free_port,
    have_cluster_tools,
    running_cluster,
    started,
)
from tests.support.helpers import open_session
from tests.support.sentinel import SERVICE, Sentinels

pytestmark = pytest.mark.skipif(
    not have_cluster_tools() and not os.environ.get("CI"), reason="needs redis-server and haproxy"
)

SENTINEL_FLAGS = ("--redis-mode", "sentinel", "--redis-sentinel-master", SERVICE)


@pytest.fixture
async def sentinels(tmp_path: Path) -> AsyncIterator[Sentinels]:
    async with started(Sentinels(tmp_path)) as running:
        yield running


@pytest.fixture
async def cluster(tmp_path: Path, sentinels: Sentinels) -> AsyncIterator[Cluster]:
    """Two nodes and haproxy, the nodes given a sentinel as their store."""
    store = (sentinels.primary, sentinels.url)
    async with running_cluster(tmp_path, count=2, extra=SENTINEL_FLAGS, store=store) as running:
        yield running


async def test_sessions_open_move_and_survive_a_node_kill_through_sentinel(cluster: Cluster) -> None:
    a, b = cluster.nodes
    async with httpx.AsyncClient(timeout=30, headers=auth()) as http:
        moving = await open_session(http, f"{a.url}/mcp")
        staying = await open_session(http, f"{a.url}/mcp")
        assert answer_text(await call_where(http, f"{a.url}/mcp", staying)) == "a"
        assert answer_text(await call_where(http, f"{b.url}/mcp", moving)) == "b"  # a move
        assert a.server is not None
        a.server.process.send_signal(signal.SIGKILL)
        await a.server.process.wait()
        assert answer_text(await call_where(http, cluster.haproxy.url, staying)) == "b"
        assert answer_text(await call_where(http, cluster.haproxy.url, moving)) == "b"


async def test_a_primary_killed_fails_over_and_no_awake_session_is_lost(
    cluster: Cluster, sentinels: Sentinels
) -> None:
    a, b = cluster.nodes
    async with httpx.AsyncClient(timeout=30, headers=auth()) as http:
        on_a = [await open_session(http, f"{a.url}/mcp") for _ in range(3)]
        on_b = [await open_session(http, f"{b.url}/mcp") for _ in range(3)]
        spare = await open_session(http, f"{a.url}/mcp")
        answers: list[tuple[str, int, float]] = []
        failed_over = trio.Event()

        async def keep_calling(node_url: str, session_id: str) -> None:
            while not failed_over.is_set():
                started = trio.current_time()
                response = await call_where(http, f"{node_url}/mcp", session_id)
                answers.append((session_id, response.status_code, trio.current_time() - started))
                await trio.sleep(0.05)

        async with trio.open_nursery() as nursery:
            for node, ids in ((a, on_a), (b, on_b)):
                for session_id in ids:
                    nursery.start_soon(keep_calling, node.url, session_id)
            old = sentinels.primary.port
            await sentinels.primary.stop()  # SIGKILL
            # A request that needs the store while there is no primary (a session held on the
            # other node: a move) is answered, retry or served, never left hanging.
            started = trio.current_time()
            needs_store = await call_where(http, f"{b.url}/mcp", spare)
            assert needs_store.status_code in (200, 503), needs_store.text
            assert trio.current_time() - started < 0.5 + 10.0

            async def promoted() -> bool:
                return await sentinels.primary_port() == sentinels.replica.port

            await eventually(promoted, timeout=30.0)
            await _store_up_on(cluster)
            failed_over.set()
        assert old != sentinels.replica.port
        # Every call on an awake session was answered, each within the store budget of the
        # failover (they need no store at all).
        assert answers and all(status == 200 for _, status, _ in answers), answers
        assert max(took for _, _, took in answers) < 0.5 + 5.0
        # On the new primary, sessions move and new ones open.
        assert answer_text(await call_where(http, f"{b.url}/mcp", on_a[0])) == "b"
        fresh = await open_session(http, f"{a.url}/mcp")
        assert answer_text(await call_where(http, f"{a.url}/mcp", fresh)) == "a"
        for session_id in on_a[1:]:
            assert answer_text(await call_where(http, f"{a.url}/mcp", session_id)) == "a"


async def test_a_sentinel_list_finds_the_primary_with_sentinels_down(
    tmp_path: Path, sentinels: Sentinels
) -> None:
    """`--redis-url` names a list: one that never answers first, then the three. The nodes start
    and serve through the others; with the first live sentinel killed too, the primary's SIGKILL
    still fails over (two sentinels are a quorum) and the nodes follow it: sessions held before
    move, and new ones open, on the new primary."""
    store = (sentinels.primary, sentinels.list_url(free_port()))
    async with running_cluster(tmp_path, count=2, extra=SENTINEL_FLAGS, store=store) as cluster:
        a, b = cluster.nodes
        async with httpx.AsyncClient(timeout=30, headers=auth()) as http:
            before = await open_session(http, f"{a.url}/mcp")
            assert answer_text(await call_where(http, f"{b.url}/mcp", before)) == "b"  # a move
            await sentinels.kill_sentinel(0)
            # A call in the meantime needs no sentinel: the node asks one only to find a primary.
            assert answer_text(await call_where(http, f"{b.url}/mcp", before)) == "b"
            await sentinels.primary.stop()  # SIGKILL

            async def promoted() -> bool:
                return await sentinels.primary_port() == sentinels.replica.port

            await eventually(promoted, timeout=30.0)
            await _store_up_on(cluster)
            assert answer_text(await call_where(http, f"{a.url}/mcp", before)) == "a"  # a move
            fresh = await open_session(http, f"{b.url}/mcp")
            assert answer_text(await call_where(http, f"{a.url}/mcp", fresh)) == "a"
        assert await sentinels.replica.command("EXISTS", f"mcp-supervisor:rec:{fresh}") == "1"


async def _store_up_on(cluster: Cluster) -> None:
    """Until every node's renewals reach the new primary again."""

    async def all_up() -> bool:
        for node in cluster.nodes:
            ready = (await node.admin("GET", "/admin/stats")).json()["cluster"]["store"]
            if not ready["up"]:
                return False
        return True

    await eventually(all_up, timeout=30.0)


async def test_a_sentinel_set_over_tls(tmp_path: Path) -> None:
    """Sentinels, primary and replica that speak only TLS: the `rediss://` URL's context checks
    the sentinel and every primary it names; sessions open and move as without TLS."""
    cert = certificate(tmp_path, "127.0.0.1", ip=True)
    async with started(Sentinels(tmp_path, tls=cert)) as sentinels:
        assert sentinels.url.startswith("rediss://")
        store = (sentinels.primary, sentinels.url)
        async with running_cluster(tmp_path, count=2, extra=SENTINEL_FLAGS, store=store) as cluster:
            a, b = cluster.nodes
            async with httpx.AsyncClient(timeout=30, headers=auth()) as http:
                session_id = await open_session(http, f"{a.url}/mcp")
                assert answer_text(await call_where(http, f"{a.url}/mcp", session_id)) == "a"
                assert answer_text(await call_where(http, f"{b.url}/mcp", session_id)) == "b"
            assert await sentinels.primary.command("EXISTS", f"mcp-supervisor:rec:{session_id}") == "1"
