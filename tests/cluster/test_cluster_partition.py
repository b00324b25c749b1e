"""One node cut off from Redis (a real TCP link, cut), and Redis down, under both fencing modes.

Strict fencing: the cut-off node stops serving its session while its lease still names it in
Redis, so it has let go before any other node can take it. Available (the default): it serves
on, and another node takes the session once the lease lapses; both answer for a while, until the
link is back and the first renewal fences the cut-off node (docs/scale-out.md's failure table).
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from tests.cluster.test_cluster_basics import answer_text, auth, call_where
from tests.support.cluster import Cluster, Node, eventually, have_cluster_tools, running_cluster
from tests.support.helpers import open_session

pytestmark = pytest.mark.skipif(
    not have_cluster_tools() and not os.environ.get("CI"), reason="needs redis-server and haproxy"
)


async def _live_on(node: Node, session_id: str) -> bool:
    return (await node.admin("GET", f"/admin/sessions/{session_id}")).status_code == 200


async def _lease(cluster: Cluster, session_id: str) -> str:
    return await cluster.redis.command("GET", f"mcp-supervisor:lease:{session_id}")


async def test_strict_a_cut_off_node_lets_go_while_its_lease_still_names_it(tmp_path: Path) -> None:
    extra = ("--fencing", "strict")
    async with running_cluster(tmp_path, count=2, extra=extra, linked=("a",)) as cluster:
        a, b = cluster.nodes
        async with httpx.AsyncClient(timeout=30, headers=auth()) as http:
            session_id = await open_session(http, f"{a.url}/mcp")
            assert answer_text(await call_where(http, f"{a.url}/mcp", session_id)) == "a"
            cluster.links["a"].cut()
            seen_letting_go: list[str] = []

            async def let_go() -> bool:
                if await _live_on(a, session_id):
                    return False
                seen_letting_go.append(await _lease(cluster, session_id))  # read right after
                return True

            await eventually(let_go, timeout=5.0)
            # a no longer serves it, and the lease in Redis is still a's: nobody else has it yet.
            assert seen_letting_go[-1].startswith("a "), seen_letting_go
            refused = await call_where(http, f"{a.url}/mcp", session_id)
            assert refused.status_code == 503 and "retry-after" in refused.headers
            assert refused.json()["error"]["code"] < 0
            # b waits for the lease to lapse (a does not answer its ask), then serves it.
            assert answer_text(await call_where(http, f"{b.url}/mcp", session_id)) == "b"
            assert not await _live_on(a, session_id)
            cluster.links["a"].mend()
            # Back on the link, a takes it over again on request, from its record.
            assert answer_text(await call_where(http, f"{a.url}/mcp", session_id)) == "a"
            stats = (await a.admin("GET", "/admin/stats")).json()
        assert stats["closed"].get("fenced") == 1 and stats["cluster"]["fenced"] == 1


async def test_available_a_cut_off_node_serves_on_until_it_is_back(tmp_path: Path) -> None:
    async with running_cluster(tmp_path, count=2, linked=("a",)) as cluster:
        a, b = cluster.nodes
        async with httpx.AsyncClient(timeout=30, headers=auth()) as http:
            session_id = await open_session(http, f"{a.url}/mcp")
            assert answer_text(await call_where(http, f"{a.url}/mcp", session_id)) == "a"
            cluster.links["a"].cut()
            # b takes it once a's lease lapses; a, cut off, still serves its actor meanwhile.
            assert answer_text(await call_where(http, f"{b.url}/mcp", session_id)) == "b"
            assert (await _lease(cluster, session_id)).startswith("b ")
            assert answer_text(await call_where(http, f"{a.url}/mcp", session_id)) == "a"
            cluster.links["a"].mend()

            async def fenced() -> bool:
                return not await _live_on(a, session_id)

            await eventually(fenced)  # a's first renewal back on the link finds b's epoch
            assert answer_text(await call_where(http, f"{b.url}/mcp", session_id)) == "b"


async def test_strict_a_redis_outage_refuses_held_sessions_and_they_come_back(tmp_path: Path) -> None:
    extra = ("--fencing", "strict")
    async with running_cluster(tmp_path, count=1, extra=extra) as cluster:
        (a,) = cluster.nodes
        async with httpx.AsyncClient(timeout=30, headers=auth()) as http:
            session_id = await open_session(http, f"{a.url}/mcp")
            assert answer_text(await call_where(http, f"{a.url}/mcp", session_id)) == "a"
            await cluster.redis.stop()

            async def refused() -> bool:
                return (await call_where(http, f"{a.url}/mcp", session_id)).status_code == 503

            await eventually(refused, timeout=5.0)
            # New sessions still open (no other node can know of them), and are served.
            fresh = await open_session(http, f"{a.url}/mcp")
            assert answer_text(await call_where(http, f"{a.url}/mcp", fresh)) == "a"
            await cluster.redis.start()  # empty: no persistence

            async def served() -> bool:
                return (await call_where(http, f"{a.url}/mcp", session_id)).status_code == 200

            # a writes back the record it kept and lets go of the lease; the call wakes it.
            await eventually(served, timeout=10.0)
            assert answer_text(await call_where(http, f"{a.url}/mcp", fresh)) == "a"
