"""Logs of a served CLI: JSON lines that parse, the session id on SDK and tool records, lifecycle
and access lines, text with the id, and a dictConfig file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from tests.support.cli_process import run_serve, serving
from tests.support.helpers import mcp_headers, open_session, rpc


def records(lines: list[str]) -> list[dict[str, Any]]:
    parsed = []
    for line in lines:
        if line.startswith("{"):
            parsed.append(json.loads(line))
    return parsed


async def test_json_lines_carry_the_session_id_on_sdk_and_tool_records() -> None:
    args = ("tests.support.cli_target:server", "--log-format", "json", "--access-log", "--log-level", "debug")
    async with serving(*args) as server, httpx.AsyncClient(timeout=10) as http:
        url = await server.url()
        session_id = await open_session(http, url)
        call = rpc("tools/call", 2, {"name": "slow", "arguments": {"seconds": 0}})
        assert (await http.post(url, content=call, headers=mcp_headers(session_id))).status_code == 200
        await server.wait_for(r'"slow call started"')
        await http.delete(url, headers=mcp_headers(session_id))
        await server.wait_for(r"closed \(client_delete\)")
        lines = list(server.seen)
    parsed = records(lines)
    assert len(parsed) == len([line for line in lines if line.strip()]), "every line is one JSON object"
    for record in parsed:
        assert {"time", "level", "logger", "message"} <= record.keys()
    tool = next(r for r in parsed if r["message"] == "slow call started")
    assert tool["logger"] == "tests.support.cli_target" and tool["session_id"] == session_id
    sdk = [r for r in parsed if r["logger"].startswith("mcp.") and r.get("session_id") == session_id]
    assert sdk, "no record of the SDK's carries the session id"
    access = [r for r in parsed if r["logger"] == "supervisor.access"]
    called = next(r for r in access if r.get("method") == "tools/call")
    assert called["status"] == 200 and called["duration_ms"] >= 0 and called["session_id"] == session_id
    assert called["client"].startswith("127.0.0.1:") and called["path"] == "/mcp"
    closed = next(r for r in parsed if r["message"].startswith("closed (client_delete)"))
    assert (
        closed["level"] == "INFO" and closed["session_id"] == session_id and "request(s)" in closed["message"]
    )
    banner = next(r for r in parsed if r["message"].startswith("mcp-supervisor "))
    assert "server 'cli-target'" in banner["message"] and "metrics /metrics" in banner["message"]
    assert any(r["message"].startswith("serving MCP on http://127.0.0.1:") for r in parsed)


async def test_text_lines_name_the_session_and_access_lines_wait_for_the_flag() -> None:
    async with serving("tests.support.cli_target:server") as server, httpx.AsyncClient(timeout=10) as http:
        url = await server.url()
        session_id = await open_session(http, url)
        call = rpc("tools/call", 2, {"name": "slow", "arguments": {"seconds": 0}})
        await http.post(url, content=call, headers=mcp_headers(session_id))
        line = (await server.wait_for(r".*slow call started")).group(0)
        assert f"[session {session_id}]" in line
        await http.delete(url, headers=mcp_headers(session_id))
        await server.wait_for(r"closed \(client_delete\)")
        assert not any("supervisor.access" in seen for seen in server.seen)


async def test_a_log_config_file_takes_over(tmp_path: Path) -> None:
    config = {
        "version": 1,
        "formatters": {"plain": {"format": "CONFIGURED %(name)s %(message)s"}},
        "handlers": {"err": {"class": "logging.StreamHandler", "formatter": "plain"}},
        "root": {"handlers": ["err"], "level": "INFO"},
    }
    path = tmp_path / "logging.json"
    path.write_text(json.dumps(config))
    async with serving("--log-config", str(path)) as server:
        await server.url()
        assert all(line.startswith("CONFIGURED ") for line in server.seen if line.strip())


def test_a_bad_log_config_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    result = run_serve("--log-config", str(path))
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("mcp-supervisor: --log-config: cannot use")
