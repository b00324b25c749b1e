"""Durable sessions across real nodes: redis-server, three `mcp-supervisor serve` nodes, haproxy.

Every part is a real process on loopback. A session opened through haproxy lives on the node
its id names; asked for on any other node it moves there (same id, same principal, no new
initialize), and only an id with no record is unknown.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import httpx2
import pytest
import trio
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import TextContent

from tests.support.cluster import TOKENS, Cluster, have_cluster_tools, running_cluster
from tests.support.helpers import mcp_headers, messages_of, open_session, rpc

pytestmark = pytest.mark.skipif(
    not have_cluster_tools() and not os.environ.get("CI"), reason="needs redis-server and haproxy"
)


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    async with running_cluster(tmp_path) as running:
        yield running


def client_for(url: str, who: str = "alice") -> Client:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKENS[who]}"}, timeout=30)
    return Client(streamable_http_client(url, http_client=http), mode="legacy")


def text_of(result: object) -> str:
    content = result.content[0]  # type: ignore[attr-defined]
    assert isinstance(content, TextContent)
    return content.text


def auth(who: str = "alice", session_id: str | None = None) -> dict[str, str]:
    return mcp_headers(session_id, authorization=f"Bearer {TOKENS[who]}")


async def call_where(
    http: httpx.AsyncClient, url: str, session_id: str, who: str = "alice"
) -> httpx.Response:
    body = rpc("tools/call", 7, {"name": "where", "arguments": {}})
    return await http.post(url, content=body, headers=auth(who, session_id))


def answer_text(response: httpx.Response) -> str:
    (message,) = [m for m in messages_of(response) if "result" in m or "error" in m]
    assert "result" in message, message
    return str(message["result"]["content"][0]["text"])


async def test_a_session_is_served_by_the_node_its_id_names(cluster: Cluster) -> None:
    async with client_for(cluster.haproxy.url) as client:
        first = text_of(await client.call_tool("where", {}))
        for _ in range(5):
            assert text_of(await client.call_tool("where", {})) == first


async def test_a_session_moves_to_whichever_node_is_asked(cluster: Cluster) -> None:
    a, b, c = cluster.nodes
    async with httpx.AsyncClient(timeout=30, headers=auth()) as http:
        session_id = await open_session(http, f"{a.url}/mcp")
        assert session_id.startswith("a.")
        assert answer_text(await call_where(http, f"{a.url}/mcp", session_id)) == "a"
        # Node b has never seen it: it asks a to let go, claims it and wakes it from the record.
        assert answer_text(await call_where(http, f"{b.url}/mcp", session_id)) == "b"
        assert answer_text(await call_where(http, f"{c.url}/mcp", session_id)) == "c"
        assert answer_text(await call_where(http, f"{a.url}/mcp", session_id)) == "a"
        assert (await a.admin("GET", f"/admin/sessions/{session_id}")).status_code == 200
        assert (await b.admin("GET", f"/admin/sessions/{session_id}")).status_code == 404
        # Each move was one ask and one answer on pub/sub: each holder said "released" to the
        # node that asked (in the same call that wrote the record and freed the lease), which
        # claimed it then: two claims per node that took it in, none made again on a timer.
        for node in cluster.nodes:
            operations = (await node.admin("GET", "/admin/stats")).json()["cluster"]["store"]["operations"]
            assert operations["publish"] == 1, (node.node_id, operations)  # its one "release"
            assert operations["claim"] == 2, (node.node_id, operations)


async def test_another_principal_and_an_unknown_id_get_404_on_every_node(cluster: Cluster) -> None:
    a, b, _ = cluster.nodes
    async with httpx.AsyncClient(timeout=30) as http:
        http.headers.update(auth())
        session_id = await open_session(http, f"{a.url}/mcp")
        for node in cluster.nodes:
            stolen = await call_where(http, f"{node.url}/mcp", session_id, who="bob")
            assert stolen.status_code == 404, stolen.text
            unknown = await call_where(http, f"{node.url}/mcp", "a." + "0" * 32)
            assert unknown.status_code == 404
        # Bob's tries did not move it: alice's next call is still served, on b this time.
        assert answer_text(await call_where(http, f"{b.url}/mcp", session_id)) == "b"


async def test_the_stateless_era_goes_through_the_same_front(cluster: Cluster) -> None:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKENS['alice']}"}, timeout=30)
    transport = streamable_http_client(cluster.haproxy.url, http_client=http)
    async with Client(transport, mode="2026-07-28") as client:
        answers = {text_of(await client.call_tool("where", {})) for _ in range(12)}
    # No session, no record, no lease: any ready node answers, and more than one did.
    assert answers <= {"a", "b", "c"} and len(answers) > 1
    assert await cluster.redis.command("KEYS", "mcp-supervisor:rec:*") == ""


async def test_a_lease_left_behind_by_a_node_is_freed_when_another_asks(cluster: Cluster) -> None:
    """A node's lease on a session it no longer holds (a check of its leases that crossed the
    session's eviction can set one again): asked for the session, the node frees that lease and
    says "released", so the move goes on at once instead of failing at the move timeout."""
    a, b, _ = cluster.nodes
    async with httpx.AsyncClient(timeout=30, headers=auth()) as http:
        session_id = await open_session(http, f"{a.url}/mcp")
        assert answer_text(await call_where(http, f"{a.url}/mcp", session_id)) == "a"
        assert (await a.admin("DELETE", f"/admin/sessions/{session_id}?mode=evict")).status_code == 200
        node_epoch = await cluster.redis.command("GET", "mcp-supervisor:member:a")
        epoch = await cluster.redis.command("GET", f"mcp-supervisor:epoch:{session_id}")
        lease = f"mcp-supervisor:lease:{session_id}"
        await cluster.redis.command("SET", lease, f"a {node_epoch} {epoch}", "PX", "60000")
        with trio.fail_after(2):  # well within the move timeout a lease nobody frees would cost
            assert answer_text(await call_where(http, f"{b.url}/mcp", session_id)) == "b"
        operations = (await b.admin("GET", "/admin/stats")).json()["cluster"]["store"]["operations"]
        assert operations["claim"] == 2, operations  # the first claim, and the one after "released"
