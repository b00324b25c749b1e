"""tools/call rates with the servers measured in turns: `python -m tests.bench.interleaved`.

This machine's speed drifts by up to a third within minutes, so two servers measured one after the
other (as `scripts/bench` does, each started afresh) can differ by more than the change being
judged. Here every chosen server runs at once (each pinned to CPU 0; only the one under load
works), and at each concurrency short windows go round the servers in a rotated order, cycle after
cycle. A drift then falls on all of them alike; the figures are the sums over each server's windows.

Prints one JSON document: per server and concurrency, calls/s, p50 and p99 latency, and the
server's CPU milliseconds per call; each `ours-*` server's ratio against the SDK server of its
mode; and with `--before DIR` (another checkout, e.g. `git worktree add DIR REV`) each of ours
also run from DIR, and the ratio after/before: a change measured in one batch.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import trio

from tests.bench.harness import CallWindow, percentile, started
from tests.bench.servers import FULL, ServerSpec, chosen


async def measure(
    specs: Sequence[ServerSpec], concurrencies: Sequence[int], cycles: int, seconds: float
) -> dict[str, Any]:
    logs = Path(tempfile.mkdtemp(prefix="mcp-interleaved-"))
    totals: dict[tuple[str, int], CallWindow] = {}
    async with AsyncExitStack() as stack:
        benches = [await stack.enter_async_context(started(spec, FULL, logs, spec.key)) for spec in specs]
        for bench in benches:  # warm-up: imports, first-call paths, connection set-up
            warm = await bench.open_exactly(FULL.concurrency)
            await bench.call_window(warm, 0.5, 0.5)
            await bench.delete_sessions(warm, FULL.concurrency)
        for concurrency in concurrencies:
            sessions = [await bench.open_exactly(concurrency) for bench in benches]
            for cycle in range(cycles):
                for k in range(len(benches)):
                    index = (cycle + k) % len(benches)
                    bench = benches[index]
                    await bench.settle()
                    window = await bench.call_window(sessions[index], 0.2, seconds)
                    total = totals.setdefault((bench.spec.key, concurrency), CallWindow())
                    total.latencies += window.latencies
                    total.server_cpu += window.server_cpu
            for bench, mine in zip(benches, sessions, strict=True):
                await bench.delete_sessions(mine, min(concurrency, FULL.concurrency))
        errors = sum(bench.errors.count for bench in benches)
    return report(totals, cycles * seconds, errors)


def report(totals: dict[tuple[str, int], CallWindow], seconds: float, errors: int) -> dict[str, Any]:
    servers: dict[str, dict[str, float]] = {}
    for (key, concurrency), total in totals.items():
        total.latencies.sort()
        calls = max(1, len(total.latencies))
        servers.setdefault(key, {}).update(
            {
                f"c{concurrency}_rate": round(len(total.latencies) / seconds, 1),
                f"c{concurrency}_p50_ms": round(percentile(total.latencies, 0.5) * 1000, 3),
                f"c{concurrency}_p99_ms": round(percentile(total.latencies, 0.99) * 1000, 3),
                f"c{concurrency}_cpu_ms_per_call": round(total.server_cpu * 1000 / calls, 3),
            }
        )
    ratios: dict[str, dict[str, float]] = {}
    changes: dict[str, dict[str, float]] = {}
    for key, figures in servers.items():
        if key.startswith("ours-") and "@" not in key:
            for other, into in ((f"sdk-{key.split('-')[1]}", ratios), (f"{key}@before", changes)):
                base = servers.get(other)
                if base is not None:
                    into[key] = {name: round(v / base[name], 3) for name, v in figures.items() if base[name]}
    return {"servers": servers, "ours_over_sdk": ratios, "after_over_before": changes, "errors": errors}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.interleaved", description=__doc__)
    parser.add_argument("--only", default="ours-json,sdk-json", help="comma-separated server keys")
    parser.add_argument("--concurrency", default="1,16,64", help="comma-separated concurrencies")
    parser.add_argument("--cycles", type=int, default=8, help="windows per server and concurrency")
    parser.add_argument("--seconds", type=float, default=1.0, help="length of one measured window")
    parser.add_argument(
        "--before", type=Path, default=None, help="another checkout: ours from it too, as KEY@before"
    )
    parser.add_argument(
        "--flags",
        default="",
        help="each of ours also run with these flags added, as KEY+FLAGS (--flags='--hibernate-after 0')",
    )
    options = parser.parse_args(argv)
    concurrencies = [int(each) for each in options.concurrency.split(",")]
    specs = chosen(options.only.split(","), options.before, options.flags)
    result = trio.run(measure, specs, concurrencies, options.cycles, options.seconds)
    print(json.dumps(result, indent=2))
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
