"""One node's part in a cluster: its leases, the records it writes, and what other nodes ask of it.

The request path never waits on a write: a record that changed (open, `initialize`, log level,
subscriptions, hibernation, the end of an actor) is queued here and written by one writer task,
coalesced per session. Leases are renewed in batches every third of their time. While the store
is down, everything queued waits and nodes serve what they hold; the writer and the renewer pick
up by themselves once it answers again.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

import attrs
import trio

from actors._log import SessionLog
from actors._reasons import CloseReason
from actors._record import Principal, SessionRecord
from supervisor._claims import Claims
from supervisor._cluster_terms import KEPT, POLL, RENEW_BATCH, ClusterStats, Member, OutageNotice
from supervisor._directory import Directory
from supervisor._lease_clock import LeaseClock
from supervisor._redis_store import RedisStore, StoreUnavailable
from supervisor._store_settings import Fencing

logger = logging.getLogger(__name__)


@attrs.define(eq=False)
class _End:
    record: SessionRecord
    epoch: int
    keep: bool
    done: trio.Event = attrs.field(factory=trio.Event)


class Cluster:
    """Leases, record writes and the node's channel, for one supervisor."""

    def __init__(self, store: RedisStore, idle_timeout: float | None) -> None:
        self.store = store
        self.node_id = store.node_id
        self._idle_timeout = idle_timeout
        self.record_keep = None if idle_timeout is None else idle_timeout + store.settings.lease_ttl
        """How long a write or renewal keeps an awake session's record: its idle timeout, plus the lease."""
        self._member: Member | None = None
        self.held: dict[str, int] = {}
        """Sessions this node holds, with their lease's epoch (0: new, not written yet)."""
        self._dirty: dict[str, SessionRecord] = {}
        self._ends: dict[str, _End] = {}
        self._work = trio.Event()
        self._nursery: trio.Nursery | None = None
        self.leases = LeaseClock(store.settings.lease_ttl)
        self.directory = Directory(store, store.settings.advertise_url)
        self._outage = OutageNotice()
        self.claims = Claims(store, self.held, self.leases, self.record_keep)
        self._asked_by: dict[str, str] = {}
        """Sessions another node asked this one to let go of: the node to tell once it has."""
        self._awaited: dict[str, tuple[SessionRecord, trio.Event]] = {}
        """Records a request waits to see written (`write_through`), and the event it waits on."""
        self.moved_out = self.fenced = 0

    def stats(self) -> ClusterStats:
        return _stats_of(self)

    # ------------------------------------------------------------------ life

    async def run(
        self, member: Member, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """The writer, the renewer and the listener, until cancelled."""
        self._member = member
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._writer)
            nursery.start_soon(self._renewer)
            nursery.start_soon(self._listener)
            nursery.start_soon(self.directory.run)
            if self.store.settings.fencing is Fencing.STRICT:
                nursery.start_soon(self.leases.watch, self.held, self._lapse)
            task_status.started()

    async def flush(self, timeout: float) -> bool:
        """Write everything queued and let go of what ended (at shutdown); True if all of it landed."""
        with trio.move_on_after(timeout):
            while self._dirty or self._ends:
                if not await self._write_once():
                    await trio.sleep(POLL)
            return True
        logger.error(
            "%d session write(s) did not reach the store before exit", len(self._dirty) + len(self._ends)
        )
        return False

    # ------------------------------------------------------------------ what the supervisor tells

    def record_ttl(self, record: SessionRecord, *, held: bool) -> float | None:
        """How long the store keeps a record: an awake one while its lease lives, else its idle time left."""
        if held or self._idle_timeout is None:
            return self.record_keep
        return max(1.0, record.last_active_at + self._idle_timeout - time.time())

    def opened(self, record: SessionRecord) -> None:
        self.held.setdefault(record.session_id, 0)
        self.changed(record)

    def changed(self, record: SessionRecord) -> None:
        sid = record.session_id
        awaited = self._awaited.get(sid)
        if awaited is not None and awaited[1].is_set():
            del self._awaited[sid]
            if awaited[0] == record:
                return  # the actor noting what `write_through` has written already
        if sid in self.held:
            self._dirty[sid] = record
            self._work.set()

    async def write_through(self, record: SessionRecord) -> None:
        """Queue `record` and wait (within twice the budget) until it is written: a new session's
        record lands before its initialize is answered, so a node killed just after the answer
        leaves the session behind in the store. No wait while the store is down."""
        sid = record.session_id
        if sid not in self.held or not self.store.up:
            return
        written = trio.Event()
        self._awaited[sid] = (record, written)
        self.changed(record)
        with trio.move_on_after(2 * self.store.settings.budget):
            await written.wait()

    def ended(self, record: SessionRecord, reason: CloseReason) -> None:
        """An actor stopped: keep its record (and let go of its lease), forget it, or leave it (fenced)."""
        sid = record.session_id
        self._dirty.pop(sid, None)
        self._awaited.pop(sid, None)
        self.leases.forget(sid)
        epoch = self.held.pop(sid, None)
        if reason is CloseReason.FENCED or epoch is None:
            self._asked_by.pop(sid, None)
            return
        self._ends[sid] = _End(record, epoch, keep=reason in KEPT)
        if reason is CloseReason.MOVED:
            self.moved_out += 1
        self._work.set()

    def let_go(self, record: SessionRecord) -> None:
        """A claimed session could not be started here after all: keep its record, free its lease."""
        epoch = self.held.pop(record.session_id, None)
        self.leases.forget(record.session_id)
        if epoch:
            self._ends[record.session_id] = _End(record, epoch, keep=True)
            self._work.set()

    async def settled(self, session_id: str) -> None:
        """Wait until what an ended actor left to write has been written (or given up)."""
        end = self._ends.get(session_id)
        if end is not None and self.store.up:  # while it is down, nothing gets written anyway
            with trio.move_on_after(self.store.settings.move_wait):
                await end.done.wait()

    # ------------------------------------------------------------------ asked by requests

    @property
    def lease_in_doubt(self) -> bool:
        """No renewal has reached the store for most of a lease's time, though it was up when last
        seen: this node may have been paused (or cut off) long enough for its leases to lapse."""
        return self.leases.overdue and self.store.up

    async def confirm(self, session_id: str) -> bool:
        """Before serving a held session while its lease is in doubt: is it still ours? Fenced if
        not. True too when the store does not answer (held sessions are served through an outage)."""
        epoch = self.held.get(session_id)
        if not epoch:
            return True
        sent = trio.current_time()
        try:
            lost, _ = await self.store.renew([(session_id, epoch)], self.record_keep)
        except StoreUnavailable:
            return True
        if not lost:
            self.leases.claimed(session_id, sent)
        if lost and self.held.get(session_id) == epoch:
            self._fence(session_id)
            return False
        return True

    async def revoke(self, principal: Principal) -> list[str]:
        """End `principal`'s sessions on every node and delete their records; the ids found."""
        try:
            found = await self.store.sessions_of(principal)
            await self.store.publish(
                self.store.cluster_channel, {"op": "revoke", "principal": attrs.asdict(principal)}
            )
            for sid in found:
                await self.store.forget(SessionRecord(session_id=sid, principal=principal))
        except StoreUnavailable:
            logger.error("revocation reached this node only: the session store did not answer")  # noqa: TRY400
            return []
        return found

    # ------------------------------------------------------------------ tasks

    async def _writer(self) -> None:
        while True:
            await self._work.wait()
            self._work = trio.Event()
            while (self._dirty or self._ends) and not await self._write_once():
                await _until_up(self.store)

    async def _write_once(self) -> bool:
        """Write what is queued; False if the store stopped answering (the rest stays queued)."""
        try:
            while self._dirty:
                sid, record = next(iter(self._dirty.items()))
                sent, new = trio.current_time(), self.held.get(sid) == 0
                held = await self.store.put(record, self.held.get(sid, 0), self.record_ttl(record, held=True))
                if new and held:
                    self.leases.claimed(sid, sent)  # a new session's first write claims its lease
                if self._dirty.get(sid) is record:
                    del self._dirty[sid]
                    awaited = self._awaited.get(sid)
                    if awaited is not None and awaited[0] is record:
                        awaited[1].set()
                if sid in self.held:
                    self._note_held(sid, held)
            while self._ends:
                sid, end = next(iter(self._ends.items()))
                if end.keep and end.record.opened:
                    if await self.store.put(end.record, end.epoch, self.record_ttl(end.record, held=False)):
                        await self.store.release(sid, end.epoch)
                        await self._tell_released(sid)
                elif end.epoch:
                    await self.store.forget(end.record)
                self._ends.pop(sid, None)
                self._asked_by.pop(sid, None)
                end.done.set()
        except StoreUnavailable:
            return False
        return True

    async def _tell_released(self, sid: str) -> None:
        """Tell the node that asked for this session that it is free now (no answer: it asks again)."""
        asker = self._asked_by.pop(sid, None)
        if asker is not None:
            with contextlib.suppress(StoreUnavailable):
                await self.store.publish(
                    self.store.node_channel_of(asker), {"op": "released", "session": sid}
                )

    def _note_held(self, sid: str, epoch: int) -> None:
        if epoch:
            self.held[sid] = epoch
        else:
            self._fence(sid)

    def _fence(self, sid: str) -> None:
        if self.held.pop(sid, None) is not None:
            self.fenced += 1
            SessionLog(logger, sid).warning("lease lost to another node: no longer served here")
            assert self._member is not None
            self._member.fence(sid)

    def _lapse(self, sid: str) -> None:
        """Its lease may lapse before a renewal reaches the store: no longer served here. Its
        newest record is written (under the lease check) and the lease let go once it answers."""
        assert self._member is not None
        epoch = self.held.pop(sid)
        record = self._dirty.pop(sid, None) or self._member.record_of(sid)
        if record is not None and record.opened:
            self._ends[sid] = _End(record, epoch, keep=True)
            self._work.set()
        self.fenced += 1
        SessionLog(logger, sid).warning("lease not renewed in time (strict fencing): no longer served here")
        self._member.fence(sid)

    def _rewrite(self, missing: list[str]) -> None:
        """Records Redis lost (a restart without persistence): written again from the live actors."""
        assert self._member is not None
        for sid in missing:
            record = self._member.record_of(sid)
            if record is not None and sid not in self._dirty:
                SessionLog(logger, sid).warning("the store had lost this session's record: writing it again")
                self.changed(record)

    async def _renewer(self) -> None:
        settings = self.store.settings
        while True:
            await trio.sleep(settings.renew_every)
            sent = trio.current_time()
            held = [(sid, epoch) for sid, epoch in self.held.items() if epoch]
            try:
                if not held:
                    await self.store.ping()  # so readiness knows the store is down even when idle
                for start in range(0, len(held), RENEW_BATCH):
                    batch = held[start : start + RENEW_BATCH]
                    epochs = dict(batch)
                    lost, missing = await self.store.renew(batch, self.record_keep)
                    for sid in lost:
                        if self.held.get(sid) == epochs[sid]:
                            self._fence(sid)
                    self._rewrite(missing)
                self.leases.renewed(sent, [sid for sid, _ in held])
                if self._dirty or self._ends:
                    self._work.set()
                self._outage.up()
            except StoreUnavailable:
                self._outage.down(self.store.health().since, time.time(), logger)

    async def _listener(self) -> None:
        while True:
            try:
                async with self.store.listening() as messages:
                    async for message in messages:
                        self._heard(message)
            except Exception as error:
                level = logging.WARNING if self.store.up else logging.DEBUG
                logger.log(level, "lost the cluster channel (%s); listening again", error)
            await trio.sleep(1.0)

    def _heard(self, message: dict[str, Any]) -> None:
        assert self._member is not None and self._nursery is not None
        op, sender = message.get("op"), message.get("from")
        if op == "release" and isinstance(message.get("session"), str):
            if message["session"] in self.held and isinstance(sender, str):
                self._asked_by[message["session"]] = sender
                self._nursery.start_soon(self._member.release, message["session"])
        elif op == "released" and isinstance(message.get("session"), str):
            self.claims.heard_released(message["session"])
        elif op == "revoke" and sender != self.node_id and isinstance(message.get("principal"), dict):
            try:
                principal = Principal(**message["principal"])
            except (TypeError, ValueError):
                return
            self._nursery.start_soon(self._member.revoke_here, principal)


async def _until_up(store: RedisStore) -> None:
    while True:
        await trio.sleep(1.0)
        try:
            await store.ping()
            return
        except StoreUnavailable:
            continue


def _stats_of(cluster: Cluster) -> ClusterStats:
    return ClusterStats(
        node_id=cluster.node_id,
        store=cluster.store.health(),
        leases=len(cluster.held),
        pending_writes=len(cluster._dirty) + len(cluster._ends),
        wakes_from_store=cluster.claims.wakes_from_store,
        moved_in=cluster.claims.moved_in,
        moved_out=cluster.moved_out,
        fenced=cluster.fenced,
        forwarded=cluster.directory.forwarded,
    )
