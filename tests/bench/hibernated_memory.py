"""What a hibernated session keeps: `python -m tests.bench.hibernated_memory [N] [--json]`.

Opens N sessions in process (one call each), lets them hibernate, and compares two
`tracemalloc` snapshots: the Python heap per hibernated session and the allocation sites that
hold most of it. The figures are in docs/benchmarks.md ("Gaps": memory per idle session).
"""

from __future__ import annotations

import gc
import logging
import sys
import tracemalloc

import trio

from supervisor import SessionSupervisor, SupervisorConfig, open_supervisor
from tests.support.helpers import rpc
from tests.support.inprocess import open_in_process, post
from tests.support.servers import build_server

HIBERNATE_AFTER = 0.05


async def open_and_call(supervisor: SessionSupervisor, count: int) -> None:
    call = rpc("tools/call", 2, {"name": "echo", "arguments": {"text": "x"}})
    for _ in range(count):
        session_id = await open_in_process(supervisor)
        answer = await post(supervisor, call, session_id)
        assert answer.status == 200, answer.body


async def measure(count: int, json_response: bool) -> None:
    config = SupervisorConfig(json_response=json_response, hibernate_after=HIBERNATE_AFTER, idle_timeout=None)
    async with open_supervisor(build_server(), config) as supervisor:
        await open_and_call(supervisor, 200)  # warm caches and pools first
        await trio.sleep(20 * HIBERNATE_AFTER)
        gc.collect()
        tracemalloc.start(8)
        before = tracemalloc.take_snapshot()
        await open_and_call(supervisor, count)
        await trio.sleep(20 * HIBERNATE_AFTER)
        gc.collect()
        after = tracemalloc.take_snapshot()
        assert supervisor.stats().hibernating == count + 200
        stats = after.compare_to(before, "lineno")
        print(f"{sum(s.size_diff for s in stats) / count:.0f} B of Python heap per hibernated session")
        for stat in stats[:12]:
            where = stat.traceback[0]
            print(f"  {stat.size_diff / count:7.0f} B  {where.filename}:{where.lineno}")
        await supervisor.shutdown()


def main() -> None:
    logging.disable(logging.INFO)
    count = int(next((arg for arg in sys.argv[1:] if arg.isdigit()), "1000"))
    trio.run(measure, count, "--json" in sys.argv)


if __name__ == "__main__":
    main()
