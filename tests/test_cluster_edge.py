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

from tests.cluster import ADMIN_TOKEN, TOKENS, have_cluster_tools, running_cluster
from tests.helpers import error_of, initialize_body, mcp_headers

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
