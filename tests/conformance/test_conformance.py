"""The official MCP conformance suite against the fixture server, served by the real CLI.

Each case starts `mcp-supervisor serve tests.conformance.everything:server` as a process on an
ephemeral port and runs one (package, spec version) of `@modelcontextprotocol/conformance` with
`--suite all` and the package's checked expected-failures file; the CLI's own exit code decides.
"""

from __future__ import annotations

import json
import subprocess
import sys
from functools import partial
from pathlib import Path

import attrs
import pytest
import trio

from tests.support.nodejs import NODE_DIR, package_bin, run_node

ROOT = NODE_DIR.parent.parent
TARGET = "tests.conformance.everything:server"
HIBERNATE_AT_ONCE = ("--hibernate-after", "0.000001")


@attrs.frozen
class Suite:
    package: str
    """The npm alias in tests/conformance/package.json."""
    spec_version: str
    baseline: str
    """The expected-failures file, next to this module."""
    at_least: int
    """Scenarios this suite runs today: a drop means scenarios silently stopped running."""
    serve_flags: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        asleep = "-hibernating" if self.serve_flags else ""
        return f"{self.package}-{self.spec_version}{asleep}"


SUITES = [
    # 0.1.16 knows spec versions up to 2025-11-25 only ("Unknown spec version: 2026-07-28").
    Suite("conformance-latest", "2025-11-25", "expected-failures.latest.yml", 32),
    Suite("conformance-alpha", "2025-11-25", "expected-failures.alpha.yml", 33),
    Suite("conformance-alpha", "2026-07-28", "expected-failures.alpha.yml", 40),
    # Every session hibernates as soon as nothing is in flight: each later request wakes it.
    Suite("conformance-latest", "2025-11-25", "expected-failures.latest.yml", 32, HIBERNATE_AT_ONCE),
]


async def _serve_fixture(nursery: trio.Nursery, *flags: str) -> tuple[trio.Process, str]:
    """Start the CLI on the fixture; return the process and the URL it says it serves."""
    process: trio.Process = await nursery.start(
        partial(
            trio.run_process,
            [sys.executable, "-m", "supervisor", "serve", TARGET, "--bind", "127.0.0.1:0", *flags],
            cwd=ROOT,
            stderr=subprocess.PIPE,
            check=False,
        )
    )
    assert process.stderr is not None
    said = b""
    with trio.fail_after(30):
        while b"serving MCP on " not in said or not said.split(b"serving MCP on ", 1)[1].count(b"\n"):
            chunk = await process.stderr.receive_some(65536)
            if not chunk:
                raise AssertionError("the server exited; it said:\n" + said.decode(errors="replace"))
            said += chunk
    url = said.split(b"serving MCP on ", 1)[1].split()[0].decode()
    nursery.start_soon(_drain, process.stderr)
    return process, url


async def _drain(stream: trio.abc.ReceiveStream) -> None:
    """Keep reading the server's log so it never blocks on a full pipe."""
    while await stream.receive_some(65536):
        pass


def _failing_checks(results: Path) -> list[str]:
    """`scenario:check (STATUS) message` for every check that failed or warned, for the report."""
    lines: list[str] = []
    for checks_file in sorted(results.glob("*/checks.json")):
        for check in json.loads(checks_file.read_text()):
            if check.get("status") in {"FAILURE", "WARNING"}:
                lines.append(
                    f"{checks_file.parent.name}: {check.get('id')} ({check['status']}) "
                    f"{check.get('errorMessage', '')}"
                )
    return lines


@pytest.mark.parametrize("suite", SUITES, ids=[suite.name for suite in SUITES])
async def test_official_conformance_suite(suite: Suite, tmp_path: Path) -> None:
    command = [
        package_bin(suite.package, "dist/index.js"),
        "server",
        "--suite",
        "all",
        "--spec-version",
        suite.spec_version,
        "--expected-failures",
        str(NODE_DIR / suite.baseline),
        "--output-dir",
        str(tmp_path),
    ]
    async with trio.open_nursery() as nursery:
        process, url = await _serve_fixture(nursery, *suite.serve_flags)
        try:
            run = await run_node(*command, "--url", url, timeout=300)
        finally:
            process.terminate()
    output = (run.stdout + run.stderr).decode(errors="replace")
    ran = len(list(tmp_path.glob("*/checks.json")))  # noqa: ASYNC240 - a few files, after the run
    report = "\n".join(_failing_checks(tmp_path)) or "(no failing checks)"
    assert run.returncode == 0, f"{suite.name}: exit {run.returncode}\n{report}\n\n{output[-4000:]}"
    assert ran >= suite.at_least, f"{suite.name}: only {ran} scenarios ran\n{output[-4000:]}"
