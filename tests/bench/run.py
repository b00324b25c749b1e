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
import math
import os
import platform
import shlex
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import attrs
import trio

from supervisor._core._config import DEFAULT_HIBERNATE_AFTER
from tests.bench.client import BadResponse, Connection, McpClient, free_port, wait_for_port
from tests.bench.real_clients import (
    IDLE_MARGIN,
    RealClients,
    hibernating,
    python_clients,
    real_sessions,
)

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
SERVER_CPU = "0"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MAX_ERRORS = 50


@attrs.frozen
class Settings:
    mode: str
    rounds: int
    open_count: int
    call_warmup: float
    call_duration: float
    concurrencies: tuple[int, ...]
    idle_sessions: int
    few_sessions: int
    latency_calls: int
    concurrency: int
    shutdown_timeout: float


QUICK = Settings(
    mode="quick",
    rounds=2,
    open_count=150,
    call_warmup=0.3,
    call_duration=1.0,
    concurrencies=(1, 16, 64),
    idle_sessions=600,
    few_sessions=10,
    latency_calls=40,
    concurrency=16,
    shutdown_timeout=30.0,
)
FULL = Settings(
    mode="full",
    rounds=3,
    open_count=600,
    call_warmup=1.0,
    call_duration=3.0,
    concurrencies=(1, 16, 64),
    idle_sessions=10_000,
    few_sessions=10,
    latency_calls=100,
    concurrency=16,
    shutdown_timeout=60.0,
)


@attrs.frozen
class ServerSpec:
    key: str
    label: str
    family: str  # "ours", "sdk" or "floor"
    mode: str  # "sse", "json" or "-"
    argv: Callable[[str], list[str]]
    hibernate_after: float | None = None
    """Seconds after which its idle sessions hibernate: the idle phases wait that long."""
    root: Path = ROOT
    """The source tree it runs from (another checkout measures a before/after in one batch)."""

    @property
    def check_echo(self) -> bool:
        return self.family != "floor"


PYTHON = sys.executable
HIBERNATE_AFTER = 1.0
OURS_FLAGS = ["--idle-timeout", "0", "--max-sessions", "0", "--max-requests-per-session", "0"]


def ours(
    key: str,
    label: str,
    mode: str,
    hibernate_after: float | None = None,
    *,
    default_hibernation: bool = False,
) -> ServerSpec:
    """Our CLI on the bench server: SSE or JSON answers; hibernating after `hibernate_after`, or
    after the default delay (no flag)."""
    extra = ["--json-response"] if mode == "json" else []
    if hibernate_after is not None:
        extra += ["--hibernate-after", str(hibernate_after)]
    elif default_hibernation:
        hibernate_after = DEFAULT_HIBERNATE_AFTER
    return ServerSpec(
        key,
        label,
        "ours",
        mode,
        lambda bind: [
            PYTHON,
            *("-m", "supervisor", "serve", "tests.bench.bench_server:server", "--bind", bind),
            *OURS_FLAGS,
            *extra,
            *("--log-level", os.environ.get("BENCH_LOG_LEVEL", "warning")),
        ],
        hibernate_after,
    )


SERVERS = (
    # Default flags: sessions hibernate after DEFAULT_HIBERNATE_AFTER idle seconds, which the idle
    # phases wait out.
    ours("ours-sse", "A ours SSE", "sse", default_hibernation=True),
    ours("ours-json", "B ours JSON", "json", default_hibernation=True),
    ours("ours-sse-hib", "F ours SSE, hibernate 1 s", "sse", HIBERNATE_AFTER),
    ours("ours-json-hib", "G ours JSON, hibernate 1 s", "json", HIBERNATE_AFTER),
    ServerSpec(
        "sdk-sse",
        "C SDK SSE",
        "sdk",
        "sse",
        lambda bind: [PYTHON, "-m", "tests.bench.sdk_app", "--bind", bind],
    ),
    ServerSpec(
        "sdk-json",
        "D SDK JSON",
        "sdk",
        "json",
        lambda bind: [PYTHON, "-m", "tests.bench.sdk_app", "--bind", bind, "--json-response"],
    ),
    ServerSpec(
        "floor", "E floor", "floor", "-", lambda bind: [PYTHON, "-m", "tests.bench.floor_app", "--bind", bind]
    ),
)


