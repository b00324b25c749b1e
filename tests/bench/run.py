"""The side-by-side benchmark of issue 6: `scripts/bench [--quick]` (see docs/benchmarks.md).

Seven servers, each its own process pinned to CPU 0, serving the same `echo` tool:

  A ours-sse    `python -m supervisor serve tests.bench.bench_server:server` (SSE answers)
  B ours-json   the same with `--json-response`
  C sdk-sse     the SDK's `MCPServer.streamable_http_app()` under `hypercorn.trio.serve`
  D sdk-json    the same with `json_response=True`
  E floor       a raw ASGI app under hypercorn trio answering every POST with a fixed body
  F ours-sse-hib  A with `--hibernate-after 1`
  G ours-json-hib B with `--hibernate-after 1`

Idle sessions are sessions that did the handshake and then served one tools/call. A and B run with
default flags, so their sessions hibernate after 30 idle seconds, which each idle phase waits out.
In a full run (or with `--real-clients`), each MCP server is also measured with the real Python
and TypeScript SDK clients' sessions (tests/bench/real_clients.py).

This process is the load generator (pin it to CPU 1: `scripts/bench` does). Each round starts every
server afresh, one after the other in a rotated order, and measures all of its metrics; the report
takes the median over rounds.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import attrs
import trio

from tests.bench.harness import Bench, rss_kib, started
from tests.bench.real_clients import (
    IDLE_MARGIN,
    RealClients,
    hibernating,
    python_clients,
    real_sessions,
)
from tests.bench.servers import (
    FULL,
    HOST,
    QUICK,
    ROOT,
    SERVER_CPU,
    SERVERS,
    ServerSpec,
    Settings,
    with_before,
)


async def shutdown_phase(bench: Bench, result: dict[str, Any]) -> None:
    """Idle sessions opened and used (for a hibernating server, left past its delay), then
    SIGTERM to exit, timed; the clients' idle keep-alive connections stay open meanwhile."""
    settings = bench.settings
    sessions, _ = await bench.open_sessions(settings.idle_sessions, settings.concurrency)
    await bench.use_sessions(sessions, settings.concurrency)
    await bench.settle()
    result["shutdown_sessions"] = len(sessions)
    result["shutdown_s"], result["exit_code"] = await bench.shutdown_seconds()


async def measure_shutdown(
    spec: ServerSpec, settings: Settings, logs: Path, round_index: int
) -> dict[str, Any]:
    """The shutdown phase alone."""
    result: dict[str, Any] = {"server": spec.key, "round": round_index}
    async with started(spec, settings, logs, f"{spec.key}-shutdown-round{round_index}") as bench:
        await shutdown_phase(bench, result)
    result["errors"] = bench.errors.count
    return result


async def measure_calls(spec: ServerSpec, settings: Settings, logs: Path, round_index: int) -> dict[str, Any]:
    """The tools/call phase alone (after the warm-up): for tuning the hot path."""
    result: dict[str, Any] = {"server": spec.key, "round": round_index}
    async with started(spec, settings, logs, f"{spec.key}-calls-round{round_index}") as bench:
        warm, _ = await bench.open_sessions(settings.concurrency, settings.concurrency)
        await bench.one_call_latency(warm[0])
        await bench.delete_sessions(warm, settings.concurrency)
        for concurrency in settings.concurrencies:
            await bench.settle()
            for name, value in (await bench.calls(concurrency)).items():
                result[f"c{concurrency}_{name}"] = value
    result["errors"] = bench.errors.count
    return result


