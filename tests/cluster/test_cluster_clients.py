"""The TypeScript SDK client through a node's death; resuming a stream on another node; eviction
and fencing, seen from outside. Real redis-server, haproxy and nodes (tests/support/cluster.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from tests.cluster.test_cluster_basics import answer_text, auth, call_where, client_for, text_of
from tests.support.cluster import (
    ADMIN_TOKEN,
    TOKENS,
    Cluster,
    eventually,
    have_cluster_tools,
    running_cluster,
)
from tests.support.helpers import initialize_body, open_session, rpc
from tests.support.nodejs import NODE_DIR, node
from tests.support.sse import sse_messages

pytestmark = pytest.mark.skipif(
    not have_cluster_tools() and not os.environ.get("CI"), reason="needs redis-server and haproxy"
)

TS_CLIENT = NODE_DIR / "clients" / "ts_cluster_client.mjs"


async def _line(stdout: trio.abc.ReceiveStream, buffer: bytearray) -> Any:
    with trio.fail_after(60):
        while b"\n" not in buffer:
            chunk = await stdout.receive_some(65536)
            assert chunk, "the TypeScript client ended early"
            buffer += chunk
    line, _, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    return json.loads(line)


async def test_the_typescript_client_keeps_its_sessions_through_a_sigkill(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as cluster:
        process = await trio.lowlevel.open_process(
            [node(), str(TS_CLIENT), cluster.haproxy.url, TOKENS["alice"], "60"],
            cwd=NODE_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert process.stdout is not None and process.stdin is not None
        buffer = bytearray()
        before = await _line(process.stdout, buffer)
        assert all(seen["where"] == seen["sessionId"].split(".")[0] for seen in before)
        victim = before[0]["where"]
        await cluster.node(victim).stop(signal.SIGKILL)
        await process.stdin.send_all(b"go\n")
        after = await _line(process.stdout, buffer)
        with trio.fail_after(30):
            await process.wait()
    assert [seen["sessionId"] for seen in after] == [seen["sessionId"] for seen in before]
    assert all("error" not in seen for seen in after), after
    assert all(seen["where"] != victim for seen in after)
    assert {seen["where"] for seen in after if seen["sessionId"].startswith(victim + ".")} <= {"a", "b", "c"}


async def test_a_stream_resumes_with_last_event_id_on_another_node(tmp_path: Path) -> None:
    async with running_cluster(tmp_path, extra=("--redis-events",)) as cluster:
        a, b, _ = cluster.nodes
        async with httpx.AsyncClient(timeout=30, headers=auth()) as http:
            session_id = await open_session(http, f"{a.url}/mcp")
            params = {"name": "ticks", "arguments": {"n": 6}, "_meta": {"progressToken": "p"}}
            body = rpc("tools/call", 5, params)
            seen_ids: list[str] = []
            async with http.stream(
                "POST", f"{a.url}/mcp", content=body, headers=auth("alice", session_id)
            ) as response:
                assert response.headers["content-type"].startswith("text/event-stream")
                async for line in response.aiter_lines():
                    if line.startswith("id:"):
                        seen_ids.append(line[3:].strip())
                    if len(seen_ids) == 3:
                        break  # leave after two progress events (the first id is the priming event)
            # The call runs on at a (a disconnect is not a cancellation) and its events go to Redis.
            headers = auth("alice", session_id) | {"last-event-id": seen_ids[-1]}
            text = ""
            with trio.fail_after(20):
                async with http.stream("GET", f"{b.url}/mcp", headers=headers) as resumed:
                    assert resumed.status_code == 200
                    # The replay ends with the call's answer; the stream itself stays open after it.
                    async for line in resumed.aiter_lines():
                        text += line + "\n"
                        if line.startswith("data:") and '"id":5' in line.replace(" ", ""):
                            break
        messages = sse_messages(text + "\n")
        progress = [m["params"]["progress"] for m in messages if m.get("method") == "notifications/progress"]
        assert progress == [3, 4, 5, 6]
        (result,) = [m for m in messages if m.get("id") == 5]
        assert result["result"]["content"][0]["text"] == "6 ticks on a"


async def test_an_evicted_session_is_only_a_record_and_wakes_on_its_next_request(tmp_path: Path) -> None:
    async with running_cluster(tmp_path, count=1, extra=("--evict-after", "0.5")) as cluster:
        (a,) = cluster.nodes
        async with httpx.AsyncClient(timeout=30, headers=auth()) as http:
            session_id = await open_session(http, f"{a.url}/mcp")
            assert answer_text(await call_where(http, f"{a.url}/mcp", session_id)) == "a"

            async def evicted() -> bool:
                return (await a.admin("GET", f"/admin/sessions/{session_id}")).status_code == 404

            await eventually(evicted)
            stats = (await a.admin("GET", "/admin/stats")).json()
            assert stats["live"] == 0 and stats["closed"] == {"evicted": 1}
            listed = (await a.admin("GET", "/admin/sessions?scope=cluster")).json()
            assert [s["session_id"] for s in listed["sessions"]] == [session_id]
            assert listed["sessions"][0]["held_by"] is None
            # The operator's view of the same: one table row, held by no node.
            token = {**os.environ, "MCP_SUPERVISOR_ADMIN_TOKEN": ADMIN_TOKEN}
            command = [sys.executable, "-m", "supervisor", "sessions", "list", "--scope", "cluster"]
            said = await trio.to_thread.run_sync(
                lambda: subprocess.run(
                    [*command, "--url", a.admin_url], env=token, capture_output=True, text=True, check=False
                )
            )
            assert said.returncode == 0, said.stderr
            header, row, total = said.stdout.splitlines()
            assert header.split()[:4] == ["SESSION", "PRINCIPAL", "HELD", "BY"]
            assert row.startswith(session_id) and "- (in the store)" in row
            assert total == "1 of 1 session(s)"
            assert answer_text(await call_where(http, f"{a.url}/mcp", session_id)) == "a"
            metrics = (await http.get(f"{a.url}/metrics")).text
        assert "mcp_session_wakes_from_store_total 1.0" in metrics


async def test_a_node_that_lost_its_lease_stops_serving_the_session(tmp_path: Path) -> None:
    async with running_cluster(tmp_path, count=2) as cluster:
        a, b = cluster.nodes
        async with httpx.AsyncClient(timeout=30, headers=auth()) as http:
            session_id = await open_session(http, f"{a.url}/mcp")
            assert answer_text(await call_where(http, f"{a.url}/mcp", session_id)) == "a"
            # As if another node had claimed it while a was paused: a newer epoch, someone else's,
            # and a's membership lapsed (all a pause does in Redis). The lease goes first: a
            # renewal round between the two would otherwise set the membership again and check
            # a lease that is still a's, and nothing would make a look again.
            epoch = int(await cluster.redis.command("INCR", f"mcp-supervisor:epoch:{session_id}"))
            await cluster.redis.command(
                "SET", f"mcp-supervisor:lease:{session_id}", f"z 0 {epoch}", "PX", "60000"
            )
            await cluster.redis.command("DEL", "mcp-supervisor:member:a")

            async def fenced() -> bool:
                return (await a.admin("GET", f"/admin/sessions/{session_id}")).status_code == 404

            await eventually(fenced)  # within one renewal (a third of the 2 s lease)
            stats = (await a.admin("GET", "/admin/stats")).json()
            assert stats["closed"] == {"fenced": 1} and stats["cluster"]["fenced"] == 1
            # The record is intact: once the impostor's lease is gone, the session serves again.
            await cluster.redis.command("DEL", f"mcp-supervisor:lease:{session_id}")
            assert answer_text(await call_where(http, f"{b.url}/mcp", session_id)) == "b"


async def test_cluster_metrics_and_readiness_detail(tmp_path: Path) -> None:
    async with running_cluster(tmp_path, count=2) as cluster:
        a, b = cluster.nodes
        async with httpx.AsyncClient(timeout=30, headers=auth()) as http:
            session_id = await open_session(http, f"{a.url}/mcp")
            assert answer_text(await call_where(http, f"{b.url}/mcp", session_id)) == "b"
            on_a = (await http.get(f"{a.url}/metrics")).text
            on_b = (await http.get(f"{b.url}/metrics")).text
            ready = (await http.get(f"{a.url}/readyz")).json()
        assert ready == {"ready": True, "reasons": [], "store": "up", "degraded": False}
        assert 'mcp_session_moves_total{direction="out"} 1.0' in on_a
        assert 'mcp_session_moves_total{direction="in"} 1.0' in on_b
        assert "mcp_leases_held 1.0" in on_b and "mcp_leases_held 0.0" in on_a
        assert "mcp_store_up 1.0" in on_a
        assert 'mcp_store_operations_total{op="put"}' in on_a


async def test_the_per_principal_cap_counts_over_the_whole_cluster(tmp_path: Path) -> None:
    async with running_cluster(tmp_path, count=2, extra=("--max-sessions-per-principal", "2")) as cluster:
        a, b = cluster.nodes
        async with httpx.AsyncClient(timeout=30) as http:
            http.headers.update(auth("bob"))
            await open_session(http, f"{a.url}/mcp")
            await open_session(http, f"{b.url}/mcp")
            third = await http.post(f"{a.url}/mcp", content=initialize_body(), headers=auth("bob"))
            assert third.status_code == 503 and third.headers["retry-after"] == "1"
            assert "principal" in third.json()["error"]["message"]
            # Another principal is not held back by bob's sessions.
            http.headers.update(auth("carol"))
            await open_session(http, f"{b.url}/mcp")


async def test_a_paused_node_never_answers_for_a_session_another_node_took(tmp_path: Path) -> None:
    async with running_cluster(tmp_path, count=2) as cluster:
        a, b = cluster.nodes
        assert a.server is not None
        async with httpx.AsyncClient(timeout=30, headers=auth()) as http:
            session_id = await open_session(http, f"{a.url}/mcp")
            assert answer_text(await call_where(http, f"{a.url}/mcp", session_id)) == "a"
            a.server.process.send_signal(signal.SIGSTOP)
            try:
                # a holds the lease but cannot let go: b waits for it to lapse (2 s), then serves.
                assert answer_text(await call_where(http, f"{b.url}/mcp", session_id)) == "b"
            finally:
                a.server.process.send_signal(signal.SIGCONT)
            # a wakes up still holding an actor for it. Before it answers, it finds its lease
            # gone (or hears b's old request to let go): that actor ends without writing
            # anything, and a serves only after taking the session back from b, as a new wake.
            assert answer_text(await call_where(http, f"{a.url}/mcp", session_id)) == "a"
            on_a = (await a.admin("GET", "/admin/stats")).json()
            on_b = (await b.admin("GET", "/admin/stats")).json()
        assert sum(on_a["closed"].get(reason, 0) for reason in ("fenced", "moved")) == 1
        assert on_a["cluster"]["wakes_from_store"] == 1 and on_a["cluster"]["moved_in"] == 1
        assert on_b["closed"].get("moved") == 1
        assert on_a["live"] == 1 and on_b["live"] == 0


async def test_a_node_resumed_after_its_lease_was_taken_fences_before_answering(tmp_path: Path) -> None:
    async with running_cluster(tmp_path, count=1) as cluster:
        (a,) = cluster.nodes
        assert a.server is not None
        async with httpx.AsyncClient(timeout=30, headers=auth()) as http:
            session_id = await open_session(http, f"{a.url}/mcp")
            assert answer_text(await call_where(http, f"{a.url}/mcp", session_id)) == "a"
            a.server.process.send_signal(signal.SIGSTOP)
            try:
                # Meanwhile another node ("z", gone since) took the lease, and told nobody.
                lease = f"mcp-supervisor:lease:{session_id}"
                await eventually(
                    lambda: _gone(cluster, "mcp-supervisor:member:a")
                )  # a's 2 s membership lapses
                epoch = await cluster.redis.command("INCR", f"mcp-supervisor:epoch:{session_id}")
                await cluster.redis.command("SET", lease, f"z 0 {epoch}", "PX", "60000")
            finally:
                a.server.process.send_signal(signal.SIGCONT)
            # The first request after the pause: a checks its lease first, fences its actor, then
            # takes the session over from the silent "z" and serves it from the record.
            assert answer_text(await call_where(http, f"{a.url}/mcp", session_id)) == "a"
            stats = (await a.admin("GET", "/admin/stats")).json()
        assert stats["closed"] == {"fenced": 1}
        assert stats["cluster"]["wakes_from_store"] == 1


async def _gone(cluster: Cluster, key: str) -> bool:
    return await cluster.redis.command("EXISTS", key) == "0"


async def test_a_real_clients_session_is_evicted_with_its_get_stream_open_and_comes_back(
    tmp_path: Path,
) -> None:
    """The SDK client holds its GET stream: eviction still comes on schedule, ends the stream with
    a retry hint, and the client's reconnect finds the session again (restored from the store)."""
    async with running_cluster(tmp_path, count=1, extra=("--evict-after", "0.5")) as cluster:
        (a,) = cluster.nodes
        async with client_for(f"{a.url}/mcp") as client:
            assert text_of(await client.call_tool("where", {})) == "a"
            session_id = (await a.admin("GET", "/admin/sessions")).json()["sessions"][0]["id"]

            async def evicted() -> bool:
                stats = (await a.admin("GET", "/admin/stats")).json()
                return bool(stats["closed"].get("evicted"))

            await eventually(evicted)

            async def back_with_its_stream() -> bool:
                found = await a.admin("GET", f"/admin/sessions/{session_id}")
                return found.status_code == 200 and found.json()["open_streams"] == 1

            # The client reconnected its GET stream (a wake from the store, no new session).
            await eventually(back_with_its_stream)
            assert text_of(await client.call_tool("where", {})) == "a"
            stats = (await a.admin("GET", "/admin/stats")).json()
            assert set(stats["closed"]) == {"evicted"}
