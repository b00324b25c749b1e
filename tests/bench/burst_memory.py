"""What a burst leaves behind: `python -m tests.bench.burst_memory [N] [--trace]`.

In process, default settings (hibernation after 30 idle seconds): N sessions are opened (dormant),
then used once each within the delay, so all are awake together, then left until every one has
hibernated. At each step it prints, per session, the RSS growth, the bytes in live blocks of
Python's small-object allocator, and the allocator's arenas (1 MiB each) held. It shows why the
benchmark's RSS per idle session at default flags is the peak of the burst: the live bytes fall
back to the dormant figure, the arenas do not, because objects made while the sessions were awake
outlive their hibernation, one or more in every arena. `--trace` lists those objects by where
they were allocated (tracemalloc; the arena and live-byte figures are then not measured).
"""

from __future__ import annotations

import gc
import logging
import os
import re
import sys
import tempfile
import tracemalloc

import attrs
import trio

from supervisor import SessionSupervisor, SupervisorConfig, open_supervisor
from tests.bench.hibernated_memory import open_and_call
from tests.support.helpers import rpc
from tests.support.inprocess import open_in_process, post
from tests.support.servers import build_server

WARM_UP = 200


@attrs.frozen
class Heap:
    rss_kib: int
    arenas: int
    live_bytes: int


def heap() -> Heap:
    """RSS, and the small-object allocator's arenas and live bytes (from `sys._debugmallocstats`)."""
    gc.collect()
    with tempfile.TemporaryFile("w+") as out:
        saved = os.dup(2)
        os.dup2(out.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        text = out.read()
    arenas = re.search(r"arenas allocated current\s*=\s*([\d,]+)", text)
    live = re.search(r"bytes in allocated blocks\s*=\s*([\d,]+)", text)
    with open("/proc/self/status") as status:
        rss = next(line for line in status if line.startswith("VmRSS"))
    return Heap(
        int(rss.split()[1]),
        int(arenas.group(1).replace(",", "")) if arenas else 0,
        int(live.group(1).replace(",", "")) if live else 0,
    )


def row(name: str, base: Heap, now: Heap, count: int, *, allocator: bool) -> str:
    """One step's figures per session (`allocator`: with the allocator's, which tracing hides)."""
    text = f"{name:24} RSS {(now.rss_kib - base.rss_kib) / count:6.1f} KiB/session"
    if not allocator:
        return text
    live = (now.live_bytes - base.live_bytes) / count / 1024
    return f"{text}   live {live:6.1f} KiB/session   arenas held {now.arenas - base.arenas:5}"


async def all_hibernated(supervisor: SessionSupervisor, total: int) -> None:
    """Past the hibernation delay of the last session used (and a margin): all must be hibernating."""
    await trio.sleep((supervisor.config.hibernate_after or 0.0) + 2.0)
    hibernating = supervisor.stats().hibernating
    assert hibernating == total, f"{hibernating} of {total} sessions hibernating"


async def measure(count: int, trace: bool) -> None:
    config = SupervisorConfig(idle_timeout=None)
    call = rpc("tools/call", 2, {"name": "echo", "arguments": {"text": "x"}})
    async with open_supervisor(build_server(), config) as supervisor:
        await open_and_call(supervisor, WARM_UP)  # warm caches and pools first
        await all_hibernated(supervisor, WARM_UP)
        base = heap()
        sessions = [await open_in_process(supervisor) for _ in range(count)]
        opened = heap()
        if trace:
            tracemalloc.start(10)
            dormant = tracemalloc.take_snapshot()
        for session_id in sessions:
            assert (await post(supervisor, call, session_id)).status == 200
        awake = heap()
        await all_hibernated(supervisor, WARM_UP + count)
        hibernated = heap()
        print(f"{count} sessions, default settings (hibernation after {config.hibernate_after:.0f} s)")
        steps = (("opened (dormant)", opened), ("used, all awake", awake), ("all hibernated", hibernated))
        for name, now in steps:
            print(row(name, base, now, count, allocator=not trace))
        if trace:
            kept = tracemalloc.take_snapshot().compare_to(dormant, "traceback")
            grown = [stat for stat in kept if stat.size_diff > 0]
            kept_bytes = sum(stat.size_diff for stat in grown) / count
            print(f"made while awake, alive once hibernated: {kept_bytes:.0f} B/session")
            for stat in grown[:12]:
                where = " < ".join(f"{os.path.basename(f.filename)}:{f.lineno}" for f in stat.traceback[-4:])
                print(f"  {stat.size_diff / count:6.0f} B  {where}")
        await supervisor.shutdown()


def main() -> None:
    logging.disable(logging.INFO)
    count = int(next((arg for arg in sys.argv[1:] if arg.isdigit()), "3000"))
    trio.run(measure, count, "--trace" in sys.argv)


if __name__ == "__main__":
    main()
