"""The holder serves; others forward (issue 23): a request for a session a live node holds is
forwarded to it (one internal hop), never answered by moving the session; only a dead or stopping
holder's sessions move. Real redis-server, haproxy and three nodes with `--advertise-url`."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import trio

from tests.cluster.test_cluster_basics import answer_text, auth, call_where
from tests.support.cluster import TOKENS, Cluster, have_cluster_tools, running_cluster
from tests.support.helpers import mcp_headers, messages_of, open_session, rpc

pytestmark = pytest.mark.skipif(
    not have_cluster_tools() and not os.environ.get("CI"), reason="needs redis-server and haproxy"
)


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    async with running_cluster(tmp_path, advertise=True) as running:
        yield running


async def moves(cluster: Cluster) -> int:
    total = 0
    for node in cluster.nodes:
        if node.running:
            total += (await node.admin("GET", "/admin/stats")).json()["cluster"]["moved_in"]
    return total


async def test_any_node_answers_for_the_holder_without_moving_the_session(cluster: Cluster) -> None:
    a, b, c = cluster.nodes
    async with httpx.AsyncClient(timeout=30, headers=auth()) as http:
        session_id = await open_session(http, f"{a.url}/mcp")
        for node in (b, c, b, a, c):
            assert answer_text(await call_where(http, f"{node.url}/mcp", session_id)) == "a"
        assert await moves(cluster) == 0
        forwarded = [(await n.admin("GET", "/admin/stats")).json()["cluster"]["forwarded"] for n in (b, c)]
        assert forwarded == [2, 2]
        # A stream of its own and a DELETE are forwarded too.
        async with http.stream(
            "GET",
            f"{b.url}/mcp",
            headers=mcp_headers(
                session_id, accept="text/event-stream", authorization=f"Bearer {TOKENS['alice']}"
            ),
        ) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
        stolen = await call_where(http, f"{c.url}/mcp", session_id, who="bob")
        assert stolen.status_code == 404
        deleted = await http.delete(f"{c.url}/mcp", headers=auth(session_id=session_id))
        assert deleted.status_code == 200
        gone = await call_where(http, f"{b.url}/mcp", session_id)
        assert gone.status_code == 404


async def test_a_dead_holders_sessions_move_once_and_then_are_forwarded(cluster: Cluster) -> None:
    """SIGKILL: the first node asked takes the session over; any other node asked later forwards
    to it, so the session never moves again while that node lives (no a -> b -> c)."""
    a, b, c = cluster.nodes
    async with httpx.AsyncClient(timeout=30, headers=auth()) as http:
        session_id = await open_session(http, f"{a.url}/mcp")
        assert answer_text(await call_where(http, f"{a.url}/mcp", session_id)) == "a"
        assert await a.stop(signal.SIGKILL) != 0
        assert answer_text(await call_where(http, f"{b.url}/mcp", session_id)) == "b"
        for node in (c, b, c):
            assert answer_text(await call_where(http, f"{node.url}/mcp", session_id)) == "b"
        assert await moves(cluster) == 1


async def test_a_long_call_on_the_holder_is_not_cut_by_requests_elsewhere(cluster: Cluster) -> None:
    a, b, _ = cluster.nodes
    async with httpx.AsyncClient(timeout=30, headers=auth()) as http:
        session_id = await open_session(http, f"{a.url}/mcp")
        answers: dict[str, httpx.Response] = {}

        async def long_call() -> None:
            call = rpc("tools/call", 1, {"name": "mark", "arguments": {"token": "long", "seconds": 2.0}})
            answers["long"] = await http.post(
                f"{b.url}/mcp", content=call, headers=auth(session_id=session_id)
            )

        async with trio.open_nursery() as nursery:
            nursery.start_soon(long_call)
            for _ in range(5):
                assert answer_text(await call_where(http, f"{b.url}/mcp", session_id)) == "a"
        assert messages_of(answers["long"])[-1]["result"]["content"][0]["text"] == "long on a"
        assert await moves(cluster) == 0
