"""The session store in Redis: records, leases with epochs, and the channels nodes talk on.

Every call is bounded by the budget and every multi-key change is one Lua script, so a change is
atomic and costs one round trip. A lease is `"<node> <node epoch> <epoch>"` under `lease:<id>`,
good while that node's membership holds that node epoch (`_redis_scripts.py`); the epoch counter
`epoch:<id>` only grows, so a node whose lease was taken can tell (the lease is no longer its
value) and stops serving: fencing. A record is only written by the node whose lease it checks in
the same script; how it is kept is `StoredRecords`'.

coredis is imported here alone, and only when a store is configured.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from opentelemetry.trace import Tracer

from actors import Principal, SessionRecord
from supervisor._cluster._lease_values import Claim, Holder, Membership
from supervisor._cluster._redis_channels import messages_of, sealed_message
from supervisor._cluster._redis_indexes import PrincipalIndexes
from supervisor._cluster._redis_listing import RecordListing
from supervisor._cluster._redis_marker import ForgetMarker
from supervisor._cluster._redis_records import StoredRecords
from supervisor._cluster._redis_scripts import CLAIM, END_MEMBER, FORGET, MEMBER, PUT, RELEASE, RENEW
from supervisor._cluster._store_health import HealthWatch, StoreHealth
from supervisor._cluster._store_settings import RedisMode, StoreSettings

logger = logging.getLogger("supervisor._redis_store")


class RedisStore:
    """One node's connection to the shared store."""

    def __init__(
        self,
        settings: StoreSettings,
        node_id: str,
        client: Any,
        *,
        no_retry: Any = None,
        closed_errors: tuple[type[BaseException], ...] = (),
    ) -> None:
        self.settings = settings
        self.node_id = node_id
        self.identity = Holder(node_id)
        """This process in leases; its leases are good while `member:<node>` holds its epoch."""
        self.client = client
        """The coredis client (the Redis event store shares it)."""
        prefix = self.prefix = settings.prefix
        self._prefix = prefix
        self.node_channel = f"{prefix}:node:{node_id}"
        self.cluster_channel = f"{prefix}:cluster"
        self._scripts = {
            name: client.register_script(text)
            for name, text in (
                ("member", MEMBER),
                ("end_member", END_MEMBER),
                ("claim", CLAIM),
                ("renew", RENEW),
                ("put", PUT),
                ("release", RELEASE),
                ("forget", FORGET),
            )
        }
        self._watch = HealthWatch(settings.budget, closed_errors)
        self._secret = settings.secret
        self.sharded = settings.mode is RedisMode.CLUSTER
        """A Redis Cluster: scripts touch one session's keys; indexes are written beside them."""
        self.records = StoredRecords(prefix, client, self._watch, self._secret)
        """How a record is kept: sealed, and with long client params stored once per value."""
        self.indexes = PrincipalIndexes(prefix, client, self.bounded)
        """Each principal's sessions; `listing`, up to N records of the whole cluster (a SCAN)."""
        self._marker = ForgetMarker(f"{prefix}:marker", node_id, client, self.bounded)
        self.listing = RecordListing(
            prefix,
            client,
            self.bounded,
            sharded=self.sharded,
            load_many=self.load_many,
            member_key=self.member_key,
        )
        self._no_retry = no_retry

    @property
    def node_epoch(self) -> str:
        return self.identity.epoch

    @property
    def holder(self) -> str:
        return self.identity.value

    # ------------------------------------------------------------------ keys

    def _key(self, kind: str, session_id: str) -> str:
        """A session's key; on a Redis Cluster its id is a hash tag, so a script that touches one
        session's keys touches one slot."""
        if self.sharded:
            return f"{self._prefix}:{kind}:{{{session_id}}}"
        return f"{self._prefix}:{kind}:{session_id}"

    def node_channel_of(self, node_id: str) -> str:
        return f"{self._prefix}:node:{node_id}"

    # ------------------------------------------------------------------ health

    @property
    def up(self) -> bool:
        return self._watch.up

    def health(self) -> StoreHealth:
        return self._watch.health()

    @property
    def tracer(self) -> Tracer | None:
        return self._watch.tracer

    def trace_with(self, tracer: Tracer | None) -> None:
        """Trace the store calls made for a traced request (never the node's own rounds)."""
        self._watch.tracer = tracer

    async def bounded(self, kind: str, call: Any, budget: float | None = None) -> Any:
        """Run one store call within the budget; StoreUnavailable if it fails or takes longer."""
        return await self._watch.bounded(kind, call, budget)

    # ------------------------------------------------------------------ records

    def _ms(self, seconds: float | None) -> int:
        return 0 if seconds is None else max(1, int(seconds * 1000))

    async def put(
        self,
        record: SessionRecord,
        epoch: int,
        ttl: float | None,
        *,
        release: bool = False,
        tell: str | None = None,
    ) -> int:
        """Write `record` while holding its lease (epoch 0: a new session, claimed now).

        `release`: let go of the lease in the same step, and say "released" to the node `tell`
        (one that asked for the session): a hand-over costs the holder one call.

        Returns the epoch held, or 0 when another node holds the session (then nothing is written).
        """
        sid = record.session_id
        score = time.time() + (ttl if ttl is not None else 10 * 365 * 86400.0)
        keys = [self._key("rec", sid), self._key("lease", sid), self._key("epoch", sid)]
        indexes = self.indexes.keys_of(record.principal)
        if not self.sharded:
            keys += indexes
        args = [
            await self.records.stored(record, keys[0], self._ms(ttl)),
            self._ms(ttl),
            self.holder,
            str(epoch),
            sid,
            str(score),
            self.identity.previous,
        ]
        if release:
            args += ["1", *self._released_to(sid, tell)]
        held = await self.bounded("put", self._scripts["put"](keys=keys, args=args))
        if held and self.sharded:
            await self.indexes.add(record.principal, sid, score)
        return int(held)

    async def load(self, session_id: str) -> tuple[SessionRecord | None, str | None]:
        """The record stored for `session_id` (None: none, or unreadable) and its lease's holder."""
        return (await self.load_many([session_id]))[0]

    async def load_many(self, session_ids: Sequence[str]) -> list[tuple[SessionRecord | None, str | None]]:
        """`load` for each id, in one round trip (an MGET of every record and lease)."""
        if not session_ids:
            return []
        keys = [key for sid in session_ids for key in (self._key("rec", sid), self._key("lease", sid))]
        values = await self._watch.read("load", lambda: self.client.mget(keys))
        return [
            await self._parsed(sid, keys[2 * i], *values[2 * i : 2 * i + 2])
            for i, sid in enumerate(session_ids)
        ]

    async def _parsed(
        self, session_id: str, key: str, text: str | None, lease: str | None
    ) -> tuple[SessionRecord | None, str | None]:
        owner = lease.split(" ", 1)[0] if isinstance(lease, str) else None
        return await self.records.record_of(session_id, key, text), owner

    async def forget(self, record: SessionRecord) -> None:
        """Delete a session's record, lease and epoch, and its place in its principal's indexes."""
        sid = record.session_id
        keys = [self._key("rec", sid), self._key("lease", sid), self._key("epoch", sid)]
        indexes = self.indexes.keys_of(record.principal)
        scripted = keys if self.sharded else [*keys, *indexes]
        await self.bounded("forget", self._scripts["forget"](keys=scripted, args=[sid]))
        if self.sharded:
            await self.indexes.remove(record.principal, sid)

    async def principals_named(self, client_id: str) -> set[Principal]:
        """Every principal with a session in the store whose client id is `client_id`."""
        found = await self.load_many(await self.indexes.sessions_of_client(client_id))
        return {rec.principal for rec, _ in found if rec is not None and rec.principal is not None}

    # ------------------------------------------------------------------ leases

    def member_key(self, node_id: str) -> str:
        return f"{self._prefix}:member:{node_id}"

    async def renew_member(self, *, take: bool = False) -> Membership:
        """Renew this process's membership (`take`: as a process starting, whatever it holds)."""
        ms = self._ms(self.settings.lease_ttl)
        args = [self.node_epoch, ms, "1" if take else "0", self.identity.next_epoch]
        script = self._scripts["member"]
        found = int(await self.bounded("member", script(keys=[self.member_key(self.node_id)], args=args)))
        if found == 3:
            self.identity.rejoined()  # under a new epoch: what it holds is moved over by a check
        return {1: Membership.RENEWED, 2: Membership.REJOINED, 3: Membership.REJOINED}.get(
            found, Membership.SUPERSEDED
        )

    async def member_epoch(self, node_id: str) -> str | None:
        """The epoch of the process that is `node_id`'s member now; None: no member (it is gone)."""
        found = await self.bounded("member", self.client.get(self.member_key(node_id)))
        return found if isinstance(found, str) else None

    async def end_membership(self, node_id: str, node_epoch: str) -> None:
        """End `node_id`'s membership if it is still `node_epoch` (its channel is silent)."""
        await self.bounded(
            "member", self._scripts["end_member"](keys=[self.member_key(node_id)], args=[node_epoch])
        )

    async def claim(self, session_id: str, ttl: float | None, replace: str = "") -> Claim:
        """Take the lease if it is free (or ours, or exactly `replace`); it keeps for `ttl` (None:
        no expiry), as the record of an awake session does."""
        keys = [self._key("lease", session_id), self._key("epoch", session_id)]
        args = [self.holder, self._ms(ttl), self._ms(ttl), replace, self.identity.previous]
        won, epoch, value = await self.bounded("claim", self._scripts["claim"](keys=keys, args=args))
        return Claim.of(won, epoch, value)

    async def claim_and_load(
        self, session_id: str, ttl: float | None, replace: str = ""
    ) -> tuple[Claim, SessionRecord | None]:
        """`claim` and, in the same step, the record as it is once claimed (or as it is, held
        elsewhere): a wake of a session nobody holds costs one call. Only a session whose record
        exists is claimed; none: not won, and no owner."""
        record_key = self._key("rec", session_id)
        keys = [self._key("lease", session_id), self._key("epoch", session_id), record_key]
        args = [self.holder, self._ms(ttl), self._ms(ttl), replace, self.identity.previous]
        # Tried once more on a fresh connection if its own was found closed (a healed link), as a
        # read is: a second try finds the lease ours already and answers the same.
        script = self._scripts["claim"]
        won, epoch, value, text = await self._watch.read("claim", lambda: script(keys=keys, args=args))
        claim = Claim.of(won, epoch, value)
        record, _ = await self._parsed(session_id, record_key, str(text) or None, str(value))
        return claim, record

    async def renew(
        self, held: Sequence[tuple[str, int]], record_ttl: float | None
    ) -> tuple[list[str], list[str]]:
        """Check (and keep) the leases `held` (id, epoch): the ids whose lease another node now
        holds, and those (still ours) whose record Redis no longer has. On a Redis Cluster one
        call per session (a script touches one slot); this runs after a lapse, or near a
        record's end, never every round."""
        if self.sharded and len(held) > 1:
            lost: list[str] = []
            missing: list[str] = []
            for one in held:
                one_lost, one_missing = await self.renew([one], record_ttl)
                lost += one_lost
                missing += one_missing
            return lost, missing
        keys: list[str] = []
        for sid, _ in held:
            keys += [self._key("lease", sid), self._key("epoch", sid), self._key("rec", sid)]
        args = [self.holder, self._ms(record_ttl), self.identity.previous]
        args += [str(epoch) for _, epoch in held]
        lost, missing, shared = await self.bounded("renew", self._scripts["renew"](keys=keys, args=args))
        await self.records.keep_params([str(ref) for ref in shared], self._ms(record_ttl))
        return [held[int(i) - 1][0] for i in lost], [held[int(i) - 1][0] for i in missing]

    async def release(self, session_id: str, epoch: int | None, *, tell: str | None = None) -> bool:
        """Let go of the lease if this process holds it at `epoch` (None: at any epoch, a lease
        no session here stands for), saying "released" to the node `tell`; whether it was ours."""
        args = [self.holder, "" if epoch is None else str(epoch), *self._released_to(session_id, tell)]
        args.append(self.identity.previous)
        keys = [self._key("lease", session_id)]
        return bool(await self.bounded("release", self._scripts["release"](keys=keys, args=args)))

    def _released_to(self, session_id: str, node_id: str | None) -> list[str]:
        """The channel and sealed "released" message for `node_id` (none: two empty strings)."""
        if node_id is None:
            return ["", ""]
        channel = self.node_channel_of(node_id)
        said = {"op": "released", "session": session_id}
        return [channel, sealed_message(said, self.node_id, channel, self._secret)]

    # ------------------------------------------------------------------ channels

    async def publish(self, channel: str, message: dict[str, Any]) -> int:
        """Send `message` on `channel`; how many nodes listen there (0: its owner is gone)."""
        text = sealed_message(message, self.node_id, channel, self._secret)
        return int(await self.bounded("publish", self.client.publish(channel, text)))

    @asynccontextmanager
    async def listening(self) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        """This node's channel and the cluster's, as messages (resubscribed after an outage)."""
        channels = [self.node_channel, self.cluster_channel]
        async with self.client.pubsub(
            channels=channels, ignore_subscribe_messages=True, retry_policy=self._no_retry
        ) as pubsub:
            yield messages_of(pubsub, self._secret, self._refused_message)

    def _refused_message(self, channel: str) -> None:
        self._watch.refused("message")
        logger.error("a message on %s failed the cluster secret's check: ignored", channel[:80])

    async def forgot_recently(self, window: float) -> bool:
        """Whether this Redis forgot the cluster (restarted without persistence) less than
        `window` seconds ago, as this node sees it (`ForgetMarker`)."""
        return await self._marker.forgot_within(window)

    async def ping(self) -> None:
        await self._watch.read("ping", self.client.ping)
