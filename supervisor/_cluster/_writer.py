"""The record writer: one task that writes what changed, so the request path never waits on Redis.

A record that changed (open, `initialize`, log level, subscriptions, hibernation) is queued here,
coalesced per session, and written under its lease's epoch; the end of an actor is queued too (keep
the record and free the lease, or forget it). While the store is down everything queued waits.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import attrs
import trio

from actors import CLOSE_POLICY, CloseReason, RecordFate, SessionRecord
from supervisor._cluster._leases import Leases
from supervisor._cluster._redis_store import RedisStore
from supervisor._cluster._store_health import StoreUnavailable
from supervisor._cluster._terms import POLL

logger = logging.getLogger("supervisor._cluster")


@attrs.define(eq=False)
class _End:
    record: SessionRecord
    epoch: int
    keep: bool
    done: trio.Event = attrs.field(factory=trio.Event)


class RecordWriter:
    """What this node has yet to write, and the task that writes it."""

    def __init__(
        self, store: RedisStore, leases: Leases, idle_timeout: float | None, fence: Callable[[str], None]
    ) -> None:
        self._store = store
        self._leases = leases
        self._idle_timeout = idle_timeout
        self.record_keep = None if idle_timeout is None else idle_timeout + store.settings.lease_ttl
        """How long a write or renewal keeps an awake session's record: its idle timeout, plus the lease."""
        self._fence = fence
        self._dirty: dict[str, SessionRecord] = {}
        self._ends: dict[str, _End] = {}
        self._work = trio.Event()
        self._asked_by: dict[str, str] = {}
        """Sessions another node asked this one to let go of: the node to tell once it has."""
        self._awaited: dict[str, tuple[SessionRecord, trio.Event]] = {}
        """Records a request waits to see written (`write_through`), and the event it waits on."""
        self.moved_out = 0

    @property
    def pending(self) -> int:
        return len(self._dirty) + len(self._ends)

    def kick(self) -> None:
        """Try again now if anything is queued (the store answers again)."""
        if self._dirty or self._ends:
            self._work.set()

    def record_ttl(self, record: SessionRecord, *, held: bool) -> float | None:
        """How long the store keeps a record: an awake one while its lease lives, else its idle time left."""
        if held or self._idle_timeout is None:
            return self.record_keep
        return max(1.0, record.last_active_at + self._idle_timeout - time.time())

    def changed(self, record: SessionRecord) -> None:
        sid = record.session_id
        awaited = self._awaited.get(sid)
        if awaited is not None and awaited[1].is_set():
            del self._awaited[sid]
            if awaited[0] == record:
                return  # the actor noting what `write_through` has written already
        if sid in self._leases:
            self._dirty[sid] = record
            self._work.set()

    async def write_through(self, record: SessionRecord) -> None:
        """Queue `record` and wait (within twice the budget) until it is written: a new session's
        record lands before its initialize is answered, so a node killed just after the answer
        leaves the session behind in the store. No wait while the store is down."""
        sid = record.session_id
        if sid not in self._leases or not self._store.up:
            return
        written = trio.Event()
        self._awaited[sid] = (record, written)
        self.changed(record)
        with trio.move_on_after(2 * self._store.settings.budget):
            await written.wait()

    def ended(self, record: SessionRecord, reason: CloseReason) -> None:
        """An actor stopped: keep its record (and let go of its lease), forget it, or leave it (fenced)."""
        sid = record.session_id
        self._dirty.pop(sid, None)
        self._awaited.pop(sid, None)
        epoch = self._leases.drop(sid)
        fate = CLOSE_POLICY[reason].record
        if fate is RecordFate.LEFT or epoch is None:
            self._asked_by.pop(sid, None)
            return
        self._ends[sid] = _End(record, epoch, keep=fate is RecordFate.KEPT)
        if reason is CloseReason.MOVED:
            self.moved_out += 1
        self._work.set()

    def let_go(self, record: SessionRecord, epoch: int | None) -> None:
        """Keep `record` and free the lease held at `epoch` (dropped from the leases already)."""
        if epoch:
            self._ends[record.session_id] = _End(record, epoch, keep=True)
            self._work.set()

    def take_queued(self, session_id: str) -> SessionRecord | None:
        """The newest record queued for a session, taken off the queue."""
        return self._dirty.pop(session_id, None)

    def is_queued(self, session_id: str) -> bool:
        return session_id in self._dirty

    def ending(self, session_id: str) -> bool:
        """An actor of this session ended here and its end (record, lease) is not written yet."""
        return session_id in self._ends

    def asked_by(self, session_id: str, node_id: str) -> None:
        """Another node asked for this session: tell it "released" once the end is written."""
        self._asked_by[session_id] = node_id

    async def settled(self, session_id: str) -> None:
        """Wait until what an ended actor left to write has been written (or given up)."""
        end = self._ends.get(session_id)
        if end is not None and self._store.up:  # while it is down, nothing gets written anyway
            with trio.move_on_after(self._store.settings.move_wait):
                await end.done.wait()

    async def flush(self, timeout: float) -> bool:
        """Write everything queued and let go of what ended (at shutdown); True if all of it landed."""
        with trio.move_on_after(timeout):
            while self._dirty or self._ends:
                if not await self._write_once():
                    await trio.sleep(POLL)
            return True
        logger.error("%d session write(s) did not reach the store before exit", self.pending)
        return False

    async def run(self) -> None:
        """The writer task, until cancelled."""
        while True:
            await self._work.wait()
            self._work = trio.Event()
            while (self._dirty or self._ends) and not await self._write_once():
                await _until_up(self._store)

    async def _write_once(self) -> bool:
        """Write what is queued; False if the store stopped answering (the rest stays queued)."""
        try:
            while self._dirty:
                await self._write_record(*next(iter(self._dirty.items())))
            while self._ends:
                await self._write_end(*next(iter(self._ends.items())))
        except StoreUnavailable:
            return False
        return True

    async def _write_record(self, sid: str, record: SessionRecord) -> None:
        sent = trio.current_time()
        epoch = await self._store.put(
            record, self._leases.epoch_of(sid) or 0, self.record_ttl(record, held=True)
        )
        if self._dirty.get(sid) is record:
            del self._dirty[sid]
            awaited = self._awaited.get(sid)
            if awaited is not None and awaited[0] is record:
                awaited[1].set()
        if not self._leases.written(sid, epoch, sent):
            self._fence(sid)

    async def _write_end(self, sid: str, end: _End) -> None:
        store = self._store
        if end.keep and end.record.opened:
            # Written, let go of and (to a node that asked) said so, in one call.
            ttl = self.record_ttl(end.record, held=False)
            await store.put(end.record, end.epoch, ttl, release=True, tell=self._asked_by.get(sid))
        elif end.epoch:
            await store.forget(end.record)
        self._ends.pop(sid, None)
        self._asked_by.pop(sid, None)
        end.done.set()


async def _until_up(store: RedisStore) -> None:
    while True:
        await trio.sleep(1.0)
        try:
            await store.ping()
            return
        except StoreUnavailable:
            continue