async def measure(spec: ServerSpec, settings: Settings, logs: Path, round_index: int) -> dict[str, Any]:
    """Start one server afresh, take every metric, stop it with SIGTERM (timed)."""
    result: dict[str, Any] = {"server": spec.key, "round": round_index}
    async with started(spec, settings, logs, f"{spec.key}-round{round_index}") as bench:
        process = bench.process
        # warm-up: imports, first-call paths, connection setup
        warm, _ = await bench.open_sessions(settings.concurrency, settings.concurrency)
        await bench.one_call_latency(warm[0])
        await bench.delete_sessions(warm, settings.concurrency)

        # memory first, while the heap holds nothing freed by earlier phases for new sessions to reuse
        few, _ = await bench.open_sessions(settings.few_sessions, settings.few_sessions)
        await bench.use_sessions(few, settings.few_sessions)
        await bench.settle()
        rss_before = rss_kib(process.pid)
        result["latency_few_ms"] = await bench.one_call_latency(few[0])
        more, elapsed = await bench.open_sessions(settings.idle_sessions - len(few), settings.concurrency)
        result["bulk_open_rate"] = len(more) / elapsed
        await bench.use_sessions(more, settings.concurrency)
        result["fill_settle_s"] = await bench.settle()
        rss_after = rss_kib(process.pid)
        result["latency_many_ms"] = await bench.one_call_latency(few[0])
        opened = len(few) + len(more)
        result["sessions_open"] = opened
        result["rss_before_kib"] = rss_before
        result["rss_after_kib"] = rss_after
        result["rss_per_session_kib"] = (rss_after - rss_before) / max(1, len(more))
        result["latency_growth"] = result["latency_many_ms"] / result["latency_few_ms"]

        await bench.settle()
        everything = few + more
        elapsed = await bench.delete_sessions(everything, settings.concurrency)
        result["delete_rate"] = len(everything) / elapsed
        result["delete_settle_s"] = await bench.settle()

        sessions, elapsed = await bench.open_sessions(settings.open_count, settings.concurrency)
        result["open_rate"] = len(sessions) / elapsed
        await bench.delete_sessions(sessions, settings.concurrency)

        for concurrency in settings.concurrencies:
            await bench.settle()
            for name, value in (await bench.calls(concurrency)).items():
                result[f"c{concurrency}_{name}"] = value

        await shutdown_phase(bench, result)
    result["errors"] = bench.errors.count
    result["error_sample"] = bench.errors.sample
    return result


async def measure_real_clients(
    spec: ServerSpec, settings: Settings, logs: Path, round_index: int, clients: RealClients
) -> dict[str, Any]:
    """A server afresh; two batches of the real SDK clients' sessions (GET stream held), one call
    each, left idle past its hibernation delay; RSS per session of the second (issue 25.5)."""
    result: dict[str, Any] = {"server": spec.key, "round": round_index, "phase": "real-clients"}
    idle = (spec.hibernate_after or 0.0) + IDLE_MARGIN
    async with started(spec, settings, logs, f"{spec.key}-real-round{round_index}") as bench:
        pid, url = bench.process.pid, f"http://{HOST}:{bench.port}/mcp"
        async with python_clients(url, 2):  # imports and first-call paths, on both sides
            pass
        await bench.settle()
        before = rss_kib(pid)
        async with real_sessions(url, clients):
            await trio.sleep(idle)
            await bench.settle()
            first = rss_kib(pid)
            async with real_sessions(url, clients):
                await trio.sleep(idle)
                await bench.settle()
                second = rss_kib(pid)
                result["real_hibernating"] = await hibernating(url)
    result["real_sessions"] = 2 * clients.total
    result["real_rss_first_kib"] = (first - before) / clients.total
    result["real_rss_per_session_kib"] = (second - first) / clients.total
    return result


def machine_facts() -> dict[str, Any]:
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    versions = {name: metadata.version(name) for name in ("mcp", "trio", "hypercorn", "h11", "anyio")}
    return {
        "cpu": model,
        "cpus": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "versions": versions,
        "generator_cpus": sorted(os.sched_getaffinity(0)),
        "server_cpus": [int(SERVER_CPU)],
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
    }


