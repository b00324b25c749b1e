"""The renewer: every third of a lease's time, one call that renews this node's membership.

Nothing per session is renewed: a session's lease names this process and is good while its
membership is. What costs per session is rarer: a record near its expiry is kept again (about
once per idle timeout per session), and when the membership is found lapsed (this node was
paused or cut off, or Redis lost its data) every held lease is checked once, in batches of
`RENEW_BATCH`: a lease another node took meanwhile is fenced, a record Redis no longer has is
written again from its actor. Between rounds, a request for a held session while the membership
is in doubt (this node was paused) runs a round first.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import trio

from supervisor._cluster._lease_values import Membership
from supervisor._cluster._leases import Leases
from supervisor._cluster._redis_store import RedisStore
from supervisor._cluster._store_health import StoreUnavailable
from supervisor._cluster._terms import RENEW_BATCH, OutageNotice

logger = logging.getLogger("supervisor._cluster")


class Renewer:
    """The membership renewals of one node, and what they find."""

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
        self._superseded_said = False
        self._after_outage = False
        """The store did not answer a round: the next that reaches it checks every held lease
        (a failover to a replica may have lost the last writes; a restart may have lost all)."""
        self._one_round = trio.Lock()
        """Rounds one at a time: a second round would find the membership renewed and skip the
        check the first one is making."""

    @property
    def lease_in_doubt(self) -> bool:
        """No renewal has reached the store for most of a lease's time, though it was up when last
        seen: this node may have been paused (or cut off) long enough for its membership to lapse."""
        return self._leases.overdue and self._store.up

    async def join(self) -> None:
        """At start: this process becomes its node's member (a previous process of the same node
        id, if any, stops being one: its leases are free to take)."""
        sent = trio.current_time()
        try:
            await self._store.renew_member(take=True)
        except StoreUnavailable:
            return  # the first round joins once the store answers
        self._leases.renewed(sent)

    async def confirm(self, session_id: str) -> bool:
        """Before serving a held session while the membership is in doubt: a round first (which
        finds what was taken meanwhile); is it still ours? True too when the store does not answer
        (held sessions are served through an outage)."""
        try:
            async with self._one_round:
                if self._leases.overdue:  # else a round made it good while this one waited
                    await self._round()
        except StoreUnavailable:
            return True
        return session_id in self._leases

    async def run(self) -> None:
        """A round every `renew_every`, until cancelled."""
        while True:
            await trio.sleep(self._store.settings.renew_every)
            try:
                async with self._one_round:
                    await self._round()
                self._after_round()
                self._outage.up()
            except StoreUnavailable:
                self._after_outage = True
                self._outage.down(self._store.health().since, time.time(), logger)

    async def _round(self) -> None:
        sent = trio.current_time()
        found = await self._store.renew_member()
        if found is Membership.SUPERSEDED:
            self._superseded(self._leases.renewable())
            return
        if found is Membership.REJOINED or self._after_outage:
            # Good again only once what was taken meanwhile is found: until then the membership
            # stays in doubt, and a request for a held session waits for this check.
            await self._check(self._leases.renewable(), sent)
            self._store.identity.checked()  # every lease still ours is under the new epoch now
            self._after_outage = False
            self._leases.renewed(sent)
            return
        self._leases.renewed(sent)
        if self._record_keep is not None:
            # Kept again once past most of their time, with two rounds and a budget to spare.
            margin = 2 * self._store.settings.renew_every + self._store.settings.budget
            await self._check(self._leases.due_for_keep(sent - self._record_keep + margin), sent)

    async def _check(self, held: Sequence[tuple[str, int]], sent: float) -> None:
        """Check (and keep) these leases: fence the lost, write again what Redis forgot."""
        for start in range(0, len(held), RENEW_BATCH):
            batch = held[start : start + RENEW_BATCH]
            try:
                lost, missing = await self._store.renew(batch, self._record_keep)
            except StoreUnavailable:
                for sid, _ in held[start:]:
                    self._leases.keep_soon(sid)
                raise
            epochs = dict(batch)
            for sid in lost:
                if self._leases.epoch_of(sid) == epochs[sid]:
                    self._fence(sid)
            for sid, _ in batch:
                self._leases.kept(sid, sent)
            self._rewrite(missing)

    def _superseded(self, held: Sequence[tuple[str, int]]) -> None:
        """Another process of this node id is the member now: nothing held here is ours."""
        if not self._superseded_said:
            self._superseded_said = True
            logger.error(
                "another process started with node id %s: this one's sessions are its to take, "
                "and this one serves none of them any more",
                self._store.node_id,
            )
        for sid, _ in held:
            self._fence(sid)
