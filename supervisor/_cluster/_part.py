"""One node's part in a cluster: the parts that own its state, and the face its supervisor uses.

`Leases` owns which sessions this node holds (and their clock); the `RecordWriter` what it has yet
to write; the `Renewer` renews the leases; the `Listener` hears other nodes; `Claims` takes sessions
from the store; the `Directory` knows where nodes answer. The request path never waits on a write.
While the store is down, everything queued waits and nodes serve what they hold; the writer and
the renewer pick up by themselves once it answers again.
"""

from __future__ import annotations

import logging

import attrs
import trio

from actors import CloseReason, Principal, SessionLog, SessionRecord
from supervisor._cluster._claims import Claims
from supervisor._cluster._directory import Directory
from supervisor._cluster._leases import Leases
from supervisor._cluster._listener import Listener
from supervisor._cluster._redis_store import RedisStore
from supervisor._cluster._renewer import Renewer
from supervisor._cluster._store_health import StoreUnavailable
from supervisor._cluster._store_settings import Fencing
from supervisor._cluster._terms import ClusterStats, Member
from supervisor._cluster._writer import RecordWriter

logger = logging.getLogger("supervisor._cluster")


class Cluster:
    """Leases, record writes and the node's channel, for one supervisor."""

    def __init__(self, store: RedisStore, idle_timeout: float | None) -> None:
        self.store = store
        self.node_id = store.node_id
        self._member: Member | None = None
        self._leases = Leases(store.settings.lease_ttl)
        self._writer = RecordWriter(store, self._leases, idle_timeout, self._fence)
        self.record_keep = self._writer.record_keep
        """How long a write or renewal keeps an awake session's record: its idle timeout, plus the lease."""
        self._renewer = Renewer(
            store,
            self._leases,
            record_keep=self.record_keep,
            fence=self._fence,
            rewrite=self._rewrite,
            after_round=self._writer.kick,
        )
        self.directory = Directory(store, store.settings.advertise_url)
        self.claims = Claims(store, self._leases, self.record_keep)
        self._listener = Listener(store, self._leases, self._writer, self.claims)
        self.fenced = 0

    def stats(self) -> ClusterStats:
        return ClusterStats(
            node_id=self.node_id,
            store=self.store.health(),
            leases=len(self._leases),
            pending_writes=self._writer.pending,
            wakes_from_store=self.claims.wakes_from_store,
            moved_in=self.claims.moved_in,
            moved_out=self._writer.moved_out,
            fenced=self.fenced,
            forwarded=self.directory.forwarded,
        )

    async def run(
        self, member: Member, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """The writer, the renewer and the listener, until cancelled."""
        self._member = member
        await self._renewer.join()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._writer.run)
            nursery.start_soon(self._renewer.run)
            nursery.start_soon(self._listener.run, member, nursery)
            nursery.start_soon(self.directory.run)
            if self.store.settings.fencing is Fencing.STRICT:
                nursery.start_soon(self._leases.watch, self._lapse)
            task_status.started()

    async def flush(self, timeout: float) -> bool:
        """Write everything queued and let go of what ended (at shutdown); True if all of it landed."""
        return await self._writer.flush(timeout)

    # ------------------------------------------------------------------ what the supervisor tells

    def record_ttl(self, record: SessionRecord, *, held: bool) -> float | None:
        return self._writer.record_ttl(record, held=held)

    def opened(self, record: SessionRecord) -> None:
        self._leases.opened(record.session_id)
        self._writer.changed(record)

    def changed(self, record: SessionRecord) -> None:
        self._writer.changed(record)

    async def write_through(self, record: SessionRecord) -> None:
        await self._writer.write_through(record)

    def ended(self, record: SessionRecord, reason: CloseReason) -> None:
        self._writer.ended(record, reason)

    def let_go(self, record: SessionRecord) -> None:
        """A claimed session could not be started here after all: keep its record, free its lease."""
        self._writer.let_go(record, self._leases.drop(record.session_id))

    async def settled(self, session_id: str) -> None:
        await self._writer.settled(session_id)

    # ------------------------------------------------------------------ asked by requests

    @property
    def lease_in_doubt(self) -> bool:
        return self._renewer.lease_in_doubt

    async def confirm(self, session_id: str) -> bool:
        return await self._renewer.confirm(session_id)

    async def revoke(self, principal: Principal) -> list[str]:
        """End `principal`'s sessions on every node and delete their records; the ids found."""
        try:
            found = await self.store.indexes.sessions_of(principal)
            await self.store.publish(
                self.store.cluster_channel, {"op": "revoke", "principal": attrs.asdict(principal)}
            )
            for sid in found:
                await self.store.forget(SessionRecord(session_id=sid, principal=principal))
        except StoreUnavailable:
            logger.error("revocation reached this node only: the session store did not answer")  # noqa: TRY400
            return []
        return found

    # ------------------------------------------------------------------ losing a session

    def _fence(self, sid: str) -> None:
        """Another node holds this session's lease now: no longer served here."""
        if self._leases.drop(sid) is not None:
            self.fenced += 1
            SessionLog(logger, sid).warning("lease lost to another node: no longer served here")
            assert self._member is not None
            self._member.fence(sid)

    def _lapse(self, sid: str, epoch: int) -> None:
        """Its lease may lapse before a renewal reaches the store: no longer served here. Its
        newest record is written (under the lease check) and the lease let go once it answers."""
        assert self._member is not None
        record = self._writer.take_queued(sid) or self._member.record_of(sid)
        if record is not None and record.opened:
            self._writer.let_go(record, epoch)
        self.fenced += 1
        SessionLog(logger, sid).warning("lease not renewed in time (strict fencing): no longer served here")
        self._member.fence(sid)

    def _rewrite(self, missing: list[str]) -> None:
        """Records Redis lost (a restart without persistence): written again from the live actors."""
        assert self._member is not None
        for sid in missing:
            record = self._member.record_of(sid)
            if record is not None and not self._writer.is_queued(sid):
                SessionLog(logger, sid).warning("the store had lost this session's record: writing it again")
                self._writer.changed(record)
