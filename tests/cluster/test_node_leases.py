"""Coordination that costs per node, not per session (issue 26.1): a node renews one membership
key, however many sessions it holds, and a record held awake past its keep is kept again, once.
Real redis-server and nodes (2 s lease: a round every 2/3 s)."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
import trio

from tests.cluster.test_cluster_basics import answer_text, auth, call_where
from tests.support.cluster import Cluster, eventually, have_cluster_tools, running_cluster
from tests.support.helpers import open_session

pytestmark = pytest.mark.skipif(
    not have_cluster_tools() and not os.environ.get("CI"), reason="needs redis-server and haproxy"
)


async def _redis_commands(cluster: Cluster) -> int:
    """Every command Redis ran (those inside scripts included), but the INFO that asks."""
    info = await cluster.redis.command("INFO", "commandstats")
    return sum(
        int(line.split("calls=")[1].split(",")[0])
        for line in info.splitlines()
        if line.startswith("cmdstat_") and not line.startswith("cmdstat_info")
    )


async def _rounds(cluster: Cluster) -> int:
    stats = (await cluster.nodes[0].admin("GET", "/admin/stats")).json()
    return int(stats["cluster"]["store"]["operations"].get("member", 0))


async def test_an_idle_node_renews_one_key_however_many_sessions_it_holds(tmp_path: Path) -> None:
    async with running_cluster(tmp_path, count=1, admin_bind=True) as cluster:
        (a,) = cluster.nodes
        async with httpx.AsyncClient(timeout=30, headers=auth()) as http:
            sessions = [await open_session(http, f"{a.url}/mcp") for _ in range(40)]
            for session_id in sessions:
                assert answer_text(await call_where(http, f"{a.url}/mcp", session_id)) == "a"
        rounds, commands = await _rounds(cluster), await _redis_commands(cluster)
        while await _rounds(cluster) < rounds + 4:  # noqa: ASYNC110 (the node's own rounds)
            await trio.sleep(0.2)
        rounds_seen = await _rounds(cluster) - rounds
        ran = await _redis_commands(cluster) - commands
        held = (await a.admin("GET", "/admin/stats")).json()["cluster"]["leases"]
    assert held == 40
    # A round is one script (a GET and a PEXPIRE in it); with a lease per session renewed each
    # round, 40 sessions made some 120 commands a round.
    assert ran <= 4 * rounds_seen + 10, (ran, rounds_seen)


async def test_a_record_held_awake_past_its_keep_is_kept_again(tmp_path: Path) -> None:
    """Idle timeout 3 s: a record of an awake session keeps 3 s + the 2 s lease. A session in use
    for longer has no write of its record (calls never write it), yet its record is still there,
    kept by the node before its end."""
    async with running_cluster(tmp_path, count=1, extra=("--idle-timeout", "3")) as cluster:
        (a,) = cluster.nodes
        async with httpx.AsyncClient(timeout=30, headers=auth()) as http:
            session_id = await open_session(http, f"{a.url}/mcp")
            record = f"mcp-supervisor:rec:{session_id}"
            for _ in range(9):  # in use for 9 s: a call a second
                assert answer_text(await call_where(http, f"{a.url}/mcp", session_id)) == "a"
                await trio.sleep(1.0)
            assert await cluster.redis.command("EXISTS", record) == "1"
            assert int(await cluster.redis.command("PTTL", record)) > 0


async def test_after_a_round_that_missed_the_store_every_held_record_is_checked(tmp_path: Path) -> None:
    """As after a failover to a replica that missed the last writes: the membership is there, a
    held session's record is not. The first round that reaches the store again checks every held
    lease and writes the missing record back."""
    # A 6 s membership renewed every 2 s: one round misses the store, and the membership is
    # still there when the next one reaches it (so the check comes from the missed round alone).
    async with running_cluster(tmp_path, count=1, linked=("a",), extra=("--lease-ttl", "6")) as cluster:
        (a,) = cluster.nodes
        async with httpx.AsyncClient(timeout=30, headers=auth()) as http:
            session_id = await open_session(http, f"{a.url}/mcp")
            record = f"mcp-supervisor:rec:{session_id}"
            rounds = await _rounds(cluster)
            cluster.links["a"].cut()
            while await _rounds(cluster) < rounds + 1:  # noqa: ASYNC110 (a round that misses the store)
                await trio.sleep(0.1)
            await cluster.redis.command("DEL", record)
            assert await cluster.redis.command("EXISTS", "mcp-supervisor:member:a") == "1"
            cluster.links["a"].mend()

            async def written_again() -> bool:
                return await cluster.redis.command("EXISTS", record) == "1"

            await eventually(written_again)
            assert answer_text(await call_where(http, f"{a.url}/mcp", session_id)) == "a"
