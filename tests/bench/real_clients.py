"""The benchmark's real-client phase (issue 25.5): RSS per idle session when the sessions belong
to the real SDK clients, which hold their standalone GET stream open for the whole session.

Raw-client phases open sessions with a minimal HTTP client that never opens a GET stream. The
Python SDK client (`mcp.Client`, legacy mode) and the TypeScript SDK client
(`StreamableHTTPClientTransport`) do, and what an idle session costs a server then is what this
phase reads: each session opened by a real client, one `tools/call`, then left idle past the
server's hibernation delay (our default flags hibernate after 30 s). RSS only grows (what a
hibernating session frees stays in the heap for the next ones), so the phase opens two equal
batches and reports the second's growth: what one more idle session costs once the heap holds
what the first batch left free, as it does on a server that has been up a while. The clients live
in the load generator's process (Python) and one Node process each batch (the TypeScript ones);
only the server's memory is measured.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import httpx
import trio
from mcp import Client

from tests.support.nodejs import NODE_DIR, node

TS_CLIENT = NODE_DIR / "clients" / "ts_idle_client.mjs"
IDLE_MARGIN = 5.0
"""Seconds past the server's hibernation delay before its RSS is read."""


@attrs.frozen
class RealClients:
    """How many sessions of each kind of real client one batch opens."""

    python: int
    typescript: int

    @property
    def total(self) -> int:
        return self.python + self.typescript


@asynccontextmanager
async def real_sessions(url: str, clients: RealClients) -> AsyncIterator[None]:
    """A batch of real clients' sessions, each with one call behind it, held open inside the block."""
    async with python_clients(url, clients.python):
        ts, lines = await open_ts_clients(url, clients.typescript)
        try:
            yield
            await lines.send_all(b"go\n")
            with trio.fail_after(60):
                await ts.wait()
        finally:
            if ts.returncode is None:
                ts.kill()


@asynccontextmanager
async def python_clients(url: str, count: int, concurrency: int = 16) -> AsyncIterator[None]:
    """`count` Python SDK clients, each with one call behind it, held open inside the block."""
    opening = trio.Semaphore(concurrency)
    release = trio.Event()
    ready = trio.Event()
    opened = 0

    async def hold(index: int) -> None:
        nonlocal opened
        await opening.acquire()
        async with Client(url, mode="legacy") as client:
            await client.call_tool("echo", {"text": f"p{index}"})
            opening.release()
            opened += 1
            if opened == count:
                ready.set()
            await release.wait()

    async with trio.open_nursery() as nursery:
        for index in range(count):
            nursery.start_soon(hold, index)
        if count:
            await ready.wait()
        try:
            yield
        finally:
            release.set()


async def open_ts_clients(url: str, count: int) -> tuple[trio.Process, trio.StapledStream[Any, Any]]:
    """One Node process holding `count` TypeScript SDK clients, each with one call behind it."""
    process = await trio.lowlevel.open_process(
        [node(), str(TS_CLIENT), url, str(count), "--no-notice"],
        cwd=NODE_DIR,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert process.stdin is not None and process.stdout is not None
    lines = trio.StapledStream(process.stdin, process.stdout)
    said = b""
    with trio.fail_after(120):
        while b"\n" not in said:
            chunk = await lines.receive_some()
            if not chunk:
                raise RuntimeError("the TypeScript clients ended before they were ready")
            said += chunk
    ready = json.loads(said.split(b"\n", 1)[0])["ready"]
    if len(ready) != count:
        raise RuntimeError(f"the TypeScript clients opened {len(ready)} of {count} sessions")
    return process, lines


async def hibernating(url: str) -> float:
    """Our `mcp_sessions_hibernating` gauge (nan for a server without it: the SDK's)."""
    base = url.rsplit("/", 1)[0]
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.get(f"{base}/metrics")
    for line in answer.text.splitlines() if answer.status_code == 200 else ():
        if line.startswith("mcp_sessions_hibernating "):
            return float(line.split()[1])
    return float("nan")
