"""Python function calls a server makes per tools/call: a measure of the hot path that noise cannot move.

`python -m tests.bench.call_count [KEYS] [CONCURRENCY]` (KEYS from tests/bench/servers.py, default
`ours-json,sdk-json`): starts each server under cProfile twice, drives 400 and then 2,000
`echo` calls at CONCURRENCY (16), stops it with SIGTERM, and prints the difference per call:
function calls (coroutine resumptions count as calls) and the top functions by calls. On a
machine whose timings swing by a third from run to run, this is how a change to the request path
is judged before the timed benchmark.
"""

from __future__ import annotations

import os
import pstats
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import trio

from tests.bench import harness, servers
from tests.bench.client import free_port, wait_for_port

LOADS = (400, 2000)


async def drive(
    spec: servers.ServerSpec, runner: Sequence[str], calls: int, concurrency: int, ready: float
) -> None:
    """One server run by `runner` in place of its interpreter (the interpreter under a profiler),
    pinned to the server CPU: `calls` echo calls at `concurrency`, then SIGTERM and its exit.

    `ready`: seconds the server may take to listen (a server under valgrind starts slowly).
    """
    port = free_port(servers.HOST)
    _, *rest = spec.argv(f"{servers.HOST}:{port}")
    argv = ["taskset", "-c", servers.SERVER_CPU, *runner, *rest]
    process = await trio.lowlevel.open_process(
        argv, cwd=str(spec.root), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    bench = harness.Bench(spec, servers.QUICK, port, process)
    await wait_for_port(servers.HOST, port, ready, lambda: process.poll() is None)
    sessions, _ = await bench.open_sessions(concurrency, concurrency)

    async def caller(index: int, session: bytes) -> None:
        client = bench.client(index)
        for _ in range(calls // concurrency):
            await client.call_echo(session)

    async with trio.open_nursery() as nursery:
        for index, session in enumerate(sessions):
            nursery.start_soon(caller, index, session)
    bench.close_clients()
    process.send_signal(signal.SIGTERM)
    await process.wait()
    if bench.errors.count:
        raise RuntimeError(f"{spec.key}: {bench.errors.count} bad answers: {bench.errors.sample}")


async def profile(spec: servers.ServerSpec, calls: int, concurrency: int, out: Path) -> pstats.Stats:
    """One server under cProfile: `calls` echo calls at `concurrency`, then SIGTERM; its stats."""
    python = spec.argv(servers.HOST)[0]
    await drive(spec, [python, "-m", "cProfile", "-o", str(out)], calls, concurrency, 60.0)
    return pstats.Stats(str(out))


async def measure(spec: servers.ServerSpec, concurrency: int) -> tuple[float, list[tuple[float, str]]]:
    """Function calls per tools/call, and the 15 functions called most per call."""
    with tempfile.TemporaryDirectory() as folder:
        low = await profile(spec, LOADS[0], concurrency, Path(folder) / "low.prof")
        high = await profile(spec, LOADS[1], concurrency, Path(folder) / "high.prof")
    calls = LOADS[1] - LOADS[0]
    rows = []
    for function, (_, count, *_) in high.stats.items():  # type: ignore[attr-defined]
        before = low.stats.get(function, (0, 0))[1]  # type: ignore[attr-defined]
        rows.append(
            ((count - before) / calls, f"{os.path.basename(function[0])}:{function[1]} {function[2]}")
        )
    rows.sort(reverse=True)
    return (high.total_calls - low.total_calls) / calls, rows[:15]  # type: ignore[attr-defined]


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    keys = (args[0] if args else "ours-json,sdk-json").split(",")
    concurrency = int(args[1]) if len(args) > 1 else 16
    for spec in servers.chosen(keys, None):
        key = spec.key
        per_call, top = trio.run(measure, spec, concurrency)
        print(f"{key}: {per_call:.0f} Python function calls per tools/call at concurrency {concurrency}")
        for count, name in top:
            print(f"  {count:7.1f}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
