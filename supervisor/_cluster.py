"""One node's part in a cluster: its leases, the records it writes, and what other nodes ask of it.

The request path never waits on a write: a record that changed (open, `initialize`, log level,
subscriptions, hibernation, the end of an actor) is queued here and written by one writer task,
coalesced per session. Leases are renewed in batches every third of their time. While the store
is down, everything queued waits and nodes serve what they hold; the writer and the renewer pick
up by themselves once it answers again.
"""

from __future__ import annotations

import enum
import logging
import time
from typing import Any, Protocol

import attrs
import trio

from actors._log import SessionLog
from actors._reasons import CloseReason
from actors._record import Principal, SessionRecord
from supervisor._redis_store import RedisStore, StoreHealth, StoreUnavailable

logger = logging.getLogger(__name__)

KEPT = frozenset({CloseReason.EVICTED, CloseReason.MOVED, CloseReason.SHUTDOWN})
"""Ends after which the session lives on as its record: it wakes on its next request, anywhere."""
RENEW_BATCH = 300
POLL = 0.05
"""Seconds between claims while a session moves here (the old owner writes and lets go)."""


class Member(Protocol):
    """What the cluster asks of its supervisor."""

    def fence(self, session_id: str) -> None:
        """Another node holds this session now: stop serving it at once."""

    async def release(self, session_id: str) -> None:
        """Another node wants this session: close it here (its record is kept) and return."""

    async def revoke_here(self, principal: Principal) -> None:
        """Close this node's sessions of `principal` (a revocation made on another node)."""

    def record_of(self, session_id: str) -> SessionRecord | None:
        """The session's record as of now, if it is live here."""


class Wake(enum.Enum):
    """Why a session could not be woken here from the store."""

    MISSING = "missing"
    """No record (or another principal's): 404."""
    UNAVAILABLE = "unavailable"
    """The store did not answer, or the session did not move here in time: 503, retry."""


