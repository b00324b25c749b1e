"""What a client sees when nodes die, restart or lose Redis: real processes, real clients.

Three nodes behind haproxy, Redis behind them. Clients are `mcp.Client` (the Python SDK's own,
through haproxy) and raw HTTP where a test must name the node or read the session id.
"""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import trio

from tests.cluster.test_cluster_basics import answer_text, auth, call_where, client_for, text_of
from tests.support.cluster import Cluster, eventually, have_cluster_tools, running_cluster
from tests.support.helpers import open_session

pytestmark = pytest.mark.skipif(
    not have_cluster_tools() and not os.environ.get("CI"), reason="needs redis-server and haproxy"
)

SESSIONS = 60


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    async with running_cluster(tmp_path) as running:
        yield running


async def open_many(http: httpx.AsyncClient, url: str, count: int, who: str = "alice") -> list[str]:
    """`count` sessions opened through `url` (haproxy balances them over the nodes)."""
    ids: list[str] = []

    async def one() -> None:
        response = await http.post(url, content=_initialize(), headers=auth(who))
        assert response.status_code == 200, response.text
        session_id = response.headers["mcp-session-id"]
        done = await http.post(url, content=_initialized(), headers=auth(who, session_id))
        assert done.status_code == 202
        ids.append(session_id)

    async with trio.open_nursery() as nursery:
        for _ in range(count):
            nursery.start_soon(one)
    return ids


def _initialize() -> bytes:
    from tests.support.helpers import initialize_body

    return initialize_body()


def _initialized() -> bytes:
    from tests.support.helpers import rpc

    return rpc("notifications/initialized", None)


async def where_all(http: httpx.AsyncClient, url: str, ids: list[str]) -> dict[str, str]:
    """Each session's answer to `where` (which node served it), all at once."""
    served: dict[str, str] = {}

    async def one(session_id: str) -> None:
        response = await call_where(http, url, session_id)
        assert response.status_code == 200, (session_id, response.status_code, response.text)
        served[session_id] = answer_text(response)

    async with trio.open_nursery() as nursery:
        for session_id in ids:
            nursery.start_soon(one, session_id)
    return served


async def test_sessions_are_spread_and_each_call_is_served_by_its_owner(cluster: Cluster) -> None:
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=100)) as http:
        ids = await open_many(http, cluster.haproxy.url, SESSIONS)
        served = await where_all(http, cluster.haproxy.url, ids)
    # Every call was answered by the node the session id names: its owner.
    assert all(served[sid] == sid.split(".")[0] for sid in ids)
    assert {sid.split(".")[0] for sid in ids} == {"a", "b", "c"}


async def test_sigkill_of_a_node_loses_none_of_its_sessions(cluster: Cluster) -> None:
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=100)) as http:
        ids = await open_many(http, cluster.haproxy.url, SESSIONS)
        await where_all(http, cluster.haproxy.url, ids)
        on_b = [sid for sid in ids if sid.startswith("b.")]
        assert on_b
        await cluster.node("b").stop(signal.SIGKILL)
        # No wait for haproxy's checks: a refused connection to b is retried on the hash's pick.
        served = await where_all(http, cluster.haproxy.url, ids)
    assert all(served[sid] != "b" for sid in on_b)
    assert all(served[sid] == sid.split(".")[0] for sid in ids if not sid.startswith("b."))
    for sid in on_b:
        owner = cluster.node(served[sid])
        shown = (await owner.admin("GET", f"/admin/sessions/{sid}")).json()
        assert shown["principal"]["client_id"] == "alice"


