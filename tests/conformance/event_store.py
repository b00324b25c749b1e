"""An in-memory SSE event store, bounded, so the fixture can offer resumable streams and polling."""

from __future__ import annotations

import collections
import itertools
from collections.abc import Awaitable, Callable

import attrs
import trio
import trio.testing
from mcp.server.streamable_http import EventCallback, EventMessage, EventStore
from mcp_types import JSONRPCMessage


@attrs.frozen
class _Stored:
    stream_id: str
    event_id: int
    message: JSONRPCMessage | None


class MemoryEventStore(EventStore):
    """Keeps the last `capacity` events of all streams; ids are one increasing counter.

    A priming event (message None) is stored like any other so a client that saw only the
    priming event can resume after it; it is never replayed itself.
    """

    def __init__(self, capacity: int = 10_000) -> None:
        self._events: collections.deque[_Stored] = collections.deque(maxlen=capacity)
        self._ids = itertools.count(1)
        self._resumed: dict[str, trio.Event] = {}

    def expect_resume(self, stream_id: str) -> Callable[[], Awaitable[None]]:
        """Before closing a stream: what waits until a client resumes it (a request's stream id is
        its request id), then until every task is blocked, since the transport registers the
        resumed stream right after the replay and what is sent after that reaches the client live."""
        resumed = self._resumed[stream_id] = trio.Event()

        async def wait() -> None:
            await resumed.wait()
            await trio.testing.wait_all_tasks_blocked()

        return wait

    async def store_event(self, stream_id: str, message: JSONRPCMessage | None) -> str:
        event_id = next(self._ids)
        self._events.append(_Stored(stream_id, event_id, message))
        return str(event_id)

    async def replay_events_after(self, last_event_id: str, send_callback: EventCallback) -> str | None:
        try:
            after = int(last_event_id)
        except ValueError:
            return None
        stream_id = next((event.stream_id for event in self._events if event.event_id == after), None)
        if stream_id is None:
            return None
        later = [e for e in self._events if e.stream_id == stream_id and e.event_id > after]
        for event in later:
            if event.message is not None:
                await send_callback(EventMessage(event.message, str(event.event_id)))
        resumed = self._resumed.pop(stream_id, None)
        if resumed is not None:
            resumed.set()
        return stream_id
