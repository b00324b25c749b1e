"""How a node shares its sessions with others through a store (Redis): one frozen value.

With none (the default) nothing of this exists: sessions live and die with their process.
"""

from __future__ import annotations

import enum
import math
from typing import Any

import attrs

from supervisor._cluster._cluster_secret import ClusterSecret
from supervisor._cluster._store_urls import SENTINEL_PORT, hosts_of, lists_hosts, redacted, tls_context

DEFAULT_LEASE_TTL = 6.0


class Fencing(enum.Enum):
    """What a node does with the sessions it holds while it cannot reach the store."""

    AVAILABLE = "available"
    """Serve them on: a Redis outage costs nothing. Cut off alone, while other nodes reach Redis,
    it may answer for a session another node took, until it reaches Redis and is fenced."""
    STRICT = "strict"
    """Stop serving each one before its lease can lapse (at 3/4 of the TTL, unrenewed), and never
    take over a silent node's lease before it lapses: never two nodes answering for a session, at
    the price of 503s during a Redis outage and moves off a killed node that wait for the TTL."""


DEFAULT_EVICT_AFTER = 300.0


class RedisMode(enum.Enum):
    """How the node reaches Redis."""

    STANDALONE = "standalone"
    """One Redis at `redis_url` (a single point: while it is down, no session moves or wakes)."""
    SENTINEL = "sentinel"
    """A primary with replicas watched by Redis Sentinel: `redis_url` names a sentinel and
    `sentinel_master` the service; a failover moves the node to the new primary by itself."""
    CLUSTER = "cluster"
    """A Redis Cluster (sharded): `redis_url` names any node of it. Every script touches one slot
    (a session's keys carry its id as a hash tag); the indexes are written beside the scripts."""


def _positive(_: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{attribute.name} must be a positive, finite number, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{attribute.name} must be a positive, finite number, got {value!r}")


def _not_negative(_: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{attribute.name} must be a finite number >= 0, got {value!r}")


_OPTIONAL_POSITIVE: Any = attrs.validators.optional(_positive)


def _redis_url(_: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value.startswith(("redis://", "rediss://", "unix://")):
        shown = redacted(value) if isinstance(value, str) else type(value).__name__
        raise ValueError(f"{attribute.name} must be a redis://, rediss:// or unix:// URL, got {shown!r}")
    tls_context(value)  # a bad TLS parameter is a bad URL, said when the settings are made


def _prefix(_: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value or any(c.isspace() for c in value):
        raise ValueError(f"{attribute.name} must be a non-empty word, got {value!r}")


@attrs.frozen(kw_only=True)
class StoreSettings:
    """Where sessions are kept beyond the process, and the timings of sharing them."""

    redis_url: str = attrs.field(validator=_redis_url)
    prefix: str = attrs.field(default="mcp-supervisor", validator=_prefix)
    """Every key and channel starts with it: several clusters may share one Redis."""
    lease_ttl: float = attrs.field(default=DEFAULT_LEASE_TTL, validator=_positive)
    """Seconds a node's claim on an awake session lasts unless renewed (renewed every third of it).
    After a node dies, its sessions can move once this has passed (at once, if it is seen gone)."""
    budget: float = attrs.field(default=0.5, validator=_positive)
    """Seconds any one store call may take on a request's path; past it the store counts as down."""
    move_timeout: float | None = attrs.field(default=None, validator=_OPTIONAL_POSITIVE)
    """Seconds a request waits for its session to move here from another node; None: the longer of
    lease_ttl and release_grace, plus 2 (a move waits for the holder's calls in flight)."""
    release_grace: float = attrs.field(default=10.0, validator=_not_negative)
    """Seconds a node asked to let a session go keeps serving it until its calls in flight are
    done; only a call still running then is cut. The CLI sets it to the drain grace."""
    evict_after: float | None = attrs.field(default=DEFAULT_EVICT_AFTER, validator=_OPTIONAL_POSITIVE)
    """Idle seconds after which a session is only its record in the store (no actor anywhere)."""
    drain_delay: float = attrs.field(default=2.0, validator=_not_negative)
    """Seconds a stopping node stays up, not ready, before closing its sessions: the balancer's
    health checks see it go and send its sessions' requests elsewhere first (docs/scale-out.md)."""
    events: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    """Keep SSE events in Redis too (`RedisEventStore`): a stream resumes on any node. Costs a
    Redis write per event, and turns direct answers and quick open off (as any event store)."""
    events_per_stream: int = attrs.field(default=1000, validator=_positive)
    """Events the Redis event store keeps per SSE stream, the oldest dropped first."""
    fencing: Fencing = attrs.field(default=Fencing.AVAILABLE, validator=attrs.validators.instance_of(Fencing))
    """Availability or strict ownership while the store cannot be reached (docs/scale-out.md)."""
    advertise_url: str | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.instance_of(str))
    )
    """Where the other nodes reach this one (`http://10.0.0.1:8000`): they forward requests for the
    sessions it holds here instead of moving them. None: they move them (supervisor/_http/_forward.py)."""
    required: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    """Refuse to start (`StoreRequired`; the CLI's exit 3) when the store does not answer within
    the budget at start; by default a node serves without it and says so (`/readyz`: degraded)."""
    mode: RedisMode = attrs.field(
        default=RedisMode.STANDALONE, validator=attrs.validators.instance_of(RedisMode)
    )
    sentinel_master: str | None = attrs.field(default=None)
    """The service Sentinel watches (`sentinel monitor NAME ...`); needed with `RedisMode.SENTINEL`."""
    secret: ClusterSecret | None = attrs.field(
        default=None,
        repr=False,
        validator=attrs.validators.optional(attrs.validators.instance_of(ClusterSecret)),
    )
    """Sign records and messages (`--cluster-secret-file`): Redis access alone forges nothing a
    node trusts (docs/scale-out.md, "What Redis access allows")."""

    def __attrs_post_init__(self) -> None:
        if self.mode is RedisMode.SENTINEL:
            if not self.sentinel_master:
                raise ValueError("the sentinel mode needs the service's name (sentinel_master)")
            if not self.redis_url.startswith(("redis://", "rediss://")):
                raise ValueError(
                    "the sentinel mode takes a redis:// or rediss:// URL naming its sentinels "
                    "(host:port, or a comma-separated list)"
                )
            hosts_of(self.redis_url, SENTINEL_PORT)
        elif self.redis_url.startswith(("redis://", "rediss://")) and lists_hosts(self.redis_url):
            raise ValueError(
                f"redis_url names several hosts ({redacted(self.redis_url)}): only the sentinel mode "
                "takes a list (its sentinels)"
            )
        if self.mode is RedisMode.CLUSTER and not self.redis_url.startswith(("redis://", "rediss://")):
            raise ValueError(
                "the cluster mode takes a redis:// or rediss:// URL naming any node of the cluster"
            )
        if self.mode is not RedisMode.SENTINEL and self.sentinel_master is not None:
            raise ValueError("sentinel_master names a service of the sentinel mode: set mode too")

    @property
    def move_wait(self) -> float:
        if self.move_timeout is not None:
            return self.move_timeout
        return max(self.lease_ttl, self.release_grace) + 2.0

    @property
    def renew_every(self) -> float:
        return self.lease_ttl / 3
