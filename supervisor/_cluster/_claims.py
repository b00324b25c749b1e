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
            return await self._wake_the_long_way(session_id, principal, directory, (claim, record))
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
        self,
        session_id: str,
        principal: Principal | None,
        directory: Directory | None,
        first: tuple[Claim, SessionRecord | None],
    ) -> SessionRecord | Wake | Forward:
        """`first`: the claim that did not win, and the record it read in the same step."""
        claim, record = first
        owner = claim.owner or None
        try:
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
            # What was read first still stands unless Redis had forgotten it meanwhile.
            taken = await self._claim(session_id, claim if claim.owner and record is first[1] else None)
        except StoreUnavailable:
            return Wake.UNAVAILABLE
        # As the claim that won read it: the holder's last write lands before it lets go. Forgotten
        # (revoked, deleted) while it moved here: never revived from the first read.
        if isinstance(taken, SessionRecord) and taken.opened and taken.principal == principal:
            self.wakes_from_store += 1
            return taken
        if taken is not Wake.UNAVAILABLE:
            await self._give_back(session_id)  # won, but not this principal's (or unreadable)
        return taken if taken is Wake.UNAVAILABLE else Wake.MISSING

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

    async def _claim(self, session_id: str, first: Claim | None) -> SessionRecord | Wake:
        """Take the lease (`first`: a claim just made that did not win): at once if free, else
        by asking its holder to let go (or if it is gone). The record as the winning claim read
        it; UNAVAILABLE if it did not come in time; MISSING if the session is gone."""
        try:
            return await self._take_lease(session_id, first)
        finally:
            self._released.pop(session_id, None)

    async def _take_lease(self, session_id: str, first: Claim | None) -> SessionRecord | Wake:
        ttl = self._record_keep
        # Strict: a silent holder may only be cut off, serving still; its membership must lapse first.
        strict = self.store.settings.fencing is Fencing.STRICT
        asked = moving = False
        with trio.move_on_after(self.store.settings.move_wait):
            while True:
                claim, record = (
                    (first, None) if first is not None else await self.store.claim_and_load(session_id, ttl)
                )
                first = None
                if not claim.won and not claim.owner:
                    return Wake.MISSING  # no record any more: nothing to take
                if not claim.won:
                    member, listening = await self._ask(session_id, claim, asked)
                    asked = True
                    if member != claim.owner_epoch:
                        # Its holder's process is no member any more (it died, or its membership
                        # lapsed unrenewed): the lease is free to take, exactly as it was seen.
                        claim, record = await self.store.claim_and_load(session_id, ttl, replace=claim.seen)
                    else:
                        moving = True  # a member holds it: it moves here (or is taken from a silent one)
                        if listening == 0 and not strict:
                            claim, record = await self._silent_holder_ended(session_id, claim)
                if claim.won:
                    self._leases.won(session_id, claim.epoch)
                    self.moved_in += moving
                    return record if record is not None else Wake.MISSING
                await self._until_released(session_id)
        SessionLog(logger, session_id).warning("the session did not move here in time")
        return Wake.UNAVAILABLE

    async def _ask(self, session_id: str, claim: Claim, asked: bool) -> tuple[str | None, int | None]:
        """The holder's membership epoch as it is now, and (the first time) how many listen on
        its channel for the ask to let go, sent at the same time: a move's first try costs one
        round trip for both."""
        if asked:
            return await self.store.member_epoch(claim.owner), None
        self._released[session_id] = trio.Event()
        ask = {"op": "release", "session": session_id, **trace_carrier()}
        found: dict[str, object] = {}

        async def member() -> None:
            found["member"] = await self.store.member_epoch(claim.owner)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(member)
            listening = await self.store.publish(self.store.node_channel_of(claim.owner), ask)
        epoch = found["member"]
        return (epoch if isinstance(epoch, str) else None), listening

    async def _silent_holder_ended(self, session_id: str, claim: Claim) -> tuple[Claim, SessionRecord | None]:
        """Nobody listens on the holder's channel: that node is gone. End its membership (if it is
        only cut off, its next renewal finds it ended, checks what it holds and stops serving what
        was taken) and take the lease over now."""
        await self.store.end_membership(claim.owner, claim.owner_epoch)
        return await self.store.claim_and_load(session_id, self._record_keep, replace=claim.seen)

    async def _until_released(self, session_id: str) -> None:
        """Until the holder says it let go (it writes the record first), or a while at most: a
        holder that never heard the ask, or whose answer was lost, is asked of the store again."""
        released = self._released[session_id]
        with trio.move_on_after(RELEASE_FALLBACK):
            await released.wait()
        if released.is_set():
            self._released[session_id] = trio.Event()
