"""What the SDK's own server loop costs per tools/call, with no HTTP and no supervisor around it.

`python -m tests.bench.loop_cost [CALLS] [CONCURRENCY]`: runs the bench server's handshake-era
loop (the one both stacks run: `JSONRPCDispatcher`, `serve_connection`, the `echo` tool in a
worker thread) on memory streams, opens it with `initialize`, then sends CALLS validated
`tools/call` requests from CONCURRENCY tasks and prints CPU microseconds per call. Added to the
floor's own cost per call (hypercorn alone), it is the ceiling of any server that serves this
loop over this HTTP stack (docs/benchmarks.md, "Issue 25").
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

import anyio
import trio
from mcp.shared.message import ServerMessageMetadata, SessionMessage
from mcp_types import jsonrpc_message_adapter

from actors._sdk import lowlevel_of, serve_handshake_loop
from tests.bench.bench_server import server

INITIALIZE = {
    "protocolVersion": "2025-06-18",
    "capabilities": {},
    "clientInfo": {"name": "bench", "version": "1"},
}


async def measure(calls: int, concurrency: int) -> float:
    """CPU microseconds per call (the better of two passes)."""
    lowlevel = lowlevel_of(server)
    in_send, in_receive = anyio.create_memory_object_stream[Any](100)
    out_send, out_receive = anyio.create_memory_object_stream[Any](100)
    waiting: dict[int, trio.Event] = {}

    async def answers() -> None:
        async for item in out_receive:
            event = waiting.pop(getattr(item.message, "id", -1), None)
            if event is not None:
                event.set()

    async def request(request_id: int, method: str, params: dict[str, Any]) -> None:
        event = waiting[request_id] = trio.Event()
        message = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
        request = jsonrpc_message_adapter.validate_python(message)
        await in_send.send(SessionMessage(request, metadata=ServerMessageMetadata(request_context=None)))
        await event.wait()

    best = float("inf")
    async with lowlevel.lifespan(lowlevel) as state, trio.open_nursery() as nursery:
        nursery.start_soon(answers)
        nursery.start_soon(
            lambda: serve_handshake_loop(
                lowlevel,
                in_receive,
                out_send,
                lifespan_state=state,
                session_id="bench",
                standalone=lambda dispatcher: dispatcher,
                seen=lambda _: None,
            )
        )
        await request(0, "initialize", INITIALIZE)
        initialized = jsonrpc_message_adapter.validate_python(
            {"jsonrpc": "2.0", "method": "notifications/initialized"}
        )
        await in_send.send(SessionMessage(initialized))
        ids = iter(range(1, 10**9))
        call = {"name": "echo", "arguments": {"text": "hello"}}

        async def caller() -> None:
            for _ in range(calls // concurrency):
                await request(next(ids), "tools/call", call)

        for _ in range(2):
            began = time.process_time()
            async with trio.open_nursery() as callers:
                for _ in range(concurrency):
                    callers.start_soon(caller)
            best = min(best, (time.process_time() - began) / calls * 1e6)
        nursery.cancel_scope.cancel()
    return best


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    calls = int(args[0]) if args else 4000
    concurrency = int(args[1]) if len(args) > 1 else 16
    cost = trio.run(measure, calls, concurrency)
    print(f"the SDK's server loop alone: {cost:.0f} us of CPU per tools/call at concurrency {concurrency}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
