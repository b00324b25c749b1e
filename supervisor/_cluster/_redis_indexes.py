"""Each principal's sessions in the store: two sorted sets, scored by when each record expires.

One by the whole principal (`who:`, for the caps and for revoking that principal), one by its
client id alone (`client:`, for revoking a client with every issuer and subject it came with).
Expired entries are dropped when read. Standalone, the record scripts write them in the same
atomic step; on a Redis Cluster they live in other slots, so they are written beside it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import attrs

from actors import Principal


class PrincipalIndexes:
    """The index keys of principals, and the reads (and, on a Redis Cluster, writes) of them."""

    def __init__(self, prefix: str, client: Any, bounded: Callable[[str, Any], Awaitable[Any]]) -> None:
        self._prefix = prefix
        self._client = client
        self._bounded = bounded

    def keys_of(self, principal: Principal | None) -> list[str]:
        """[by principal, by client id]; ['', ''] without a principal."""
        if principal is None:
            return ["", ""]
        text = json.dumps(attrs.asdict(principal), sort_keys=True).encode()
        return [
            f"{self._prefix}:who:{hashlib.sha256(text).hexdigest()[:32]}",
            self._client_key(principal.client_id),
        ]

    def _client_key(self, client_id: str) -> str:
        return f"{self._prefix}:client:{hashlib.sha256(client_id.encode()).hexdigest()[:32]}"

    async def add(self, principal: Principal | None, session_id: str, score: float) -> None:
        for index in self.keys_of(principal) if principal is not None else []:
            await self._bounded("index", self._client.zadd(index, {session_id: score}))

    async def remove(self, principal: Principal | None, session_id: str) -> None:
        for index in self.keys_of(principal) if principal is not None else []:
            await self._bounded("index", self._client.zrem(index, [session_id]))

    async def count_of(self, principal: Principal) -> int:
        """Sessions `principal` holds in the store (over every node), expired entries dropped."""
        index = self.keys_of(principal)[0]
        now = str(time.time())
        await self._bounded("index", self._client.zremrangebyscore(index, "-inf", now))
        return int(await self._bounded("index", self._client.zcount(index, now, "+inf")))

    async def sessions_of(self, principal: Principal) -> list[str]:
        return await self._members(self.keys_of(principal)[0])

    async def sessions_of_client(self, client_id: str) -> list[str]:
        return await self._members(self._client_key(client_id))

    async def _members(self, index: str) -> list[str]:
        """An index's sessions whose records have not expired (those that have are dropped)."""
        from coredis.tokens import PureToken  # here: coredis is imported only with a store

        now = time.time()
        await self._bounded("index", self._client.zremrangebyscore(index, "-inf", now))
        live = self._client.zrange(index, now, "+inf", sortby=PureToken.BYSCORE)
        return [str(member) for member in await self._bounded("index", live)]