@attrs.frozen
class ClusterStats:
    """The cluster as this node sees it."""

    node_id: str
    store: StoreHealth
    leases: int
    pending_writes: int
    wakes_from_store: int
    moved_in: int
    moved_out: int
    fenced: int


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
        self.waking: dict[str, trio.Event] = {}
        """Sessions being woken here from the store: a second request for one waits for the first."""
        self.wakes_from_store = self.moved_in = self.moved_out = self.fenced = 0
        self._renewed_at = trio.current_time()
        """When the last renewal round reached the store (trio clock)."""

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
        if record.session_id in self.held:
            self._dirty[record.session_id] = record
            self._work.set()

    def ended(self, record: SessionRecord, reason: CloseReason) -> None:
        """An actor stopped: keep its record (and let go of its lease), forget it, or leave it (fenced)."""
        sid = record.session_id
        self._dirty.pop(sid, None)
        epoch = self.held.pop(sid, None)
        if reason is CloseReason.FENCED or epoch is None:
            return
        self._ends[sid] = _End(record, epoch, keep=reason in KEPT)
        if reason is CloseReason.MOVED:
            self.moved_out += 1
        self._work.set()

    def let_go(self, record: SessionRecord) -> None:
        """A claimed session could not be started here after all: keep its record, free its lease."""
        epoch = self.held.pop(record.session_id, None)
        if epoch:
            self._ends[record.session_id] = _End(record, epoch, keep=True)
            self._work.set()

    async def settled(self, session_id: str) -> None:
        """Wait until what an ended actor left to write has been written (or given up)."""
        end = self._ends.get(session_id)
        if end is not None:
            with trio.move_on_after(self.store.settings.move_wait):
                await end.done.wait()

    # ------------------------------------------------------------------ asked by requests

    async def count_of(self, principal: Principal) -> int | None:
        """Sessions of `principal` over the cluster; None while the store does not answer."""
        try:
            return await self.store.count_of(principal)
        except StoreUnavailable:
            return None

    async def wake(self, session_id: str, principal: Principal | None) -> SessionRecord | Wake:
        """Claim a session from the store for this node: its latest record, or why not."""
        try:
            record, _ = await self.store.load(session_id)
            if record is None or not record.opened or record.principal != principal:
                if record is not None and record.principal != principal:
                    SessionLog(logger, session_id).warning("refused a wake for another principal")
                return Wake.MISSING
            if not await self._claim(session_id, record):
                return Wake.UNAVAILABLE
            latest, _ = await self.store.load(session_id)
        except StoreUnavailable:
            return Wake.UNAVAILABLE
        self.wakes_from_store += 1
        return latest if latest is not None and latest.principal == principal else record

    async def _claim(self, session_id: str, record: SessionRecord) -> bool:
        """Take the lease: at once if free, else by asking its holder to let go (or if it is gone)."""
        ttl = self.record_ttl(record, held=True)
        asked = False
        with trio.move_on_after(self.store.settings.move_wait):
            while True:
                claim = await self.store.claim(session_id, ttl)
                if claim.won:
                    self.held[session_id] = claim.epoch
                    if asked:
                        self.moved_in += 1
                    return True
                if not asked:
                    asked = True
                    listening = await self.store.publish(
                        self.store.node_channel_of(claim.owner), {"op": "release", "session": session_id}
                    )
                    if listening == 0:
                        # Nobody listens on its holder's channel: that node is gone. Take over now;
                        # if it is only cut off, its next renewal finds the lease lost and it stops.
                        stolen = await self.store.claim(session_id, ttl, replace=claim.seen)
                        if stolen.won:
                            self.held[session_id] = stolen.epoch
                            self.moved_in += 1
                            return True
                await trio.sleep(POLL)
        SessionLog(logger, session_id).warning("the session did not move here in time")
        return False

    @property
    def lease_in_doubt(self) -> bool:
        """No renewal has reached the store for most of a lease's time, though it was up when last
        seen: this node may have been paused (or cut off) long enough for its leases to lapse."""
        overdue = trio.current_time() - self._renewed_at > self.store.settings.lease_ttl * 0.9
        return overdue and self.store.up

    async def confirm(self, session_id: str) -> bool:
        """Before serving a held session while its lease is in doubt: is it still ours? Fenced if
        not. True too when the store does not answer (held sessions are served through an outage)."""
        epoch = self.held.get(session_id)
        if not epoch:
            return True
        try:
            lost, _ = await self.store.renew([(session_id, epoch)], self.record_keep)
        except StoreUnavailable:
            return True
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

    async def cluster_records(self, limit: int) -> list[tuple[SessionRecord, str | None]] | None:
        try:
            return await self.store.records(limit)
        except StoreUnavailable:
            return None

    # ------------------------------------------------------------------ tasks

    async def _writer(self) -> None:
        while True:
            await self._work.wait()
            self._work = trio.Event()
            while (self._dirty or self._ends) and not await self._write_once():
                await self._until_up()

    async def _write_once(self) -> bool:
        """Write what is queued; False if the store stopped answering (the rest stays queued)."""
        try:
            while self._dirty:
                sid, record = next(iter(self._dirty.items()))
                held = await self.store.put(record, self.held.get(sid, 0), self.record_ttl(record, held=True))
                if self._dirty.get(sid) is record:
                    del self._dirty[sid]
                if sid in self.held:
                    self._note_held(sid, held)
            while self._ends:
                sid, end = next(iter(self._ends.items()))
                if end.keep and end.record.opened:
                    if await self.store.put(end.record, end.epoch, self.record_ttl(end.record, held=False)):
                        await self.store.release(sid, end.epoch)
                elif end.epoch:
                    await self.store.forget(end.record)
                self._ends.pop(sid, None)
                end.done.set()
        except StoreUnavailable:
            return False
        return True

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

    def _rewrite(self, missing: list[str]) -> None:
        """Records Redis lost (a restart without persistence): written again from the live actors."""
        assert self._member is not None
        for sid in missing:
            record = self._member.record_of(sid)
            if record is not None and sid not in self._dirty:
                SessionLog(logger, sid).warning("the store had lost this session's record: writing it again")
                self.changed(record)

    async def _until_up(self) -> None:
        while True:
            await trio.sleep(1.0)
            try:
                await self.store.ping()
                return
            except StoreUnavailable:
                continue

    async def _renewer(self) -> None:
        settings = self.store.settings
        while True:
            await trio.sleep(settings.renew_every)
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
                self._renewed_at = trio.current_time()
                if self._dirty or self._ends:
                    self._work.set()
            except StoreUnavailable:
                continue

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
            if message["session"] in self.held:
                self._nursery.start_soon(self._member.release, message["session"])
        elif op == "revoke" and sender != self.node_id and isinstance(message.get("principal"), dict):
            try:
                principal = Principal(**message["principal"])
            except (TypeError, ValueError):
                return
            self._nursery.start_soon(self._member.revoke_here, principal)


def _stats_of(cluster: Cluster) -> ClusterStats:
    return ClusterStats(
        node_id=cluster.node_id,
        store=cluster.store.health(),
        leases=len(cluster.held),
        pending_writes=len(cluster._dirty) + len(cluster._ends),
        wakes_from_store=cluster.wakes_from_store,
        moved_in=cluster.moved_in,
        moved_out=cluster.moved_out,
        fenced=cluster.fenced,
    )
