"""An SDK `EventStore` in Redis: a client resuming an SSE stream on another node gets what it missed.

Each SSE stream of a session is a Redis stream under `ev:<session id>:<token>`, trimmed to the
newest `events_per_stream` entries and expiring with the session's record. An event id is
`<token>/<entry id>`: it names its stream, and it is read only within the session that asks
(the session serving the request, from the context), so one session can never replay another's.
While Redis does not answer, events get ids that resume nothing, and the stream goes on live.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from mcp.server.streamable_http import EventCallback, EventMessage, EventStore
from mcp_types import JSONRPCMessage, jsonrpc_message_adapter

from actors import SERVING
from supervisor._cluster._redis_store import RedisStore
from supervisor._cluster._store_health import StoreUnavailable

logger = logging.getLogger("supervisor._redis_events")

_APPEND = """
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 's', ARGV[2], 'm', ARGV[3])
if tonumber(ARGV[4]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
return id
"""


class RedisEventStore(EventStore):
    """Resumable SSE streams shared by every node of a cluster."""

    def __init__(self, store: RedisStore, keep_for: float | None) -> None:
        self._store = store
        self._client: Any = store.client
        self._append = self._client.register_script(_APPEND)
        self._keep_ms = 0 if keep_for is None else int(keep_for * 1000)
        self._lost = 0

    def _key(self, token: str) -> str | None:
        serving = SERVING.get()
        if serving is None:
            return None
        return f"{self._store.settings.prefix}:ev:{serving.session_id}:{token}"

    async def store_event(self, stream_id: str, message: JSONRPCMessage | None) -> str:
        token = hashlib.sha256(stream_id.encode()).hexdigest()[:16]
        key = self._key(token)
        text = "" if message is None else message.model_dump_json(by_alias=True, exclude_unset=True)
        if key is not None:
            args = [str(self._store.settings.events_per_stream), stream_id, text, str(self._keep_ms)]
            try:
                entry = await self._store.bounded("events", self._append(keys=[key], args=args))
                return f"{token}/{entry}"
            except StoreUnavailable:
                pass
        self._lost += 1
        return f"{token}/unstored-{self._lost}"

    async def replay_events_after(self, last_event_id: str, send_callback: EventCallback) -> str | None:
        token, slash, entry = last_event_id.partition("/")
        key = self._key(token)
        if not slash or key is None or entry.startswith("unstored"):
            return None
        try:
            found = await self._store.bounded("events", self._client.xrange(key, entry, "+", count=10_000))
        except StoreUnavailable:
            logger.warning("could not replay a stream: the session store did not answer")
            return None
        if not found or found[0].identifier != entry:
            return None
        stream_id = str(found[0].field_values["s"])
        for later in found[1:]:
            text = later.field_values["m"]
            if text:
                message = jsonrpc_message_adapter.validate_json(text, by_name=False)
                await send_callback(EventMessage(message, f"{token}/{later.identifier}"))
        return stream_id