async def test_a_session_killed_with_its_node_right_after_initialize_goes_on_elsewhere(
    cluster: Cluster,
) -> None:
    a, b, _ = cluster.nodes
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=100)) as http:
        ids: list[str] = []

        async def open_one() -> None:
            response = await http.post(f"{a.url}/mcp", content=_initialize(), headers=auth())
            assert response.status_code == 200, response.text
            ids.append(response.headers["mcp-session-id"])

        async with trio.open_nursery() as nursery:
            for _ in range(SESSIONS // 2):
                nursery.start_soon(open_one)
        # The node dies the moment the last answer is in: no time for anything written after it.
        await a.stop(signal.SIGKILL)
        for session_id in ids:
            done = await http.post(f"{b.url}/mcp", content=_initialized(), headers=auth("alice", session_id))
            assert done.status_code == 202, (session_id, done.status_code, done.text)
        assert set((await where_all(http, f"{b.url}/mcp", ids)).values()) == {"b"}


async def test_the_python_client_carries_on_through_a_kill_without_initialize(cluster: Cluster) -> None:
    clients_seen: dict[int, list[str]] = {}
    async with trio.open_nursery() as nursery:
        kill_now = trio.Event()
        finished = trio.Event()
        started = 0

        async def client_run(index: int) -> None:
            nonlocal started
            async with client_for(cluster.haproxy.url) as client:
                seen = clients_seen[index] = [text_of(await client.call_tool("where", {}))]
                started += 1
                if started == SESSIONS:
                    kill_now.set()
                await kill_now.wait()
                await finished.wait()
                for _ in range(3):
                    seen.append(text_of(await client.call_tool("where", {})))

        for index in range(SESSIONS):
            nursery.start_soon(client_run, index)
        await kill_now.wait()
        victim = clients_seen[0][0]
        await cluster.node(victim).stop(signal.SIGKILL)
        finished.set()
    moved = [seen for seen in clients_seen.values() if seen[0] == victim]
    assert moved and all(victim not in seen[1:] for seen in moved)
    # Every client kept its one session: the SDK client never initializes twice (it would raise
    # on the 404 instead), so three answered calls each are the proof.
    assert all(len(seen) == 4 for seen in clients_seen.values())


async def test_rolling_restart_fails_no_call_and_loses_no_session(cluster: Cluster) -> None:
    failures: list[str] = []
    calls = 0
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=100)) as http:
        ids = await open_many(http, cluster.haproxy.url, SESSIONS)
        stop = trio.Event()

        async def keep_calling(session_id: str) -> None:
            nonlocal calls
            while not stop.is_set():
                try:
                    response = await call_where(http, cluster.haproxy.url, session_id)
                    answer_text(response)
                    calls += 1
                except (AssertionError, httpx.HTTPError, ValueError) as error:
                    failures.append(f"{session_id}: {error!r}")
                await trio.sleep(0.05)

        async with trio.open_nursery() as nursery:
            for session_id in ids:
                nursery.start_soon(keep_calling, session_id)
            for node in cluster.nodes:
                assert await node.stop(signal.SIGTERM) == 0
                await node.start()
                await cluster.haproxy.until(node.node_id, up=True)
            stop.set()
        served = await where_all(http, cluster.haproxy.url, ids)
    assert failures == []
    assert calls > 100
    assert set(served) == set(ids)


async def test_a_raced_wake_is_served_by_exactly_one_node(cluster: Cluster) -> None:
    a, b, c = cluster.nodes
    async with httpx.AsyncClient(timeout=30, headers=auth()) as http:
        session_id = await open_session(http, f"{a.url}/mcp")
        # a lets go (its record kept): the session is nowhere awake, only in the store.
        assert (await a.admin("DELETE", f"/admin/sessions/{session_id}?mode=evict")).status_code == 200
        answers: dict[str, str] = {}

        async def ask(node_url: str) -> None:
            response = await call_where(http, f"{node_url}/mcp", session_id)
            for _ in range(3):  # as haproxy's `retries 3` with `retry-on 503`
                if response.status_code != 503:
                    break
                # Taken away before it was served: "retry", never "unknown".
                response = await call_where(http, f"{node_url}/mcp", session_id)
            answers[node_url] = answer_text(response)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask, b.url)
            nursery.start_soon(ask, c.url)
        assert answers == {b.url: "b", c.url: "c"}  # each served (one after a move), never both at once
        holders = [
            node
            for node in cluster.nodes
            if (await node.admin("GET", f"/admin/sessions/{session_id}")).status_code == 200
        ]
        assert len(holders) == 1
        lease = await cluster.redis.command("GET", f"mcp-supervisor:lease:{session_id}")
        assert lease.split()[0] == holders[0].node_id


