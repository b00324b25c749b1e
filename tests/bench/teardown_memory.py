"""Does memory come back after a large teardown? `python -m tests.bench.teardown_memory [N]`.

Opens N sessions in process (initialize, initialized, one call each), deletes them all, twice,
then tries `gc.collect()` and glibc's `malloc_trim(0)`, printing the resident set size after each
step. The figures are in docs/benchmarks.md ("Memory after a large teardown").
"""

from __future__ import annotations

import ctypes
import gc
import logging
import sys

import trio

from supervisor import SupervisorConfig, open_supervisor
from tests.support.helpers import initialize_body, mcp_headers, rpc
from tests.support.inprocess import call_app, post
from tests.support.servers import build_server


def rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def measure(count: int) -> None:
    async with open_supervisor(build_server(), SupervisorConfig()) as supervisor:
        print(f"start                    {rss_mib():7.1f} MiB")
        for round_ in range(2):
            ids = []
            for _ in range(count):
                opened = await post(supervisor, initialize_body())
                session_id = opened.headers["mcp-session-id"]
                await post(supervisor, rpc("notifications/initialized", None), session_id)
                await post(
                    supervisor, rpc("tools/call", 2, {"name": "echo", "arguments": {"text": "x"}}), session_id
                )
                ids.append(session_id)
            print(f"round {round_}: {count} open    {rss_mib():7.1f} MiB")
            for session_id in ids:
                await call_app(supervisor, "DELETE", b"", mcp_headers(session_id))
            print(f"round {round_}: all deleted {rss_mib():7.1f} MiB")
        gc.collect()
        print(f"gc.collect()             {rss_mib():7.1f} MiB")
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        print(f"malloc_trim(0)           {rss_mib():7.1f} MiB")


if __name__ == "__main__":
    logging.disable(logging.CRITICAL)
    trio.run(measure, int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
