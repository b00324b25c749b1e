"""The renewer: every third of a lease's time, one round that renews every lease this node holds.

Rounds go in batches of `RENEW_BATCH` leases per script call. A lease found lost is fenced; a
record Redis no longer has (it restarted without persistence) is written again from its actor.
Between rounds, a request for a held session while the leases are in doubt (this node was paused)
confirms that one lease first.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import trio

from supervisor._cluster._leases import Leases
from supervisor._cluster._redis_store import RedisStore
from supervisor._cluster._store_health import StoreUnavailable
from supervisor._cluster._terms import RENEW_BATCH, OutageNotice

logger = logging.getLogger("supervisor._cluster")


class Renewer:
    """The renewal rounds of one node's leases, and the one-lease confirmation."""

    def __init__(
        self,
        store: RedisStore,
        leases: Leases,
        *,
        record_keep: float | None,
        fence: Callable[[str], None],
        rewrite: Callable[[list[str]], None],
        after_round: Callable[[], None],
    ) -> None:
        self._store = store
        self._leases = leases
        self._record_keep = record_keep
        self._fence = fence
        self._rewrite = rewrite
        """Write these sessions' records again (the store had lost them)."""
        self._after_round = after_round
        """A round reached the store: whatever waits to be written may be tried again."""
        self._outage = OutageNotice()

    @property
    def lease_in_doubt(self) -> bool:
        """No renewal has reached the store for most of a lease's time, though it was up when last
        seen: this node may have been paused (or cut off) long enough for its leases to lapse."""
        return self._leases.overdue and self._store.up

    async def confirm(self, session_id: str) -> bool:
        """Before serving a held session while its lease is in doubt: is it still ours? Fenced if
        not. True too when the store does not answer (held sessions are served through an outage)."""
        epoch = self._leases.epoch_of(session_id)
        if not epoch:
            return True
        sent = trio.current_time()
        try:
            lost, _ = await self._store.renew([(session_id, epoch)], self._record_keep)
        except StoreUnavailable:
            return True
        if not lost:
            self._leases.confirmed(session_id, sent)
        if lost and self._leases.epoch_of(session_id) == epoch:
            self._fence(session_id)
            return False
        return True

    async def run(self) -> None:
        """A round every `renew_every`, until cancelled."""
        while True:
            await trio.sleep(self._store.settings.renew_every)
            try:
                await self._round()
                self._after_round()
                self._outage.up()
            except StoreUnavailable:
                self._outage.down(self._store.health().since, time.time(), logger)

    async def _round(self) -> None:
        sent = trio.current_time()
        held = self._leases.renewable()
        if not held:
            await self._store.ping()  # so readiness knows the store is down even when idle
        for start in range(0, len(held), RENEW_BATCH):
            batch = held[start : start + RENEW_BATCH]
            epochs = dict(batch)
            lost, missing = await self._store.renew(batch, self._record_keep)
            for sid in lost:
                if self._leases.epoch_of(sid) == epochs[sid]:
                    self._fence(sid)
            self._rewrite(missing)
        self._leases.renewed(sent, [sid for sid, _ in held])
