"""`mcp-supervisor serve` as a real child process, read line by line from its stderr."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parent.parent.parent


class ServerProcess:
    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self.seen: list[str] = []
        """Every line read so far (`lines` loses those `wait_for` matched)."""
        self._buffer = b""

    async def wait_for(self, pattern: str) -> re.Match[str]:
        """Read stderr until a line matches `pattern`."""
        assert self.process.stderr is not None
        with trio.fail_after(30):
            while True:
                for line in self.lines:
                    found = re.search(pattern, line)
                    if found:
                        self.lines.remove(line)
                        return found
                chunk = await self.process.stderr.receive_some(65536)
                if not chunk:
                    raise AssertionError("server exited; it said:\n" + "\n".join(self.lines))
                self._buffer += chunk
                *complete, self._buffer = self._buffer.split(b"\n")
                decoded = [part.decode(errors="replace") for part in complete]
                self.lines.extend(decoded)
                self.seen.extend(decoded)

    async def drain(self) -> None:
        """Read stderr to its end, keeping every line in `seen` (no more `wait_for` after this)."""
        assert self.process.stderr is not None
        async for chunk in self.process.stderr:
            self._buffer += chunk
            *complete, self._buffer = self._buffer.split(b"\n")
            self.seen.extend(part.decode(errors="replace") for part in complete)

    async def url(self) -> str:
        return (await self.wait_for(r"serving MCP on ([^\s\"]+)")).group(1)


def run_serve(*args: str) -> subprocess.CompletedProcess[str]:
    """`mcp-supervisor serve ARGS` to its end (for what it refuses at start), output captured."""
    return run_command("serve", *args)


def run_command(*args: str) -> subprocess.CompletedProcess[str]:
    """`mcp-supervisor ARGS` to its end, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "supervisor", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def start(*args: str) -> ServerProcess:
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "supervisor", "serve", *args, "--bind", "127.0.0.1:0"],
        cwd=ROOT,
        stderr=subprocess.PIPE,
    )
    return ServerProcess(process)


@asynccontextmanager
async def serving(*args: str) -> AsyncIterator[ServerProcess]:
    """A served CLI for the block; SIGTERM at the end, killed if it does not exit in 30 s."""
    server = await start(*args)
    try:
        yield server
    finally:
        if server.process.returncode is None:
            server.process.terminate()
            with trio.move_on_after(30):
                await server.process.wait()
        if server.process.returncode is None:
            server.process.kill()
            await server.process.wait()
