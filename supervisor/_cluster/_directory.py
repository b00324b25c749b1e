"""Where each node of a cluster can be reached by the others: one key per node, kept by the node.

A node with an advertised URL (`--advertise-url`) keeps `<prefix>:url:<node-id>` in the store,
renewed by itself every third of the lease TTL and lapsing three TTLs after it stops: what that
costs grows with the nodes, not the sessions. Another node that gets a request for a session this
one holds forwards it here (supervisor/_http/_forward.py) instead of moving the session.
"""

from __future__ import annotations

import contextlib
import logging

import attrs
import trio

from supervisor._cluster._cluster_secret import unsealed
from supervisor._cluster._redis_store import RedisStore
from supervisor._cluster._store_health import StoreUnavailable

logger = logging.getLogger("supervisor._directory")


@attrs.frozen
class Forward:
    """Where a request goes instead of waking its session here: the live node that holds it."""

    node_id: str
    url: str


class Directory:
    """This node's entry, and what is known of the others' (cached for a third of a lease)."""

    def __init__(self, store: RedisStore, url: str | None) -> None:
        self._store = store
        self._url = url
        self._ttl = store.settings.lease_ttl
        self._prefix = store.settings.prefix
        self._known: dict[str, tuple[str | None, float]] = {}
        self.forwarded = 0
        """Requests forwarded from here to the nodes found here (counted by the forwarder)."""

    def _key(self, node_id: str) -> str:
        return f"{self._prefix}:url:{node_id}"

    async def run(self) -> None:
        """Keep this node's entry while it runs (nothing to keep without an advertised URL)."""
        if self._url is None:
            return
        store, key, keep = self._store, self._key(self._store.node_id), int(self._ttl * 3000)
        secret = store.settings.secret
        # Signed with the cluster secret, if there is one: a URL in Redis is where tokens go.
        value = self._url if secret is None else secret.seal(key, self._url)
        while True:
            # An outage: the renewer sees it too, and the entry lapses if it lasts.
            with contextlib.suppress(StoreUnavailable):
                await store.bounded("advertise", store.client.set(key, value, px=keep))
            await trio.sleep(self._ttl / 3)

    async def withdraw(self) -> None:
        """Stop being forwarded to (at shutdown): others move sessions from here instead."""
        if self._url is not None:
            with contextlib.suppress(StoreUnavailable):
                await self._store.bounded(
                    "advertise", self._store.client.delete([self._key(self._store.node_id)])
                )

    async def url_of(self, node_id: str) -> str | None:
        """The URL `node_id` advertises, if it does (None for this node itself)."""
        if node_id == self._store.node_id:
            return None
        now = trio.current_time()
        known = self._known.get(node_id)
        if known is not None and known[1] > now:
            return known[0]
        try:
            url = await self._store.bounded("lookup", self._store.client.get(self._key(node_id)))
        except StoreUnavailable:
            return None
        found = url if isinstance(url, str) else None
        secret = self._store.settings.secret
        if found is not None and secret is not None:
            found = secret.unseal(self._key(node_id), found)
            if found is None:
                logger.error("the URL stored for node %s failed the cluster secret's check: ignored", node_id)
        elif found is not None:
            found = unsealed(found)
        self._known[node_id] = (found, now + self._ttl / 3)
        return found

    def forget(self, node_id: str) -> None:
        """`node_id` could not be reached: ask the store again next time."""
        self._known.pop(node_id, None)
