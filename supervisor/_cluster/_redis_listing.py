"""Listing the cluster's sessions from the store (the admin API's `scope=cluster`).

A SCAN of the record keys (on a Redis Cluster, of every primary), then one MGET of records and
leases per page, and of the holders' memberships: a dead node's leases are left behind, so a
holder is named only while it is a member.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from actors import SessionRecord


class RedisStore(Protocol):
    """What listing needs of the store (`_redis_store.RedisStore`)."""

    @property
    def prefix(self) -> str: ...

    @property
    def sharded(self) -> bool: ...

    @property
    def client(self) -> Any: ...

    async def bounded(self, kind: str, call: Any, budget: float | None = None) -> Any: ...

    async def load_many(
        self, session_ids: Sequence[str]
    ) -> list[tuple[SessionRecord | None, str | None]]: ...

    def member_key(self, node_id: str) -> str: ...


async def listed_records(store: RedisStore, limit: int) -> list[tuple[SessionRecord, str | None]]:
    found: list[tuple[SessionRecord, str | None]] = []
    pattern = f"{store.prefix}:rec:*"
    if store.sharded:
        keys = await store.bounded("scan", _scan_every_primary(store, pattern, limit), budget=2.0)
        page = [key.split(":rec:", 1)[1].strip("{}") for key in keys]
        found = [(record, owner) for record, owner in await store.load_many(page) if record is not None]
        return await _with_live_holders(store, found)
    cursor: int | None = None
    while cursor != 0 and len(found) < limit:
        cursor, keys = await store.bounded(
            "scan", store.client.scan(cursor or 0, match=pattern, count=500), budget=2.0
        )
        page = [key.split(":rec:", 1)[1] for key in keys[: limit - len(found)]]
        found += [(record, owner) for record, owner in await store.load_many(page) if record is not None]
    return await _with_live_holders(store, found)


async def _scan_every_primary(store: RedisStore, pattern: str, limit: int) -> list[str]:
    keys: list[str] = []
    async for key in store.client.scan_iter(match=pattern, count=500):
        keys.append(str(key))
        if len(keys) >= limit:
            break
    return keys


async def _with_live_holders(
    store: RedisStore, found: list[tuple[SessionRecord, str | None]]
) -> list[tuple[SessionRecord, str | None]]:
    """Each record's holder, if that node is still a member (a dead node's leases are left)."""
    owners = sorted({owner for _, owner in found if owner is not None})
    if not owners:
        return found
    members = await store.bounded("member", store.client.mget([store.member_key(o) for o in owners]))
    alive = {owner for owner, member in zip(owners, members, strict=True) if member is not None}
    return [(record, owner if owner in alive else None) for record, owner in found]
