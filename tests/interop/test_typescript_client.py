"""The TypeScript SDK client (`StreamableHTTPClientTransport`) against our server over real HTTP.

`tests/conformance/clients/ts_client.mjs` runs under the pinned Node: it opens sessions, lists and
calls tools, opens many sessions at once, terminates them all and posts to each terminated id
again. It prints what it saw; this test decides, and checks the supervisor's own counts agree.
"""

from __future__ import annotations

import json
from typing import Any

from supervisor import SupervisorConfig
from supervisor.testing import serve_for_test
from tests.support.nodejs import NODE_DIR, run_node
from tests.support.servers import build_server

CLIENT = NODE_DIR / "clients" / "ts_client.mjs"
CONCURRENT = 16


async def run_ts_client(url: str, sessions: int) -> dict[str, Any]:
    done = await run_node(str(CLIENT), url, str(sessions), timeout=60)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    report: dict[str, Any] = json.loads(done.stdout)
    return report


async def check_ts_client(config: SupervisorConfig) -> None:
    async with serve_for_test(build_server(), config) as served:
        report = await run_ts_client(served.url, CONCURRENT)
        stats = served.supervisor.stats()

    assert report["server"]["name"] == "test-server"
    assert report["protocolVersion"] == "2025-11-25"
    assert {"add", "echo", "wait"} <= set(report["tools"])
    assert report["add"] == "5.0"
    ids = [report["sessionId"], *report["concurrentSessionIds"]]
    assert len(set(ids)) == CONCURRENT + 1 and all(ids)
    assert report["concurrentEchoes"] == [f"s{index}" for index in range(CONCURRENT)]
    assert report["sessionIdsAfterTerminate"] == [None] * (CONCURRENT + 1)
    for answer in report["afterTerminate"]:
        assert answer["status"] == 404
        body = json.loads(answer["body"])
        assert (body["id"], body["error"]["code"]) == (99, -32600)  # the SDK's "Session not found"
    assert stats.created == CONCURRENT + 1
    assert stats.live == 0
    assert stats.closed == {"client_delete": CONCURRENT + 1}


async def test_typescript_client_default_config() -> None:
    await check_ts_client(SupervisorConfig())


async def test_typescript_client_json_responses() -> None:
    await check_ts_client(SupervisorConfig(json_response=True))


async def test_typescript_client_hibernating_sessions() -> None:
    """Every call after a pause wakes a hibernated session; the TS client never notices."""
    await check_ts_client(SupervisorConfig(hibernate_after=0.001))