def as_before(spec: ServerSpec, before: Path) -> ServerSpec:
    """`spec` as run from the checkout `before` (`KEY@before`): a change measured before and after
    in one batch, so a drift of the machine falls on both."""
    return attrs.evolve(spec, key=f"{spec.key}@before", label=f"{spec.label}, before", root=before.resolve())


def with_before(before: Path) -> tuple[ServerSpec, ...]:
    """Every server, and each of ours once more as run from the checkout `before`."""
    return (*SERVERS, *(as_before(spec, before) for spec in SERVERS if spec.family == "ours"))


def cpu_seconds(pid: int | str = "self") -> float:
    """User + system CPU seconds of a process, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_kib(pid: int) -> int:
    """VmRSS of a process in KiB, from /proc/PID/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, math.ceil(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


@attrs.define
class Errors:
    count: int = 0
    sample: str = ""

    def add(self, error: BadResponse) -> None:
        self.count += 1
        if not self.sample:
            self.sample = str(error)[:300]
        if self.count > MAX_ERRORS:
            raise RuntimeError(f"more than {MAX_ERRORS} bad responses; first: {self.sample}")


@attrs.define
class CallWindow:
    """What one window of back-to-back calls measured: each call's latency, and CPU seconds."""

    latencies: list[float] = attrs.field(factory=list)
    generator_cpu: float = 0.0
    server_cpu: float = 0.0


@attrs.define
class Bench:
    """One server process under measurement, and the load generator's clients for it."""

    spec: ServerSpec
    settings: Settings
    port: int
    process: trio.Process
    errors: Errors = attrs.field(factory=Errors)
    clients: list[McpClient] = attrs.field(factory=list)

    def client(self, index: int) -> McpClient:
        while len(self.clients) <= index:
            self.clients.append(McpClient(Connection(HOST, self.port), check_echo=self.spec.check_echo))
        return self.clients[index]

    async def fan_out(
        self, workers: int, job: Callable[[McpClient, int], Awaitable[None]], count: int
    ) -> float:
        """Run `job(client, i)` for i in range(count) on `workers` connections; returns elapsed seconds."""
        indices: Iterator[int] = iter(range(count))

        async def worker(client: McpClient) -> None:
            for index in indices:
                try:
                    await job(client, index)
                except BadResponse as error:
                    self.errors.add(error)

        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for n in range(workers):
                nursery.start_soon(worker, self.client(n))
        return time.perf_counter() - start

    async def open_sessions(self, count: int, workers: int) -> tuple[list[bytes], float]:
        sessions: list[bytes] = []

        async def job(client: McpClient, _: int) -> None:
            sessions.append(await client.open_session())

        elapsed = await self.fan_out(workers, job, count)
        return sessions, elapsed

    async def use_sessions(self, sessions: list[bytes], workers: int) -> None:
        """One tools/call on each session, so an idle session is one that has served a request (a
        session that only did the handshake may cost less: ours opens those dormant); then, for a
        hibernating server, wait until they may all have hibernated."""

        async def job(client: McpClient, index: int) -> None:
            await client.call_echo(sessions[index])

        await self.fan_out(workers, job, len(sessions))
        if self.spec.hibernate_after is not None:
            await trio.sleep(self.spec.hibernate_after + 0.5)

    async def delete_sessions(self, sessions: list[bytes], workers: int) -> float:
        async def job(client: McpClient, index: int) -> None:
            await client.delete_session(sessions[index])

        return await self.fan_out(workers, job, len(sessions))

    async def calls(self, concurrency: int) -> dict[str, float]:
        """tools/call throughput and latency with `concurrency` sessions, each on its own connection."""
        settings = self.settings
        sessions = await self.open_exactly(concurrency)
        window = await self.call_window(sessions, settings.call_warmup, settings.call_duration)
        await self.delete_sessions(sessions, min(concurrency, settings.concurrency))
        window.latencies.sort()
        return {
            "rate": len(window.latencies) / settings.call_duration,
            "p50_ms": percentile(window.latencies, 0.50) * 1000,
            "p99_ms": percentile(window.latencies, 0.99) * 1000,
            "gen_cpu": window.generator_cpu / settings.call_duration,
            "server_cpu": window.server_cpu / settings.call_duration,
        }

    async def open_exactly(self, count: int) -> list[bytes]:
        sessions, _ = await self.open_sessions(count, min(count, self.settings.concurrency))
        if len(sessions) != count:
            raise RuntimeError(f"opened {len(sessions)} of the {count} sessions: {self.errors.sample}")
        return sessions

    async def call_window(self, sessions: list[bytes], warmup: float, duration: float) -> CallWindow:
        """Back-to-back tools/calls on each session (one connection each) for `warmup + duration`
        seconds; what completed inside the last `duration` seconds is counted and timed."""
        window = CallWindow()
        start = time.perf_counter() + warmup
        end = start + duration

        async def worker(client: McpClient, session: bytes) -> None:
            # A call counts (and its latency is sampled) when it completes inside the window,
            # whenever it began.
            while time.perf_counter() < end:
                began = time.perf_counter()
                try:
                    await client.call_echo(session)
                except BadResponse as error:
                    self.errors.add(error)
                    continue
                done = time.perf_counter()
                if start <= done <= end:
                    window.latencies.append(done - began)

        async def meter() -> None:
            """CPU seconds of the load generator and of the server over the window."""
            await trio.sleep(max(0.0, start - time.perf_counter()))
            generator, server = cpu_seconds(), cpu_seconds(self.process.pid)
            await trio.sleep(max(0.0, end - time.perf_counter()))
            window.generator_cpu = cpu_seconds() - generator
            window.server_cpu = cpu_seconds(self.process.pid) - server

        async with trio.open_nursery() as nursery:
            nursery.start_soon(meter)
            for n, session in enumerate(sessions):
                nursery.start_soon(worker, self.client(n), session)
        return window

    async def one_call_latency(self, session: bytes) -> float:
        """Median milliseconds of sequential tools/calls on one session (after a few unmeasured)."""
        client = self.client(0)
        timings: list[float] = []
        for n in range(5 + self.settings.latency_calls):
            began = time.perf_counter()
            try:
                await client.call_echo(session)
            except BadResponse as error:
                self.errors.add(error)
                continue
            if n >= 5:
                timings.append(time.perf_counter() - began)
        return statistics.median(timings) * 1000 if timings else math.nan

    async def settle(self, window: float = 0.2, quiet: float = 0.1, timeout: float = 30.0) -> float:
        """Wait until the server's CPU use over `window` is at most `quiet` of a core (work a previous
        phase left behind, such as deferred session teardown, must not run inside the next one);
        returns the seconds it took beyond one quiet window."""
        began = time.perf_counter()
        while time.perf_counter() - began < timeout:
            before = cpu_seconds(self.process.pid)
            await trio.sleep(window)
            if (cpu_seconds(self.process.pid) - before) / window <= quiet:
                break
        return max(0.0, time.perf_counter() - began - window)

    async def shutdown_seconds(self) -> tuple[float, int | None]:
        """SIGTERM to process exit; the clients' idle keep-alive connections stay open meanwhile."""
        began = time.perf_counter()
        self.process.send_signal(signal.SIGTERM)
        with trio.move_on_after(self.settings.shutdown_timeout):
            await self.process.wait()
            return time.perf_counter() - began, self.process.returncode
        self.process.kill()
        await self.process.wait()
        return float("inf"), None

    def close_clients(self) -> None:
        for client in self.clients:
            client.connection.close()


@asynccontextmanager
async def started(spec: ServerSpec, settings: Settings, logs: Path, name: str) -> AsyncIterator[Bench]:
    """A server afresh, pinned to the server CPU, its log in `logs/name.log`; stopped (killed if
    it outlives the block) and its clients closed on the way out."""
    port = free_port(HOST)
    argv = ["taskset", "-c", SERVER_CPU, *spec.argv(f"{HOST}:{port}")]
    with (logs / f"{name}.log").open("wb") as log:
        process = await trio.lowlevel.open_process(argv, cwd=str(spec.root), stdout=log, stderr=log)
        bench = Bench(spec, settings, port, process)
        try:
            await wait_for_port(HOST, port, 30.0, lambda: process.poll() is None)
            yield bench
        finally:
            bench.close_clients()
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                with trio.move_on_after(settings.shutdown_timeout):
                    await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()


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
