"""`serve --otel` as a real process (issue 27.2): spans from the standard OTEL_* variables, here
to the console (one JSON span per line on stdout), flushed at exit; a bad setting is one line."""

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

from tests.support.cli_process import ROOT, ServerProcess
from tests.support.cluster import TOKENS, have_cluster_tools, running_cluster
from tests.support.helpers import mcp_headers, messages_of, open_session, rpc

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{CALLER_SPAN}-01"


def otel_env(**settings: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    env.update(settings)
    return env


async def test_otel_traces_a_call_under_the_callers_trace_and_flushes_at_exit() -> None:
    env = otel_env(OTEL_TRACES_EXPORTER="console", OTEL_SERVICE_NAME="traced-node")
    process = await trio.lowlevel.open_process(
        [
            sys.executable,
            "-m",
            "supervisor",
            "serve",
            "tests.support.cli_target:server",
            "--otel",
            "--bind",
            "127.0.0.1:0",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    server = ServerProcess(process)
    output = b""
    try:
        await server.wait_for(r"tracing: spans to console, service traced-node")
        banner = await server.wait_for(r"tracing (on|off)")
        assert banner.group(1) == "on"
        url = await server.url()
        async with httpx.AsyncClient(timeout=30) as http:
            session_id = await open_session(http, url)
            body = rpc("tools/call", 5, {"name": "slow", "arguments": {"seconds": 0.0}})
            answer = await http.post(
                url, content=body, headers=mcp_headers(session_id, traceparent=TRACEPARENT)
            )
            assert messages_of(answer)[-1]["id"] == 5
        process.send_signal(signal.SIGTERM)
        assert process.stdout is not None
        with trio.fail_after(30):
            async for chunk in process.stdout:
                output += chunk
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    spans: list[dict[str, Any]] = [json.loads(line) for line in output.decode().splitlines() if line.strip()]
    in_trace = [span for span in spans if span["context"]["trace_id"] == f"0x{TRACE_ID}"]
    names = {span["name"] for span in in_trace}
    assert {"POST /mcp", "tools/call slow"} <= names, names
    [ours] = [span for span in in_trace if span["name"] == "POST /mcp"]
    [sdks] = [span for span in in_trace if span["name"] == "tools/call slow"]
    assert sdks["parent_id"] == ours["context"]["span_id"]
    assert ours["resource"]["attributes"]["service.name"] == "traced-node"
    assert ours["attributes"]["mcp.session.id"] == session_id


@pytest.mark.parametrize(
    ("setting", "line"),
    [
        (
            {"OTEL_TRACES_EXPORTER": "zipkin"},
            "OTEL_TRACES_EXPORTER='zipkin' is not one --otel knows: otlp, console, none",
        ),
        (
            {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            "--otel sends OTLP over HTTP (http/protobuf), not 'grpc': use the collector's HTTP port",
        ),
    ],
)
def test_a_setting_otel_cannot_follow_is_one_line_and_exit_2(setting: dict[str, str], line: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "supervisor", "serve", "--otel"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=otel_env(**setting),
    )
    assert result.returncode == 2
    [said] = result.stderr.splitlines()
    assert said == f"mcp-supervisor: {line}"


@pytest.mark.skipif(
    not have_cluster_tools() and not os.environ.get("CI"), reason="needs redis-server and haproxy"
)
async def test_through_haproxy_the_callers_trace_reaches_the_node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HAProxy (the config `haproxy-config` writes) passes `traceparent` on: the node's span for a
    call sent to HAProxy is a child of the caller's span. Real redis-server, haproxy, three nodes."""
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    bearer = {"authorization": f"Bearer {TOKENS['alice']}"}
    async with (
        running_cluster(tmp_path, extra=("--otel",)) as cluster,
        httpx.AsyncClient(timeout=30, headers=bearer) as http,
    ):
        url = cluster.haproxy.url
        session_id = await open_session(http, url)
        body = rpc("tools/call", 9, {"name": "where", "arguments": {}})
        answer = await http.post(url, content=body, headers=mcp_headers(session_id, traceparent=TRACEPARENT))
        assert messages_of(answer)[-1]["id"] == 9
        for node in cluster.nodes:
            assert await node.stop() == 0  # a clean exit flushes the spans
    # Every node has exited (its spans flushed): read what they wrote.
    lines = [
        line for node in cluster.nodes for line in node.stdout_path.read_text().splitlines() if line.strip()
    ]
    spans = [json.loads(line) for line in lines]
    [ours] = [
        span
        for span in spans
        if span["context"]["trace_id"] == f"0x{TRACE_ID}" and span["name"] == "POST /mcp"
    ]
    assert ours["parent_id"] == f"0x{CALLER_SPAN}"
    assert ours["attributes"]["mcp.method.name"] == "tools/call"
