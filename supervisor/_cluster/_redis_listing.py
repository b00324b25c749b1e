"""Listing the cluster's sessions from the store (the admin API's `scope=cluster`).

A SCAN of the record keys (on a Redis Cluster, of every primary), then one MGET of records and
leases per page, and of the holders' memberships: a dead node's leases are left behind, so a
holder is named only while it is a member.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from actors import SessionRecord

Loaded = list[tuple[SessionRecord | None, str | None]]
Listed = list[tuple[SessionRecord, str | None]]


class RecordListing:
    """The reads that list records: built by the store with the client, its key names, its
    bounded call and its record loader (which checks the cluster secret)."""

    def __init__(
        self,
        prefix: str,
        client: Any,
        bounded: Callable[..., Awaitable[Any]],
        *,
        sharded: bool,
        load_many: Callable[[Sequence[str]], Awaitable[Loaded]],
        member_key: Callable[[str], str],
    ) -> None:
        self._prefix = prefix
        self._client = client
        self._bounded = bounded
        self._sharded = sharded
        self._load_many = load_many
        self._member_key = member_key

    async def records(self, limit: int) -> Listed:
        """Up to `limit` records of the whole cluster, each with its live holder."""
        found: Listed = []
        pattern = f"{self._prefix}:rec:*"
        if self._sharded:
            keys = await self._bounded("scan", self._scan_every_primary(pattern, limit), budget=2.0)
            page = [key.split(":rec:", 1)[1].strip("{}") for key in keys]
            found = [(record, owner) for record, owner in await self._load_many(page) if record is not None]
            return await self._with_live_holders(found)
        cursor: int | None = None
        while cursor != 0 and len(found) < limit:
            cursor, keys = await self._bounded(
                "scan", self._client.scan(cursor or 0, match=pattern, count=500), budget=2.0
            )
            page = [key.split(":rec:", 1)[1] for key in keys[: limit - len(found)]]
            found += [(record, owner) for record, owner in await self._load_many(page) if record is not None]
        return await self._with_live_holders(found)

    async def _scan_every_primary(self, pattern: str, limit: int) -> list[str]:
        keys: list[str] = []
        async for key in self._client.scan_iter(match=pattern, count=500):
            keys.append(str(key))
            if len(keys) >= limit:
                break
        return keys

    async def _with_live_holders(self, found: Listed) -> Listed:
        """Each record's holder, if that node is still a member (a dead node's leases are left)."""
        owners = sorted({owner for _, owner in found if owner is not None})
        if not owners:
            return found
        keys = [self._member_key(owner) for owner in owners]
        members = await self._bounded("member", self._client.mget(keys))
        alive = {owner for owner, member in zip(owners, members, strict=True) if member is not None}
        return [(record, owner if owner in alive else None) for record, owner in found]
