"""What a wake from the store and a move cost in process, no HTTP around them (issue 26.4).

`python -m tests.bench.wake_cost` starts a real redis-server and two supervisors in this process
(nodes n1 and n2, JSON mode), then times, one at a time: a `tools/call` on an awake session, the
first call after its eviction (with the parts of it: the claim, the restore, the replay), and
the first call on n2 of a session n1 holds (a move). Both nodes share one core here, so a move's
figure holds both nodes' work. Prints the medians in milliseconds.
"""

from __future__ import annotations

import functools
import logging
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

import actors._incarnation as incarnation
import supervisor._cluster._claims as claims
import supervisor._core._supervisor as core
from actors import CloseReason
from supervisor import SessionSupervisor
from tests.support.cluster import Redis
from tests.support.helpers import rpc
from tests.support.inprocess import open_in_process, post, two_nodes

CALL = rpc("tools/call", 2, {"name": "echo", "arguments": {"text": "x"}})
PARTS: dict[str, list[float]] = {}


def _timed(owner: Any, name: str) -> None:
    """Time every call of `owner.name` into PARTS (a coroutine method)."""
    original: Callable[..., Any] = getattr(owner, name)

    @functools.wraps(original)
    async def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await original(*args, **kwargs)
        finally:
            PARTS.setdefault(name, []).append(time.perf_counter() - started)

    setattr(owner, name, timed)


async def _timed_call(node: SessionSupervisor, session_id: str) -> float:
    started = time.perf_counter()
    answer = await post(node, CALL, session_id)
    assert answer.status == 200, answer.body
    return time.perf_counter() - started


async def _measure(n1: SessionSupervisor, n2: SessionSupervisor, count: int) -> dict[str, float]:
    awake, woken, moved = [], [], []
    evicted = []
    for _ in range(count):
        session_id = await open_in_process(n1)
        await _timed_call(n1, session_id)
        await n1.close_session(session_id, reason=CloseReason.EVICTED)
        evicted.append(session_id)
    await trio.sleep(0.5)  # every eviction written
    PARTS.clear()
    for session_id in evicted:
        woken.append(await _timed_call(n1, session_id))
        awake.append(await _timed_call(n1, session_id))
    parts = {f"wake: {name}": statistics.median(times) for name, times in PARTS.items()}
    for session_id in evicted:
        await trio.sleep(0.02)
        moved.append(await _timed_call(n2, session_id))
    found = {"awake call": statistics.median(awake), "wake": statistics.median(woken), **parts}
    found["move"] = statistics.median(moved)
    return {name: round(value * 1000, 3) for name, value in found.items()}


async def main(count: int = 200) -> None:
    logging.disable(logging.WARNING)
    _timed(claims.Claims, "wake")
    _timed(core.SessionSupervisor, "restore")
    _timed(incarnation.Incarnation, "replay")
    with tempfile.TemporaryDirectory() as directory:
        redis = Redis(Path(directory))
        await redis.start()
        try:
            async with two_nodes(redis.url) as (n1, n2):
                print(await _measure(n1, n2, count))
                await n1.shutdown()
                await n2.shutdown()
        finally:
            await redis.stop()


if __name__ == "__main__":
    trio.run(main)
