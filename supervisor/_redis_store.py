"""The session store in Redis: records, leases with epochs, and the channels nodes talk on.

Every call is bounded by the budget and every multi-key change is one Lua script, so a change is
atomic and costs one round trip. A lease is `"<node> <epoch>"` under `lease:<id>`, expiring
unless renewed; the epoch counter `epoch:<id>` only grows, so a node whose claim lapsed and was
taken can tell (its epoch is no longer the lease's) and stops serving: fencing. A record is only
written by the node whose lease it checks in the same script.

coredis is imported here alone, and only when a store is configured.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

from actors._record import Principal, SessionRecord
from supervisor._store_settings import StoreSettings

logger = logging.getLogger(__name__)


class StoreUnavailable(Exception):
    """The store did not answer within the budget, or failed: the caller goes on without it."""


# Claim a lease. KEYS: lease, epoch. ARGV: node, lease ms, epoch-key ms (0: keep), the lease value
# the caller saw and may replace ('' = only if free). Returns {won, epoch, owner}.
_CLAIM = """
local cur = redis.call('GET', KEYS[1])
if cur then
  local owner, ep = string.match(cur, '^(%S+) (%d+)$')
  if owner == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return {1, tonumber(ep), owner}
  end
  if cur ~= ARGV[4] then return {0, tonumber(ep), owner} end
end
local e = redis.call('INCR', KEYS[2])
if tonumber(ARGV[3]) > 0 then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. e, 'PX', ARGV[2])
return {1, e, ARGV[1]}
"""

# Is the lease ours? Ours too if it lapsed and nobody claimed since (the epoch counter unmoved).
_MINE = """
local function mine(lease, epochkey, node, epoch, ms)
  local cur = redis.call('GET', lease)
  if cur == node .. ' ' .. epoch then return true end
  if not cur then
    local seen = redis.call('GET', epochkey)
    -- Lapsed, and nobody claimed it since; or Redis lost its data (restarted without persistence).
    if seen == epoch or not seen then
      redis.call('SET', epochkey, epoch)
      redis.call('SET', lease, node .. ' ' .. epoch, 'PX', ms)
      return true
    end
  end
  return false
end
"""

# Renew leases (and keep their records). KEYS: lease, epoch, record per session. ARGV: node,
# lease ms, record ms (0: keep), then an epoch per session. Returns the 1-based indexes lost, and
# those whose record is missing (Redis lost it: the holder writes it again).
_RENEW = (
    _MINE
    + """
local lost, missing = {}, {}
for i = 1, #ARGV - 3 do
  local lease, epochkey, rec = KEYS[3*i-2], KEYS[3*i-1], KEYS[3*i]
  if mine(lease, epochkey, ARGV[1], ARGV[i+3], ARGV[2]) then
    redis.call('PEXPIRE', lease, ARGV[2])
    local kept = tonumber(ARGV[3]) > 0 and redis.call('PEXPIRE', rec, ARGV[3]) or redis.call('EXISTS', rec)
    if kept == 0 then table.insert(missing, i) end
  else
    table.insert(lost, i)
  end
end
return {lost, missing}
"""
)

# Write a record under the lease. KEYS: record, lease, epoch, principal index. ARGV: json, record
# ms (0: keep), node, epoch ('0': a new session, claim it), lease ms, session id, index score.
# Returns the epoch held, or 0 if another node holds the session.
_PUT = (
    _MINE
    + """
local epoch = ARGV[4]
if epoch == '0' then
  if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
  epoch = tostring(redis.call('INCR', KEYS[3]))
  redis.call('SET', KEYS[2], ARGV[3] .. ' ' .. epoch, 'PX', ARGV[5])
elseif not mine(KEYS[2], KEYS[3], ARGV[3], epoch, ARGV[5]) then
  return 0
