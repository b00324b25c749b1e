"""How a session record is kept in Redis: sealed with the cluster secret if there is one, and
with the client's `initialize` params stored once per distinct value, so it has a bounded size.

A record keeps the client's params exactly (a woken loop checks capabilities by value), and a
client may send up to `--max-initialize-bytes` of them. Params longer than `INLINE_LIMIT` go
under `params:<ref>`, where the ref is a digest of the text (keyed by the cluster secret when
there is one); the record names the ref. Clients of one release send the same params, so
sessions share one key, and a node keeps the few values it has read in a small cache: a ref
names one text forever, so the cache is never stale.

The shared key lives as long as the longest-lived record that names it: each write of such a
record first makes sure of that (one script), so a record never names params Redis dropped
before it. Records that never expire (no idle timeout) keep their params inline.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from typing import Any

from actors import SessionRecord, UnreadParams
from supervisor._cluster._cluster_secret import ClusterSecret, unsealed
from supervisor._cluster._store_health import HealthWatch

logger = logging.getLogger("supervisor._redis_store")

INLINE_LIMIT = 512
"""Params of up to this many characters stay in the record (most clients send 100 to 300)."""
CACHED = 256
"""Distinct params a node keeps in memory once read (each at most `--max-initialize-bytes`)."""

# Store a shared params value, keeping it at least `ms` (> 0). KEYS: params. ARGV: value ('':
# only keep what is there), ms. A value already there is the same text (the key is its digest):
# only its life may grow.
SHARE = """
local left = redis.call('PTTL', KEYS[1])
if left == -1 then return 0 end
if left == -2 and ARGV[1] == '' then return 0 end
if left < tonumber(ARGV[2]) then
  if left == -2 then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  else
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
  end
end
return 1
"""


class StoredRecords:
    """Turns records into the text Redis keeps and back; owned by the store."""

    def __init__(self, prefix: str, client: Any, watch: HealthWatch, secret: ClusterSecret | None) -> None:
        self._prefix = prefix
        self._client = client
        self._watch = watch
        self._secret = secret
        self._share = client.register_script(SHARE)
        self._cache: OrderedDict[str, str] = OrderedDict()

    def params_key(self, ref: str) -> str:
        return f"{self._prefix}:params:{ref}"

    def _ref_of(self, text: str) -> str:
        if self._secret is None:
            return hashlib.sha256(text.encode()).hexdigest()[:32]
        return self._secret.digest("params", text)[:32]

    async def stored(self, record: SessionRecord, key: str, ms: int) -> str:
        """The text to keep under `key`: params inline if short, else shared (kept `ms`). A
        record that never expires (`ms` 0: no idle timeout) keeps them inline: nothing would
        tell when no record names shared ones any more."""
        params = record.client_params
        if params is None or len(params) <= INLINE_LIMIT or ms == 0:
            text = record.to_json()
        else:
            ref = self._ref_of(params)
            params_key = self.params_key(ref)
            value = params if self._secret is None else self._secret.seal(params_key, params)
            await self._watch.bounded("params", self._share(keys=[params_key], args=[value, ms]))
            self._remember(ref, params)
            text = record.to_json(params_ref=ref)
        return text if self._secret is None else self._secret.seal(key, text)

    async def record_of(self, session_id: str, key: str, text: str | None) -> SessionRecord | None:
        """The record kept as `text` under `key`; None (logged) if there is none or it is not good."""
        if text is None:
            return None
        opened = unsealed(text) if self._secret is None else self._secret.unseal(key, text)
        if opened is None:
            self._watch.refused("record")
            logger.error(
                "a record in the store for %s failed the cluster secret's check (changed in Redis, or "
                "written with another secret): taken as no record",
                session_id[:64],
            )
            return None
        try:
            try:
                record = SessionRecord.from_json(opened, self._cached)
            except UnreadParams as unread:
                await self._fetch(unread.ref)
                record = SessionRecord.from_json(opened, self._cached)
        except (ValueError, UnreadParams):
            logger.error("unreadable record in the store for %s", session_id[:64])  # noqa: TRY400
            return None
        if record.session_id != session_id:
            logger.error("the record stored for %s names another session", session_id[:64])
            return None
        return record

    async def keep_params(self, refs: list[str], ms: int) -> None:
        """Keep the shared params that kept records name at least as long as those records (one
        call per distinct value; written again from the cache if Redis lost them)."""
        for ref in dict.fromkeys(refs):
            key = self.params_key(ref)
            text = self._cache.get(ref)
            value = "" if text is None else text if self._secret is None else self._secret.seal(key, text)
            await self._watch.bounded("params", self._share(keys=[key], args=[value, ms]))

    def _cached(self, ref: str) -> str | None:
        text = self._cache.get(ref)
        if text is not None:
            self._cache.move_to_end(ref)
        return text

    async def _fetch(self, ref: str) -> None:
        """Read shared params into the cache (nothing if Redis has none, or they fail a check)."""
        key = self.params_key(ref)
        stored = await self._watch.read("params", lambda: self._client.get(key))
        if stored is None:
            logger.error("shared client params %s are missing from the store", ref)
            return
        text = unsealed(str(stored)) if self._secret is None else self._secret.unseal(key, str(stored))
        if text is None or (self._secret is None and self._ref_of(text) != ref):
            self._watch.refused("params")
            logger.error("shared client params %s failed their check: taken as missing", ref)
            return
        self._remember(ref, text)

    def _remember(self, ref: str, text: str) -> None:
        self._cache[ref] = text
        self._cache.move_to_end(ref)
        while len(self._cache) > CACHED:
            self._cache.popitem(last=False)
