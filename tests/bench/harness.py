"""One server under measurement: started afresh and pinned, its clients driven, its CPU and memory read."""

from __future__ import annotations

import math
import os
import signal
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import attrs
import trio

from tests.bench.client import BadResponse, Connection, McpClient, free_port, wait_for_port
from tests.bench.servers import HOST, SERVER_CPU, ServerSpec, Settings

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MAX_ERRORS = 50


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
