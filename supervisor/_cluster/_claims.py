"""Taking a session for this node from the store: the claim, the move from its holder, the wake.

A claim wins at once when nobody holds the session. Otherwise its holder is asked, on its own
channel, to let go; it serves what it has taken in, writes the record, frees the lease and says
"released" on this node's channel, and the claim is made again at once. A holder that says
nothing is asked of the store again every `RELEASE_FALLBACK`; one nobody listens for (its node is
gone) has its lease taken over on the spot.
"""

from __future__ import annotations

import contextlib
import logging

import trio
from opentelemetry.propagate import inject

from actors import Principal, SessionLog, SessionRecord
from supervisor._cluster._directory import Directory, Forward
from supervisor._cluster._lease_values import Claim
from supervisor._cluster._leases import Leases
from supervisor._cluster._redis_store import RedisStore
from supervisor._cluster._store_health import StoreUnavailable
from supervisor._cluster._store_settings import Fencing
from supervisor._cluster._terms import POLL, RELEASE_FALLBACK, Wake

logger = logging.getLogger("supervisor._claims")


def trace_carrier() -> dict[str, str]:
    """The current span's W3C trace context (nothing when untraced): the holder's release of a
    session joins the trace of the request that asked for it."""
    carrier: dict[str, str] = {}
    inject(carrier)
    return {key: value for key, value in carrier.items() if key in ("traceparent", "tracestate")}