async def run_all(
    settings: Settings,
    specs: Sequence[ServerSpec],
    logs: Path,
    real: RealClients | None = None,
    *,
    real_only: bool = False,
    shutdown_only: bool = False,
    calls_only: bool = False,
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for round_index in range(settings.rounds):
        order = [specs[(round_index + k) % len(specs)] for k in range(len(specs))]
        for spec in order:
            began = time.monotonic()
            print(f"round {round_index + 1}/{settings.rounds}: {spec.label} ...", end="", flush=True)
            if real is not None and spec.family != "floor":
                extra = await measure_real_clients(spec, settings, logs, round_index, real)
                print(
                    f" real clients {extra['real_rss_per_session_kib']:.1f} KiB/session", end="", flush=True
                )
            else:
                extra = {}
            if real_only:
                rows.append({"server": spec.key, "round": round_index, "errors": 0, **extra})
                print(f"  {time.monotonic() - began:.1f}s", flush=True)
                continue
            if calls_only:
                row = await measure_calls(spec, settings, logs, round_index)
                rows.append(row)
                print(
                    "".join(f" c{n} {row[f'c{n}_rate']:.0f}/s" for n in settings.concurrencies)
                    + f" c1 p50 {row['c1_p50_ms']:.2f} ms",
                    flush=True,
                )
                continue
            if shutdown_only:
                row = await measure_shutdown(spec, settings, logs, round_index)
                rows.append(row)
                print(
                    f" shutdown {row['shutdown_s']:.2f}s with {row['shutdown_sessions']} sessions", flush=True
                )
                continue
            row = await measure(spec, settings, logs, round_index)
            row.update({key: value for key, value in extra.items() if key.startswith("real_")})
            rows.append(row)
            print(
                f" {time.monotonic() - began:.1f}s  open {row['open_rate']:.0f}/s"
                f"  c16 {row['c16_rate']:.0f}/s  rss/session {row['rss_per_session_kib']:.1f} KiB"
                f"  delete {row['delete_rate']:.0f}/s  shutdown {row['shutdown_s']:.2f}s"
                f"  errors {row['errors']}",
                flush=True,
            )
    return rows


def medians(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for server in dict.fromkeys(row["server"] for row in rows):
        mine = [row for row in rows if row["server"] == server]
        keys = [k for k, v in mine[0].items() if isinstance(v, int | float) and k != "round"]
        out[server] = {key: statistics.median(float(row[key]) for row in mine) for key in keys}
    return out


def real_clients_of(option: str | None, settings: Settings) -> RealClients | None:
    """How many real clients of each kind a batch opens: as given, else 150 Python and 50
    TypeScript ones in a full run (none in a quick one)."""
    if option is None:
        return RealClients(150, 50) if settings.mode == "full" else None
    python, typescript = (int(part) for part in option.split(","))
    return RealClients(python, typescript)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts, short runs (noisy; ~5 min)")
    parser.add_argument("--rounds", type=int, default=None, help="override the number of rounds")
    parser.add_argument("--sessions", type=int, default=None, help="override the idle-session count")
    parser.add_argument(
        "--only", default=None, help="comma-separated server keys (ours-sse,ours-json,sdk-sse,sdk-json,floor)"
    )
    parser.add_argument("--out", default=str(ROOT / "docs"), help="where results, table and plots go")
    parser.add_argument("--no-docs", action="store_true", help="write the JSON only (no markdown, no plots)")
    parser.add_argument(
        "--real-clients",
        default=None,
        metavar="PY,TS",
        help="also open sessions with the real Python and TypeScript SDK clients (GET stream held), "
        "PY and TS of them, and read RSS per idle session (full mode: 150,50 a batch, two batches)",
    )
    parser.add_argument("--real-only", action="store_true", help="only the real-client phase")
    parser.add_argument(
        "--shutdown-only", action="store_true", help="only the shutdown phase (idle sessions, then SIGTERM)"
    )
    parser.add_argument(
        "--calls-only", action="store_true", help="only the tools/call phase (c1, c16, c64), for tuning"
    )
    parser.add_argument(
        "--before",
        type=Path,
        default=None,
        metavar="DIR",
        help="another checkout (git worktree add DIR REV): each of ours also runs from it, as KEY@before, "
        "in the same batch",
    )
    options = parser.parse_args(argv)
    settings = QUICK if options.quick else FULL
    if options.rounds is not None:
        settings = attrs.evolve(settings, rounds=options.rounds)
    if options.sessions is not None:
        settings = attrs.evolve(settings, idle_sessions=options.sessions)
    specs: tuple[ServerSpec, ...] = SERVERS if options.before is None else with_before(options.before)
    if options.only:
        wanted = options.only.split(",")
        specs = tuple(spec for spec in specs if spec.key in wanted)
    if sorted(os.sched_getaffinity(0)) == [int(SERVER_CPU)]:
        print("warning: the load generator shares CPU 0 with the servers", file=sys.stderr)
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    logs = Path(tempfile.mkdtemp(prefix="mcp-bench-"))
    print(f"benchmark ({settings.mode}): {settings.rounds} round(s), server logs in {logs}", flush=True)
    began = time.monotonic()
    real = (
        None
        if options.shutdown_only or options.calls_only
        else real_clients_of(options.real_clients, settings)
    )
    if options.real_only:
        specs = tuple(spec for spec in specs if spec.family != "floor")
    rows = trio.run(
        functools.partial(
            run_all,
            settings,
            specs,
            logs,
            real,
            real_only=options.real_only,
            shutdown_only=options.shutdown_only,
            calls_only=options.calls_only,
        )
    )
    results = {
        "meta": {
            "mode": settings.mode,
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": shlex.join(["scripts/bench", *(sys.argv[1:] if argv is None else argv)]),
            "wall_seconds": round(time.monotonic() - began, 1),
            "machine": machine_facts(),
            "settings": attrs.asdict(settings),
            "servers": {spec.key: {"label": spec.label, "argv": spec.argv(f"{HOST}:PORT")} for spec in specs},
        },
        "rounds": rows,
        "medians": medians(rows),
    }
    results_path = out / "bench-results.json"
    results_path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"wrote {results_path}")
    if options.calls_only:
        return 1 if any(row["errors"] for row in rows) else 0
    from tests.bench import report

    print(report.render(results, out, write_docs=not options.no_docs))
    return 1 if any(row["errors"] for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
