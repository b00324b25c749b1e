"""The TypeScript SDK client (`StreamableHTTPClientTransport`) against our server over real HTTP.

`tests/conformance/clients/ts_client.mjs` runs under the pinned Node: it opens sessions, lists and
calls tools, opens many sessions at once, terminates them all and posts to each terminated id
again. It prints what it saw; this test decides, and checks the supervisor's own counts agree.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from typing import Any

import trio
import trio.testing

from supervisor import SessionSupervisor, SupervisorConfig
from supervisor.testing import serve_for_test
from tests.support.nodejs import NODE_DIR, node, run_node
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


IDLE_CLIENT = NODE_DIR / "clients" / "ts_idle_client.mjs"


async def test_typescript_clients_sessions_hibernate_with_their_get_stream_open() -> None:
    """The TS client holds its GET stream open all session: its sessions hibernate anyway, hear a
    notification sent from outside any request while asleep, and wake on their next call."""
    sessions = 4
    async with serve_for_test(build_server(), SupervisorConfig(hibernate_after=0.05)) as served:
        supervisor = served.supervisor

        def sleeping_with_streams() -> bool:
            infos = supervisor.sessions()
            return len(infos) == sessions and all(not i.awake and i.open_streams == 1 for i in infos)

        process = await trio.lowlevel.open_process(
            [node(), str(IDLE_CLIENT), served.url, str(sessions)],
            cwd=NODE_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        try:
            with trio.fail_after(60):
                output = await talk_to_idle_client(process, sessions, supervisor, sleeping_with_streams)
        finally:
            if process.returncode is None:
                process.kill()
        report = json.loads(output.splitlines()[1])
        assert report["before"] == [f"b{index}" for index in range(sessions)]
        assert report["heard"] == [1] * sessions
        assert report["after"] == [f"a{index}" for index in range(sessions)]
    assert supervisor.stats().closed == {"client_delete": sessions}


async def talk_to_idle_client(
    process: trio.Process, sessions: int, supervisor: SessionSupervisor, asleep: Callable[[], bool]
) -> bytes:
    """Wait for the client's sessions to sleep, notify them all, let the client go on; its output."""
    assert process.stdin is not None and process.stdout is not None
    lines = trio.StapledStream(process.stdin, process.stdout)
    output = b""
    while output.count(b"\n") < 1:
        output += await lines.receive_some()
    ready = json.loads(output.splitlines()[0])["ready"]
    assert len(set(ready)) == sessions
    while not asleep():
        await trio.testing.wait_all_tasks_blocked(cushion=0.01)
    wakes = supervisor.stats().wakes
    assert supervisor.notices.broadcast("notifications/tools/list_changed") == sessions
    await lines.send_all(b"go\n")
    while output.count(b"\n") < 2:
        chunk = await lines.receive_some()
        assert chunk, "the client ended without its report"
        output += chunk
    assert await process.wait() == 0
    # No wake happened while the notice went out: the wakes after it are the second calls'.
    assert supervisor.stats().wakes == wakes + sessions
    return output