class Claims:
    """One node's claims on sessions held elsewhere or nowhere (a part of its `Cluster`)."""

    def __init__(self, store: RedisStore, leases: Leases, record_keep: float | None) -> None:
        self.store = store
        self._leases = leases
        """This node's leases: a claim won is held there."""
        self._record_keep = record_keep
        self.waking: dict[str, trio.Event] = {}
        """Sessions being woken here from the store: a second request for one waits for the first."""
        self._released: dict[str, trio.Event] = {}
        """Sessions this node asked another to let go of: set when that one says it has."""
        self.wakes_from_store = self.moved_in = 0

    def heard_released(self, session_id: str) -> None:
        """The holder this node asked says it let go of the session."""
        released = self._released.get(session_id)
        if released is not None:
            released.set()

    async def wake(
        self, session_id: str, principal: Principal | None, directory: Directory | None = None
    ) -> SessionRecord | Wake | Forward:
        """Claim a session from the store for this node: its latest record, or why not.

        With a `directory`: where to forward instead, when another node that advertises a URL
        holds it (nothing is claimed then).

        First in one call (issue 26.4): the lease if nobody holds it and the record exists, with
        the record as it is once claimed (the last holder writes it before it lets go). A held
        session, or none in the store, takes the longer way, which says why.
        """
        try:
            claim, record = await self.store.claim_and_load(session_id, self._record_keep)
        except StoreUnavailable:
            return Wake.UNAVAILABLE
        if not claim.won:
            return await self._wake_the_long_way(session_id, principal, directory)
        if record is not None and record.opened and record.principal == principal:
            self._leases.won(session_id, claim.epoch)
            self.wakes_from_store += 1
            return record
        # Unreadable, or another principal's: the lease goes straight back, and the id is unknown.
        if record is not None and record.principal != principal:
            SessionLog(logger, session_id).warning("refused a wake for another principal")
        with contextlib.suppress(StoreUnavailable), trio.CancelScope(shield=True):
            await self.store.release(session_id, claim.epoch)
        return Wake.MISSING

    async def _wake_the_long_way(
        self, session_id: str, principal: Principal | None, directory: Directory | None
    ) -> SessionRecord | Wake | Forward:
        try:
            record, owner = await self.store.load(session_id)
            if record is None and await self.store.forgot_recently(1.5 * self.store.settings.lease_ttl):
                # Redis has just forgotten the cluster (restarted without persistence): its
                # holder writes it again at its next renewal round. Wait for that; retry, not
                # "unknown", if it does not come.
                record, owner = await self._rewritten(session_id)
                if record is None:
                    return Wake.UNAVAILABLE
            if record is None or not record.opened or record.principal != principal:
                if record is not None and record.principal != principal:
                    SessionLog(logger, session_id).warning("refused a wake for another principal")
                return Wake.MISSING
            if directory is not None and owner is not None and owner != self.store.node_id:
                url = await directory.url_of(owner)
                if url is not None:
                    return Forward(owner, url)
            if not await self._claim(session_id):
                return Wake.UNAVAILABLE
        except StoreUnavailable:
            return Wake.UNAVAILABLE
        # Read again now that it is ours: the holder's last write lands before it lets go.
        outcome: SessionRecord | Wake = Wake.UNAVAILABLE
        try:
            latest, _ = await self.store.load(session_id)
            # Forgotten (revoked, deleted) while it moved here: never revived from the first read.
            same = latest is not None and latest.opened and latest.principal == principal
            outcome = latest if same and latest is not None else Wake.MISSING
        except StoreUnavailable:
            pass
        finally:
            if not isinstance(outcome, SessionRecord):
                await self._give_back(session_id)
        self.wakes_from_store += isinstance(outcome, SessionRecord)
        return outcome

    async def _rewritten(self, session_id: str) -> tuple[SessionRecord | None, str | None]:
        """The record its holder writes again after Redis forgot it: looked for until a renewal
        round (and a write) had time to come, within the move wait."""
        settings = self.store.settings
        found: tuple[SessionRecord | None, str | None] = (None, None)
        with trio.move_on_after(min(settings.renew_every * 2 + settings.budget, settings.move_wait)):
            while found[0] is None:
                await trio.sleep(POLL)
                found = await self.store.load(session_id)
        return found

    async def _give_back(self, session_id: str) -> None:
        """Let go of a lease just claimed, with no actor behind it: never renewed, freed if it can be."""
        epoch = self._leases.drop(session_id)
        with contextlib.suppress(StoreUnavailable), trio.CancelScope(shield=True):
            if epoch:
                await self.store.release(session_id, epoch)

    async def _claim(self, session_id: str) -> bool:
        """Take the lease: at once if free, else by asking its holder to let go (or if it is gone)."""
        try:
            return await self._take_lease(session_id)
        finally:
            self._released.pop(session_id, None)

    async def _take_lease(self, session_id: str) -> bool:
        ttl = self._record_keep
        # Strict: a silent holder may only be cut off, serving still; its membership must lapse first.
        strict = self.store.settings.fencing is Fencing.STRICT
        asked = False
        with trio.move_on_after(self.store.settings.move_wait):
            while True:
                claim = await self.store.claim(session_id, ttl)
                if not claim.won and await self.store.member_epoch(claim.owner) != claim.owner_epoch:
                    # Its holder's process is no member any more (it died, or its membership
                    # lapsed unrenewed): the lease is free to take, exactly as it was seen.
                    claim = await self.store.claim(session_id, ttl, replace=claim.seen)
                if claim.won:
                    self._leases.won(session_id, claim.epoch)
                    if asked:
                        self.moved_in += 1
                    return True
                if not asked:
                    asked = True
                    self._released[session_id] = trio.Event()
                    ask = {"op": "release", "session": session_id, **trace_carrier()}
                    listening = await self.store.publish(self.store.node_channel_of(claim.owner), ask)
                    if listening == 0 and not strict and await self._silent_holder_ended(session_id, claim):
                        self.moved_in += 1
                        return True
                await self._until_released(session_id)
        SessionLog(logger, session_id).warning("the session did not move here in time")
        return False

    async def _silent_holder_ended(self, session_id: str, claim: Claim) -> bool:
        """Nobody listens on the holder's channel: that node is gone. End its membership (if it is
        only cut off, its next renewal finds it ended, checks what it holds and stops serving what
        was taken) and take the lease over now."""
        await self.store.end_membership(claim.owner, claim.owner_epoch)
        stolen = await self.store.claim(session_id, self._record_keep, replace=claim.seen)
        if stolen.won:
            self._leases.won(session_id, stolen.epoch)
        return stolen.won

    async def _until_released(self, session_id: str) -> None:
        """Until the holder says it let go (it writes the record first), or a while at most: a
        holder that never heard the ask, or whose answer was lost, is asked of the store again."""
        released = self._released[session_id]
        with trio.move_on_after(RELEASE_FALLBACK):
            await released.wait()
        if released.is_set():
            self._released[session_id] = trio.Event()
