"""Revoking a client by its id alone ends every one of its principals' sessions on every node.

The nodes serve a server with its own token verifier: one client id (`acme`) stands for several
users (subjects, with an issuer), so its principals differ and only the client id joins them.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.support.cluster import Cluster, eventually, have_cluster_tools, running_cluster
from tests.support.helpers import initialize_body, mcp_headers, rpc

pytestmark = pytest.mark.skipif(
    not have_cluster_tools() and not os.environ.get("CI"), reason="needs redis-server and haproxy"
)


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    target = "tests.support.cluster_target:server_with_subjects"
    async with running_cluster(tmp_path, count=2, target=target) as running:
        yield running


def _headers(token: str, session_id: str | None = None) -> dict[str, str]:
    return mcp_headers(session_id, authorization=f"Bearer {token}")


async def _open(http: httpx.AsyncClient, url: str, token: str) -> str:
    response = await http.post(f"{url}/mcp", content=initialize_body(), headers=_headers(token))
    assert response.status_code == 200, response.text
    session_id = response.headers["mcp-session-id"]
    initialized = rpc("notifications/initialized", None)
    done = await http.post(f"{url}/mcp", content=initialized, headers=_headers(token, session_id))
    assert done.status_code == 202
    return session_id


async def _status(http: httpx.AsyncClient, url: str, token: str, session_id: str) -> int:
    body = rpc("tools/call", 3, {"name": "where", "arguments": {}})
    response = await http.post(f"{url}/mcp", content=body, headers=_headers(token, session_id))
    return response.status_code


async def test_a_client_id_revoked_on_one_node_ends_its_users_sessions_everywhere(cluster: Cluster) -> None:
    a, b = cluster.nodes
    async with httpx.AsyncClient(timeout=30) as http:
        # acme's user u2 has sessions only on b: a has never seen that principal.
        revoked = {
            (a.url, "tok-acme-u1"): await _open(http, a.url, "tok-acme-u1"),
            (b.url, "tok-acme-u2"): await _open(http, b.url, "tok-acme-u2"),
            (b.url, "tok-acme-u1"): await _open(http, b.url, "tok-acme-u1"),
        }
        kept = await _open(http, b.url, "tok-zeta-u1")
        answer = await a.admin("POST", "/admin/revoke", json={"principal": "acme"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["closed"] >= 3
        for (url, token), session_id in revoked.items():

            async def gone(url: str = url, token: str = token, session_id: str = session_id) -> bool:
                return await _status(http, url, token, session_id) == 404

            await eventually(gone, timeout=1.0)
            assert await cluster.redis.command("EXISTS", f"mcp-supervisor:rec:{session_id}") == "0"
        # Another client's session, on the same node, goes on.
        assert await _status(http, b.url, "tok-zeta-u1", kept) == 200