async def test_revocation_on_one_node_ends_the_principal_everywhere_within_a_second(cluster: Cluster) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        ids = {node.node_id: await _open_on(http, node.url, "carol") for node in cluster.nodes}
        kept = await _open_on(http, cluster.nodes[1].url, "alice")
        started = trio.current_time()
        revoked = await cluster.nodes[0].admin("POST", "/admin/revoke", json={"principal": "carol"})
        assert revoked.status_code == 200, revoked.text
        for node_id, session_id in ids.items():
            url = f"{cluster.node(node_id).url}/mcp"

            async def gone(url: str = url, session_id: str = session_id) -> bool:
                return (await call_where(http, url, session_id, "carol")).status_code == 404

            await eventually(gone, timeout=1.0)
        assert trio.current_time() - started < 1.0
        # Not on any node either, and its records are gone from the store.
        for session_id in ids.values():
            assert await cluster.redis.command("EXISTS", f"mcp-supervisor:rec:{session_id}") == "0"
        assert answer_text(await call_where(http, f"{cluster.nodes[1].url}/mcp", kept)) == "b"


async def _open_on(http: httpx.AsyncClient, url: str, who: str) -> str:
    http.headers.update(auth(who))
    return await open_session(http, f"{url}/mcp")


async def test_redis_outage_keeps_held_sessions_and_nothing_hangs(cluster: Cluster) -> None:
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=100)) as http:
        ids = await open_many(http, cluster.haproxy.url, 12)
        await cluster.redis.stop()
        with trio.fail_after(10):  # nothing hangs: every call answers well within this
            served = await where_all(http, cluster.haproxy.url, ids)
        assert all(served[sid] == sid.split(".")[0] for sid in ids)
        for node in cluster.nodes:
            await eventually(lambda node=node: _store_is(http, node.url, "down"))  # type: ignore[misc]
            detail = (await http.get(f"{node.url}/readyz")).json()
            assert detail["ready"] is True and detail["degraded"] is True
        # A session this node does not hold: it cannot tell whether it exists, so "retry", not 404.
        elsewhere = next(node for node in cluster.nodes if not ids[0].startswith(node.node_id + "."))
        unsure = await call_where(http, f"{elsewhere.url}/mcp", ids[0])
        assert unsure.status_code == 503 and unsure.headers["retry-after"] == "1"
        error = unsure.json()
        assert error["id"] == 7 and error["error"]["message"] == "Session store unavailable; retry"
        # New sessions still open while Redis is down (their records follow when it is back).
        fresh = await open_many(http, cluster.haproxy.url, 3)
        await cluster.redis.start()
        for node in cluster.nodes:
            await eventually(lambda node=node: _store_is(http, node.url, "up"))  # type: ignore[misc]
        for session_id in fresh:
            key = f"mcp-supervisor:rec:{session_id}"
            await eventually(lambda key=key: _exists(cluster, key))  # type: ignore[misc]
        # That Redis came back empty (no persistence): each node writes again what it holds.
        for session_id in ids:
            key = f"mcp-supervisor:rec:{session_id}"
            await eventually(lambda key=key: _exists(cluster, key))  # type: ignore[misc]
        served = await where_all(http, cluster.haproxy.url, ids)
        assert all(served[sid] == sid.split(".")[0] for sid in ids)
        # Coordination is back: a session moves to another node on request.
        moved = fresh[0]
        other = next(node for node in cluster.nodes if not moved.startswith(node.node_id + "."))
        assert answer_text(await call_where(http, f"{other.url}/mcp", moved)) == other.node_id


async def _store_is(http: httpx.AsyncClient, url: str, state: str) -> bool:
    return bool((await http.get(f"{url}/readyz")).json().get("store") == state)


async def _exists(cluster: Cluster, key: str) -> bool:
    return await cluster.redis.command("EXISTS", key) == "1"
