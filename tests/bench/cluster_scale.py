"""Issue 26.3's scale figures: one node holding 100,000 sessions, measured with real processes.

`scripts/bench-cluster --scale` runs it (redis-server, haproxy and two nodes on loopback, default
flags but `--max-sessions`). Node a opens `sessions` sessions, each serving a call: all but the
last `awake` are evicted to the store right after their call (admin API), so the node's heap is
grown by the evicted ones alone; then `awake` sessions stay held. Read: node RSS and Redis memory
at every tenth (their slopes are the per-session figures, start-up excluded), Redis commands/s
idle and under load, the HAProxy hop as calls/s at c16 through it against straight to the node,
wake and move p50/p99, records of clients with large capabilities, and `redis-benchmark`'s
ceiling for the scripts a node runs. Writes docs/cluster-scale.json.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

from supervisor._cluster import _redis_scripts as scripts
from tests.bench.client import Connection
from tests.bench.scale_client import AdminClient, ScaleClient
from tests.support.cluster import Cluster, Node, running_cluster

ROOT = Path(__file__).resolve().parents[2]
WORKERS = 8
PROGRESS = sys.stderr


def _rss_kib(node: Node) -> int:
    assert node.server is not None
    status = Path(f"/proc/{node.server.process.pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1])


async def _redis_info(cluster: Cluster, section: str) -> dict[str, str]:
    text = await cluster.redis.command("INFO", section)
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line and not line.startswith("#"))


async def _commands(cluster: Cluster) -> int:
    """Commands Redis has run, those inside scripts included (INFO and our own reads left out)."""
    total = 0
    for name, value in (await _redis_info(cluster, "commandstats")).items():
        if not name.startswith(("cmdstat_info", "cmdstat_memory", "cmdstat_dbsize")):
            total += int(value.split("calls=")[1].split(",")[0])
    return total


async def _used_memory(cluster: Cluster) -> int:
    return int((await _redis_info(cluster, "memory"))["used_memory"])


def quantiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2),
        "n": len(ordered),
    }


def _slope(points: list[tuple[int, int]]) -> float:
    """Least-squares growth per session of (sessions, value) checkpoints."""
    xs, ys = [float(x) for x, _ in points], [float(y) for _, y in points]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    top = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    return top / sum((x - mean_x) ** 2 for x in xs)


async def _in_parallel(
    count: int, job: Callable[[ScaleClient, AdminClient, int], Awaitable[None]], node: Node
) -> None:
    """Run `job` for 0..count-1 on WORKERS clients of `node`, each with its own connections."""
    numbers = iter(range(count))

    async def worker() -> None:
        client = ScaleClient(Connection("127.0.0.1", node.port))
        admin = AdminClient(Connection("127.0.0.1", node.admin_port))
        for number in numbers:
            await job(client, admin, number)

    async with trio.open_nursery() as nursery:
        for _ in range(WORKERS):
            nursery.start_soon(worker)


async def open_evicted(cluster: Cluster, count: int, kept: list[bytes], padding: int = 0) -> dict[str, Any]:
    """`count` sessions on node a, each serving a call and then evicted; RSS and Redis memory
    read at every tenth. `kept` gets a sample of the ids (for wakes)."""
    a = cluster.node("a")

    async def one(client: ScaleClient, admin: AdminClient, number: int) -> None:
        session_id = await client.open(padding)
        await client.call(session_id)
        await admin.evict(session_id)
        if number % max(1, count // 400) == 0:
            kept.append(session_id)

    step = max(1, count // 10)
    rss, redis = [(0, _rss_kib(a))], [(0, await _used_memory(cluster))]
    started = time.perf_counter()
    for done in range(step, count + 1, step):
        await _in_parallel(step, one, a)
        rss.append((done, _rss_kib(a)))
        redis.append((done, await _used_memory(cluster)))
        print(
            f"  {done} evicted, {done / (time.perf_counter() - started):.0f}/s, rss {rss[-1][1]} KiB",
            file=PROGRESS,
        )
    # The slope from the first tenth on: what each more session costs once the node is warm.
    return {
        "sessions": count,
        "rss_kib": rss,
        "redis_used_bytes": redis,
        "node_bytes_per_session": round(_slope(rss[1:]) * 1024, 1),
        "node_bytes_per_session_second_half": round(_slope(rss[len(rss) // 2 :]) * 1024, 1),
        "redis_bytes_per_session": round(_slope(redis[1:]), 1),
        "sessions_per_second": round(count / (time.perf_counter() - started), 1),
    }


async def open_awake(cluster: Cluster, count: int, kept: list[bytes]) -> dict[str, Any]:
    """`count` sessions on node a that stay held (default flags: they hibernate after 30 s)."""
    a = cluster.node("a")
    before_rss, before_redis = _rss_kib(a), await _used_memory(cluster)

    async def one(client: ScaleClient, admin: AdminClient, number: int) -> None:
        session_id = await client.open()
        await client.call(session_id)
        kept.append(session_id)

    await _in_parallel(count, one, a)
    after_rss = _rss_kib(a)
    admin = AdminClient(Connection("127.0.0.1", a.admin_port))
    with trio.move_on_after(120):  # the default hibernation delay is 30 s
        while int(str((await admin.stats())["hibernating"])) < count:  # noqa: ASYNC110
            await trio.sleep(1.0)
    return {
        "sessions": count,
        "node_bytes_per_session_awake": round((after_rss - before_rss) * 1024 / count, 1),
        "node_bytes_per_session_hibernated": round((_rss_kib(a) - before_rss) * 1024 / count, 1),
        "redis_bytes_per_session": round((await _used_memory(cluster) - before_redis) / count, 1),
    }


async def redis_rate(cluster: Cluster, window: float) -> float:
    before = await _commands(cluster)
    await trio.sleep(window)
    return round((await _commands(cluster) - before) / window, 1)


async def calls_per_second(port: int, sessions: list[bytes], window: float) -> float:
    """c16: one client per session, calling in a loop for `window` seconds."""
    calls = 0

    async def worker(session_id: bytes) -> None:
        nonlocal calls
        client = ScaleClient(Connection("127.0.0.1", port))
        while True:
            await client.call(session_id)
            calls += 1

    with trio.move_on_after(window):
        async with trio.open_nursery() as nursery:
            for session_id in sessions:
                nursery.start_soon(worker, session_id)
    return round(calls / window, 1)


async def haproxy_hop(cluster: Cluster, awake: list[bytes]) -> dict[str, Any]:
    """Throughput at c16 straight to node a and through haproxy, twice each, alternated, and the
    Redis commands/s while under that load."""
    sessions, window = awake[:16], 15.0
    direct, proxied, commands = [], [], []
    for _ in range(2):
        before = await _commands(cluster)
        direct.append(await calls_per_second(cluster.node("a").port, sessions, window))
        proxied.append(await calls_per_second(cluster.haproxy.port, sessions, window))
        commands.append(round((await _commands(cluster) - before) / (2 * window), 1))
    return {
        "direct_calls_per_second": direct,
        "haproxy_calls_per_second": proxied,
        "ratio": round(statistics.fmean(proxied) / statistics.fmean(direct), 3),
        "redis_commands_per_second_under_load": statistics.fmean(commands),
    }


async def wake_and_move(cluster: Cluster, evicted: list[bytes], awake: list[bytes]) -> dict[str, Any]:
    """One at a time: an awake call (its session just called), a wake from the store on node a,
    a move on demand to node b (the session held, hibernating, on a)."""
    a, b = cluster.node("a"), cluster.node("b")
    on_a, on_b = ScaleClient(Connection("127.0.0.1", a.port)), ScaleClient(Connection("127.0.0.1", b.port))
    awake_calls, wakes, moves = [], [], []
    for session_id in awake[16:216]:
        await on_a.call(session_id)
        awake_calls.append(await on_a.timed_call(session_id))
    for session_id in evicted[:300]:
        wakes.append(await on_a.timed_call(session_id))
    for session_id in awake[300:600]:
        moves.append(await on_b.timed_call(session_id))
    return {
        "awake_call": quantiles(awake_calls),
        "wake_from_store": quantiles(wakes),
        "move": quantiles(moves),
    }


async def redis_ceiling(cluster: Cluster) -> dict[str, float]:
    """redis-benchmark (16 clients, no pipelining) for the scripts a node runs, on this Redis."""
    record = "r" * 600  # a record's size; redis-benchmark's CSV does not quote what it echoes
    runs = {
        "member renewal (MEMBER)": (scripts.MEMBER, ["bench:member:__rand_int__"], ["e1", "6000", "0", "e2"]),
        "claim (CLAIM)": (
            scripts.CLAIM,
            ["bench:lease:__rand_int__", "bench:epoch:__rand_int__"],
            ["a e1", "1800000", "1800000", "", ""],
        ),
        "record write (PUT)": (
            scripts.PUT,
            [
                "bench:rec:__rand_int__",
                "bench:lease:__rand_int__",
                "bench:epoch:__rand_int__",
                "bench:w",
                "bench:c",
            ],
            [record, "1800000", "a e1", "0", "sid__rand_int__", "1", ""],
        ),
    }
    results: dict[str, float] = {}
    for name, (script, keys, args) in runs.items():
        sha = hashlib.sha1(script.encode()).hexdigest()
        await cluster.redis.command("SCRIPT", "LOAD", script)
        command = ["EVALSHA", sha, str(len(keys)), *keys, *args]
        results[name] = await _benchmark(cluster, command)
    results["GET (reference)"] = await _benchmark(cluster, ["GET", "bench:rec:__rand_int__"])
    await cluster.redis.command(
        "EVAL", "for _, k in ipairs(redis.call('KEYS', 'bench:*')) do redis.call('DEL', k) end", "0"
    )
    return results


async def _benchmark(cluster: Cluster, command: list[str]) -> float:
    done = await trio.run_process(
        [
            "redis-benchmark",
            "-p",
            str(cluster.redis.port),
            "-n",
            "200000",
            "-c",
            "16",
            "-r",
            "1000000",
            "--csv",
            *command,
        ],
        capture_stdout=True,
    )
    row = list(csv.reader(done.stdout.decode().strip().splitlines()))[-1]
    return float(row[1])


async def scale(workdir: Path, sessions: int, awake_count: int) -> dict[str, Any]:
    # Default flags but these: room for the held sessions, and no eviction by idleness (the
    # evicted ones are evicted by hand right after their call; the held ones must stay held).
    extra = ("--lease-ttl", "6", "--max-sessions", str(2 * awake_count), "--evict-after", "0")
    results: dict[str, Any] = {"sessions": sessions, "awake": awake_count}
    async with running_cluster(workdir, count=2, extra=extra) as cluster:
        a = cluster.node("a")
        results["node_rss_kib_empty"] = _rss_kib(a)
        evicted: list[bytes] = []
        awake: list[bytes] = []
        print(f"opening {sessions - awake_count} sessions, evicting each after its call", file=PROGRESS)
        results["evicted"] = await open_evicted(cluster, sessions - awake_count, evicted)
        print(f"opening {awake_count} sessions that stay", file=PROGRESS)
        results["held"] = await open_awake(cluster, awake_count, awake)
        results["node_rss_kib_all"] = _rss_kib(a)
        results["redis_dbsize"] = int(await cluster.redis.command("DBSIZE"))
        results["redis_commands_per_second_idle"] = await redis_rate(cluster, 30.0)
        print("throughput through haproxy and straight", file=PROGRESS)
        results["haproxy_hop_c16"] = await haproxy_hop(cluster, awake)
        print("wake and move", file=PROGRESS)
        results["latency"] = await wake_and_move(cluster, evicted, awake)
        print("large capabilities", file=PROGRESS)
        results["large_capabilities_8k"] = await open_evicted(cluster, 4000, [], padding=8192)
        print("large capabilities, the same for every client (clients of one release)", file=PROGRESS)
        results["large_capabilities_8k_same"] = await open_evicted(cluster, 4000, [], padding=-8192)
        results["redis_benchmark_requests_per_second"] = await redis_ceiling(cluster)
        stats = await AdminClient(Connection("127.0.0.1", a.admin_port)).stats()
        results["node_a_at_the_end"] = {key: stats[key] for key in ("live", "hibernating", "closed")}
        store = stats["cluster"]
        assert isinstance(store, dict)
        results["node_a_at_the_end"]["store"] = {key: store.get(key) for key in ("fenced", "store")}
    return results


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="scripts/bench-cluster --scale")
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--awake", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "cluster-scale.json")
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as directory:
        results = await scale(Path(directory), options.sessions, options.awake)
    options.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    trio.run(main, sys.argv[1:])
