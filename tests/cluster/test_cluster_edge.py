"""What the balancer in front of a cluster lets through: the config `haproxy-config` prints.

Each node's admin API and metrics are its own, never answered through HAProxy (issue 22.4), and
forwarded headers are HAProxy's own: a client cannot pick the Host a node checks by sending
`X-Forwarded-Host` (issue 22.5). Real redis-server, haproxy and nodes.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
import trio

from tests.support.cluster import ADMIN_TOKEN, TOKENS, eventually, have_cluster_tools, running_cluster
from tests.support.helpers import error_of, initialize_body, mcp_headers, messages_of, rpc

pytestmark = pytest.mark.skipif(
    not have_cluster_tools() and not os.environ.get("CI"), reason="needs redis-server and haproxy"
)

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def test_the_balancer_answers_no_admin_or_metrics_path_and_keeps_forwarded_headers_its_own(
    tmp_path: Path,
) -> None:
    # The admin API beside MCP on each node (no --admin-bind), forwarded headers trusted from
    # haproxy (127.0.0.1): the two ways the balancer could have let too much through.
    async with running_cluster(tmp_path, count=2, extra=("--proxy-headers",), admin_bind=False) as cluster:
        balancer = cluster.haproxy.url.removesuffix("/mcp")
        node = cluster.nodes[0]
        async with httpx.AsyncClient(timeout=10) as http:
            assert (await http.get(node.url + "/admin/stats", headers=ADMIN)).status_code == 200
            alice = {"authorization": f"Bearer {TOKENS['alice']}"}
            assert (await http.get(node.url + "/metrics", headers=alice)).status_code == 200
            for path in (
                "/admin/stats",
                "/admin/sessions?scope=cluster",
                "/%61dmin/stats",
                "/admin",
                "/metrics",
            ):
                answer = await http.get(balancer + path, headers=alice if "metrics" in path else ADMIN)
                assert answer.status_code == 404, path
                assert error_of(answer) == {"code": -32600, "message": "Not Found", "id": None}
            drained = await http.post(balancer + "/admin/drain", headers=ADMIN)
            assert drained.status_code == 404
            assert (await http.get(node.url + "/readyz")).status_code == 200, "no node was drained"

            auth = alice
            plain = await http.post(
                cluster.haproxy.url, content=initialize_body(), headers=mcp_headers(**auth)
            )
            assert plain.status_code == 200
            hostile = mcp_headers(**auth, host="evil.example")
            refused = await http.post(cluster.haproxy.url, content=initialize_body(), headers=hostile)
            assert refused.status_code == 421
            node_port = node.url.rsplit(":", 1)[1]
            forged = {**hostile, "x-forwarded-host": f"127.0.0.1:{node_port}", "x-forwarded-proto": "https"}
            answer = await http.post(cluster.haproxy.url, content=initialize_body(), headers=forged)
            assert answer.status_code == 421, "a client's X-Forwarded-Host is dropped by the balancer"
            # The same forged header straight to the node (from 127.0.0.1, a trusted proxy) is
            # believed: the trust boundary is the balancer, as deployment.md says.
            direct = await http.post(node.url + "/mcp", content=initialize_body(), headers=forged)
            assert direct.status_code == 200


async def test_a_full_node_serves_its_own_sessions_and_a_full_cluster_says_retry(tmp_path: Path) -> None:
    """Two signals (issue 23.3): full nodes leave `ready_nodes` (no new sessions) but stay live in
    `sessions` (their own sessions' requests), and with every node full a new session gets 503
    with Retry-After and the MCP error body."""
    async with running_cluster(tmp_path, count=2, extra=("--max-sessions", "10")) as cluster:
        alice = {"authorization": f"Bearer {TOKENS['alice']}"}
        bob = {"authorization": f"Bearer {TOKENS['bob']}"}
        url = cluster.haproxy.url
        async with httpx.AsyncClient(timeout=20) as http:
            opened = await http.post(url, content=initialize_body(), headers=mcp_headers(**alice))
            assert opened.status_code == 200
            sid = opened.headers["mcp-session-id"]
            statuses = []
            for _ in range(22):
                answer = await http.post(url, content=initialize_body(), headers=mcp_headers(**bob))
                statuses.append(answer.status_code)
                if answer.status_code == 503:
                    assert answer.headers["retry-after"] == "1"
                    assert error_of(answer)["code"] == -32603
            assert statuses.count(200) == 19, statuses
            for node in cluster.nodes:
                await cluster.haproxy.until(node.node_id, up=False, backend="ready_nodes")
                assert (await cluster.haproxy.servers_up())[node.node_id], "still live for its sessions"
            refused = await http.post(url, content=initialize_body(), headers=mcp_headers(**bob))
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "1"
            assert "every node is at its session cap" in error_of(refused)["message"]
            for number in range(3):
                call = await http.post(url, content=rpc("ping", number), headers=mcp_headers(sid, **alice))
                assert call.status_code == 200, call.text


async def test_a_move_waits_for_the_calls_in_flight_and_cuts_none(tmp_path: Path) -> None:
    """Issue 23.1: a request on another node asks for the session while a long call runs on its
    holder; the holder finishes the call first, then lets go, and the request is served there."""
    async with running_cluster(tmp_path, count=2) as cluster, httpx.AsyncClient(timeout=30) as http:
        a, b = cluster.nodes
        alice = {"authorization": f"Bearer {TOKENS['alice']}"}
        opened = await http.post(a.url + "/mcp", content=initialize_body(), headers=mcp_headers(**alice))
        sid = opened.headers["mcp-session-id"]
        done = rpc("notifications/initialized", None)
        assert (
            await http.post(a.url + "/mcp", content=done, headers=mcp_headers(sid, **alice))
        ).status_code == 202
        answers: dict[str, httpx.Response] = {}

        async def long_call() -> None:
            call = rpc("tools/call", 1, {"name": "mark", "arguments": {"token": "long", "seconds": 3.0}})
            answers["long"] = await http.post(a.url + "/mcp", content=call, headers=mcp_headers(sid, **alice))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(long_call)

            async def running_on_a() -> bool:
                shown = await a.admin("GET", f"/admin/sessions/{sid}")
                return shown.status_code == 200 and shown.json()["in_flight"] >= 1

            await eventually(running_on_a)
            call = rpc("tools/call", 2, {"name": "where", "arguments": {}})
            answers["moved"] = await http.post(
                b.url + "/mcp", content=call, headers=mcp_headers(sid, **alice)
            )
        long = messages_of(answers["long"])[-1]
        assert long["result"]["content"][0]["text"] == "long on a", long
        moved = messages_of(answers["moved"])[-1]
        assert moved["result"]["content"][0]["text"] == "b", moved


async def test_a_draining_node_wakes_nothing_from_the_store(tmp_path: Path) -> None:
    """A node told to drain serves what it holds and takes no session from the store: a request
    for a session held elsewhere is "retry" (503), which HAProxy sends on to another node."""
    async with running_cluster(tmp_path, count=2) as cluster, httpx.AsyncClient(timeout=30) as http:
        a, b = cluster.nodes
        alice = {"authorization": f"Bearer {TOKENS['alice']}"}
        opened = await http.post(a.url + "/mcp", content=initialize_body(), headers=mcp_headers(**alice))
        sid = opened.headers["mcp-session-id"]
        assert (await b.admin("POST", "/admin/drain")).status_code == 200
        call = rpc("tools/call", 2, {"name": "where", "arguments": {}})
        refused = await http.post(b.url + "/mcp", content=call, headers=mcp_headers(sid, **alice))
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        assert error_of(refused)["code"] == -32603
        served = await http.post(a.url + "/mcp", content=call, headers=mcp_headers(sid, **alice))
        assert messages_of(served)[-1]["result"]["content"][0]["text"] == "a", "it never moved"
