"""Notice when the server loop has settled a request whose client already left.

In the handshake-era protocol versions a dropped connection is not a cancellation, so a request
runs on after its client leaves, and must stay counted in flight until it is done (else its
session could idle out under it). With the direct lane the actor itself waits for the answer.
On the transport's path with an event store, the SDK transport stops streaming when the client
leaves and stores what the loop still writes for the request, its final response or its
"Request cancelled" error among them: the store is where the end of the request shows.
"""

from __future__ import annotations

from typing import Any

import attrs
import trio
from mcp.server.streamable_http import EventCallback, EventId, EventStore, StreamId
from mcp_types import JSONRPCError, JSONRPCMessage, JSONRPCResponse


@attrs.define(eq=False)
class AnswerWatch:
    """Events set when the response to a watched request id passes; all set when the loop ends."""

    _events: dict[str, trio.Event] = attrs.field(init=False, factory=dict)

    def watch(self, request_id: Any) -> trio.Event:
        event = self._events[str(request_id)] = trio.Event()
        return event

    def unwatch(self, request_id: Any, event: trio.Event) -> None:
        key = str(request_id)
        if self._events.get(key) is event:
            del self._events[key]

    def saw(self, message: JSONRPCMessage) -> None:
        if self._events and isinstance(message, JSONRPCResponse | JSONRPCError):
            event = self._events.pop(str(message.id), None)
            if event is not None:
                event.set()

    def ended(self) -> None:
        """No loop will answer any more."""
        for event in self._events.values():
            event.set()
        self._events.clear()


class WatchedEventStore(EventStore):
    """The configured event store, telling one transport's `AnswerWatch` what it stores."""

    def __init__(self, inner: EventStore, watch: AnswerWatch) -> None:
        self._inner = inner
        self._watch = watch

    async def store_event(self, stream_id: StreamId, message: JSONRPCMessage | None) -> EventId:
        event_id = await self._inner.store_event(stream_id, message)
        if message is not None:
            self._watch.saw(message)
        return event_id

    async def replay_events_after(
        self, last_event_id: EventId, send_callback: EventCallback
    ) -> StreamId | None:
        return await self._inner.replay_events_after(last_event_id, send_callback)
