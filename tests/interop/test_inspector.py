"""The MCP Inspector's CLI (`@modelcontextprotocol/inspector` 2.x, `--cli`), non-interactive.

Each invocation connects to the conformance fixture over real HTTP, runs one method, prints JSON
and exits; the test checks what it printed. HOME points at a temporary directory so the
Inspector's catalog file never lands in the user's home.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from supervisor.testing import TestServer, serve_for_test
from tests.conformance.everything import server as fixture
from tests.support.nodejs import package_bin, run_node

LAUNCHER = "@modelcontextprotocol/inspector"
CALL = ("--method", "tools/call", "--tool-name")


async def run_inspector(served: TestServer, home: Path, *args: str) -> tuple[int, Any]:
    """Run `inspector --cli URL ARGS`; return its exit code and its parsed stdout."""
    launcher = package_bin(LAUNCHER, "clients/launcher/build/index.js")
    done = await run_node(
        launcher, "--cli", served.url, *args, timeout=60, env={"HOME": str(home), "PATH": "/usr/bin:/bin"}
    )
    output = done.stdout.decode()
    try:
        return done.returncode, json.loads(output)
    except json.JSONDecodeError:
        pytest.fail(f"exit {done.returncode}, not JSON: {output!r}\n{done.stderr.decode(errors='replace')}")


async def test_inspector_cli_lists_calls_reads_and_prompts(tmp_path: Path) -> None:
    async with serve_for_test(fixture.server, fixture.config) as served:
        run = partial(run_inspector, served, tmp_path)
        code, tools = await run("--method", "tools/list")
        assert code == 0
        assert {"test_simple_text", "test_error_handling", "test_sampling"} <= {
            t["name"] for t in tools["tools"]
        }

        code, called = await run(*CALL, "test_simple_text")
        assert (code, called["isError"]) == (0, False)
        assert called["content"] == [{"type": "text", "text": "This is a simple text response for testing."}]

        # A tool error is a result, not a transport failure: the Inspector exits 5 and prints it.
        code, failed = await run(*CALL, "test_error_handling")
        assert (code, failed["isError"]) == (5, True)

        code, listed = await run("--method", "resources/list")
        assert code == 0 and "test://static-text" in {r["uri"] for r in listed["resources"]}

        code, read = await run("--method", "resources/read", "--uri", "test://static-text")
        assert code == 0
        assert read["contents"][0]["text"] == "This is the content of the static text resource."

        prompt = ["--prompt-name", "test_prompt_with_arguments", "--prompt-args", "arg1=a", "arg2=b"]
        code, got = await run("--method", "prompts/get", *prompt)
        assert (
            code == 0 and got["messages"][0]["content"]["text"] == "Prompt with arguments: arg1='a', arg2='b'"
        )

        code, level = await run("--method", "logging/setLevel", "--log-level", "debug")
        assert (code, level) == (0, {})

        # Each invocation opened its own session and left without DELETE: they stay until idle
        # timeout or shutdown, which is what a client that just exits gets.
        stats = served.supervisor.stats()
        assert (stats.created, stats.live, stats.requests.get("failed", 0)) == (7, 7, 0)
    assert served.supervisor.stats().closed == {"shutdown": 7}