end
if tonumber(ARGV[2]) > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  redis.call('PEXPIRE', KEYS[3], ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
if KEYS[4] ~= '' then
  redis.call('ZADD', KEYS[4], ARGV[7], ARGV[6])
end
return tonumber(epoch)
"""
)

# Let go of a lease if it is still ours. KEYS: lease. ARGV: node, epoch.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] .. ' ' .. ARGV[2] then redis.call('DEL', KEYS[1]) end
return 1
"""

# Forget a session for good. KEYS: record, lease, epoch, principal index. ARGV: session id.
_FORGET = """
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
if KEYS[4] ~= '' then redis.call('ZREM', KEYS[4], ARGV[1]) end
return 1
"""


@attrs.frozen
class StoreHealth:
    """The store as this node last saw it."""

    up: bool
    since: float
    """Seconds since the epoch when it last changed between up and down."""
    errors: int
    operations: dict[str, int]
    """Store calls made, by kind: what docs/scale-out.md's operation counts are read from."""


@attrs.frozen
class Claim:
    """The answer to a claim: won or not, the lease's epoch, and who holds it."""

    won: bool
    epoch: int
    owner: str
    seen: str
    """The lease's value as found: a steal may replace exactly this."""


class RedisStore:
    """One node's connection to the shared store."""

    def __init__(self, settings: StoreSettings, node_id: str, client: Any, no_retry: Any = None) -> None:
        self.settings = settings
        self.node_id = node_id
        self.client = client
        """The coredis client (the Redis event store shares it)."""
        prefix = settings.prefix
        self._prefix = prefix
        self.node_channel = f"{prefix}:node:{node_id}"
        self.cluster_channel = f"{prefix}:cluster"
        self._scripts = {
            name: client.register_script(text)
            for name, text in (
                ("claim", _CLAIM),
                ("renew", _RENEW),
                ("put", _PUT),
                ("release", _RELEASE),
                ("forget", _FORGET),
            )
        }
        self._up = True
        self._since = time.time()
        self._errors = 0
        self._operations: Counter[str] = Counter()
        self._no_retry = no_retry

    # ------------------------------------------------------------------ keys

    def _key(self, kind: str, session_id: str) -> str:
        return f"{self._prefix}:{kind}:{session_id}"

    def _index(self, principal: Principal | None) -> str:
        if principal is None:
            return ""
        text = json.dumps(attrs.asdict(principal), sort_keys=True).encode()
        return f"{self._prefix}:who:{hashlib.sha256(text).hexdigest()[:32]}"

    def node_channel_of(self, node_id: str) -> str:
        return f"{self._prefix}:node:{node_id}"

    # ------------------------------------------------------------------ health

    @property
    def up(self) -> bool:
        return self._up

    def health(self) -> StoreHealth:
        return StoreHealth(self._up, self._since, self._errors, dict(self._operations))

    def _mark(self, up: bool, error: BaseException | None = None) -> None:
        if up != self._up:
            self._up, self._since = up, time.time()
            if up:
                logger.warning("session store is reachable again")
            else:
                logger.error("session store unreachable: %s", error or "no answer within the budget")

    async def bounded(self, kind: str, call: Any, budget: float | None = None) -> Any:
        """Run one store call within the budget; StoreUnavailable if it fails or takes longer."""
        self._operations[kind] += 1
        with trio.move_on_after(self.settings.budget if budget is None else budget):
            try:
                answer = await call
            except (OSError, trio.BrokenResourceError, Exception) as error:
                if isinstance(error, StoreUnavailable):
                    raise
                self._errors += 1
                self._mark(False, error)
                raise StoreUnavailable(str(error)) from None
            self._mark(True)
            return answer
        self._errors += 1
        self._mark(False)
        raise StoreUnavailable("no answer within the budget")

    # ------------------------------------------------------------------ records

    def _ms(self, seconds: float | None) -> int:
        return 0 if seconds is None else max(1, int(seconds * 1000))

    async def put(self, record: SessionRecord, epoch: int, ttl: float | None) -> int:
        """Write `record` while holding its lease (epoch 0: a new session, claimed now).

        Returns the epoch held, or 0 when another node holds the session (then nothing is written).
        """
        sid = record.session_id
        index = self._index(record.principal)
        score = time.time() + (ttl if ttl is not None else 10 * 365 * 86400.0)
        keys = [self._key("rec", sid), self._key("lease", sid), self._key("epoch", sid), index]
        args = [
            record.to_json(),
            self._ms(ttl),
            self.node_id,
            str(epoch),
            self._ms(self.settings.lease_ttl),
            sid,
            str(score),
        ]
        held = await self.bounded("put", self._scripts["put"](keys=keys, args=args))
        return int(held)

    async def load(self, session_id: str) -> tuple[SessionRecord | None, str | None]:
        """The record stored for `session_id` (None: none, or unreadable) and its lease's holder."""
        text, lease = await self.bounded(
            "load", self.client.mget([self._key("rec", session_id), self._key("lease", session_id)])
        )
        owner = lease.split(" ", 1)[0] if isinstance(lease, str) else None
        if text is None:
            return None, owner
        try:
            return SessionRecord.from_json(text), owner
        except ValueError:
            logger.error("unreadable record in the store for %s", session_id[:64])  # noqa: TRY400
            return None, owner

    async def forget(self, record: SessionRecord) -> None:
        """Delete a session's record, lease and epoch, and its place in its principal's index."""
        sid = record.session_id
        keys = [self._key("rec", sid), self._key("lease", sid), self._key("epoch", sid)]
        await self.bounded(
            "forget", self._scripts["forget"](keys=[*keys, self._index(record.principal)], args=[sid])
        )

    async def count_of(self, principal: Principal) -> int:
        """Sessions `principal` holds in the store (over every node), expired entries dropped."""
        index = self._index(principal)
        now = str(time.time())
        await self.bounded("index", self.client.zremrangebyscore(index, "-inf", now))
        return int(await self.bounded("index", self.client.zcount(index, now, "+inf")))

    async def sessions_of(self, principal: Principal) -> list[str]:
        index = self._index(principal)
        members = await self.bounded("index", self.client.zrangebyscore(index, str(time.time()), "+inf"))
        return [str(member) for member in members]

    async def records(self, limit: int) -> list[tuple[SessionRecord, str | None]]:
        """Up to `limit` records of the whole cluster, with each one's lease holder (a SCAN)."""
        found: list[tuple[SessionRecord, str | None]] = []
        cursor: int | None = None
        pattern = f"{self._prefix}:rec:*"
        while cursor != 0 and len(found) < limit:
            cursor, keys = await self.bounded(
                "scan", self.client.scan(cursor or 0, match=pattern, count=500), budget=2.0
            )
            for key in keys[: limit - len(found)]:
                record, owner = await self.load(key.split(":rec:", 1)[1])
                if record is not None:
                    found.append((record, owner))
        return found

    # ------------------------------------------------------------------ leases

    async def claim(self, session_id: str, ttl: float | None, replace: str = "") -> Claim:
        keys = [self._key("lease", session_id), self._key("epoch", session_id)]
        args = [self.node_id, self._ms(self.settings.lease_ttl), self._ms(ttl), replace]
        won, epoch, owner = await self.bounded("claim", self._scripts["claim"](keys=keys, args=args))
        seen = "" if won else f"{owner} {epoch}"
        return Claim(bool(won), int(epoch), str(owner), seen)

    async def renew(
        self, held: Sequence[tuple[str, int]], record_ttl: float | None
    ) -> tuple[list[str], list[str]]:
        """Renew the leases `held` (id, epoch): the ids whose lease another node now holds, and
        those (still ours) whose record Redis no longer has."""
        keys: list[str] = []
        for sid, _ in held:
            keys += [self._key("lease", sid), self._key("epoch", sid), self._key("rec", sid)]
        args = [self.node_id, self._ms(self.settings.lease_ttl), self._ms(record_ttl)]
        args += [str(epoch) for _, epoch in held]
        lost, missing = await self.bounded("renew", self._scripts["renew"](keys=keys, args=args))
        return [held[int(i) - 1][0] for i in lost], [held[int(i) - 1][0] for i in missing]

    async def release(self, session_id: str, epoch: int) -> None:
        await self.bounded(
            "release",
            self._scripts["release"](keys=[self._key("lease", session_id)], args=[self.node_id, str(epoch)]),
        )

    # ------------------------------------------------------------------ channels

    async def publish(self, channel: str, message: dict[str, Any]) -> int:
        """Send `message` on `channel`; how many nodes listen there (0: its owner is gone)."""
        text = json.dumps({**message, "from": self.node_id}, separators=(",", ":"))
        return int(await self.bounded("publish", self.client.publish(channel, text)))

    @asynccontextmanager
    async def listening(self) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        """This node's channel and the cluster's, as messages (resubscribed after an outage)."""
        channels = [self.node_channel, self.cluster_channel]
        async with self.client.pubsub(
            channels=channels, ignore_subscribe_messages=True, retry_policy=self._no_retry
        ) as pubsub:
            yield _messages(pubsub)

    async def ping(self) -> None:
        await self.bounded("ping", self.client.ping())


async def _messages(pubsub: Any) -> AsyncIterator[dict[str, Any]]:
    async for message in pubsub:
        if message.get("type") != "message":
            continue
        try:
            data = json.loads(message["data"])
        except (TypeError, ValueError):
            continue
        if isinstance(data, dict):
            yield data


@asynccontextmanager
async def open_store(settings: StoreSettings, node_id: str) -> AsyncIterator[RedisStore]:
    """Connect to the store for the block's duration (coredis, imported only now)."""
    try:
        import coredis
        from coredis.retry import NoRetryPolicy
    except ImportError:
        raise RuntimeError(
            "a session store needs the coredis package: pip install 'trio-mcp-supervisor[redis]'"
        ) from None
    client = coredis.Redis.from_url(
        settings.redis_url,
        decode_responses=True,
        connect_timeout=settings.budget,
        stream_timeout=max(settings.budget, 1.0),
        client_name=f"mcp-supervisor-{node_id}",
        # No retries inside the client: each call has its budget, and a failed one is ours to handle.
        retry_policy=NoRetryPolicy(),
    )
    async with client:
        yield RedisStore(settings, node_id, client, NoRetryPolicy())
