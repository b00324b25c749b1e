"""The command line's flags for a cluster node: how nodes share their sessions through Redis.

Every one of them needs `--redis-url`; given alone, it is one line and exit 2, never ignored.
"""

from __future__ import annotations

import argparse
from typing import Any

from supervisor._cluster import ClusterSecret, Fencing, RedisMode, StoreSettings


def add_cluster_flags(serve: argparse.ArgumentParser) -> None:
    """Several nodes sharing their sessions through Redis (docs/scale-out.md)."""
    serve.add_argument("--node-id", default=None, help="this node's name, in its session ids (default: host)")
    serve.add_argument(
        "--redis-url", default=None, help="share sessions through this Redis (default: none, one node)"
    )
    serve.add_argument(
        "--redis-mode",
        choices=[mode.value for mode in RedisMode],
        default=None,
        help="one Redis (standalone, the default), a primary and replicas under Sentinel, or a Redis Cluster",
    )
    serve.add_argument(
        "--redis-sentinel-master", default=None, help="with --redis-mode sentinel: the service's name"
    )
    serve.add_argument("--redis-prefix", default=None, help="key prefix (mcp-supervisor)")
    serve.add_argument(
        "--lease-ttl", type=float, default=None, help="seconds a node's claim lasts unrenewed (6.0)"
    )
    serve.add_argument(
        "--store-budget", type=float, default=None, help="seconds any one Redis call may take (0.5)"
    )
    serve.add_argument(
        "--move-timeout", type=float, default=None, help="seconds to wait for a session to move (ttl + 2)"
    )
    serve.add_argument(
        "--redis-events", action="store_true", default=None, help="keep SSE events in Redis: resume anywhere"
    )
    serve.add_argument(
        "--drain-delay", type=float, default=None, help="seconds not ready before closing (2.0)"
    )
    serve.add_argument(
        "--evict-after",
        type=float,
        default=None,
        help="idle seconds until only the record is left; 0: never (300)",
    )
    serve.add_argument(
        "--require-store",
        action="store_true",
        default=None,
        help="exit (code 3) if Redis does not answer at start, instead of serving degraded",
    )
    serve.add_argument(
        "--advertise-url",
        default=None,
        help="where other nodes reach this one, to forward its sessions' requests (default: they move them)",
    )
    serve.add_argument(
        "--cluster-secret-file",
        default=None,
        help="sign records and messages with the key in this file (a second line: the old key)",
    )
    serve.add_argument(
        "--fencing",
        choices=[mode.value for mode in Fencing],
        default=None,
        help="without Redis: serve held sessions on (available, the default) or stop before leases lapse",
    )


_CLUSTER_FLAGS: dict[str, tuple[str, Any]] = {
    "redis_mode": ("--redis-mode", RedisMode.STANDALONE.value),
    "redis_sentinel_master": ("--redis-sentinel-master", None),
    "redis_prefix": ("--redis-prefix", "mcp-supervisor"),
    "lease_ttl": ("--lease-ttl", 6.0),
    "store_budget": ("--store-budget", 0.5),
    "move_timeout": ("--move-timeout", None),
    "redis_events": ("--redis-events", None),
    "drain_delay": ("--drain-delay", 2.0),
    "evict_after": ("--evict-after", 300.0),
    "require_store": ("--require-store", None),
    "advertise_url": ("--advertise-url", None),
    "cluster_secret_file": ("--cluster-secret-file", None),
    "fencing": ("--fencing", Fencing.AVAILABLE.value),
}
"""The flags that say how nodes share sessions (option: flag, default): none means anything alone."""


def store_settings(options: argparse.Namespace, drain_grace: float) -> StoreSettings | None:
    if options.redis_url is None:
        given = [flag for option, (flag, _) in _CLUSTER_FLAGS.items() if getattr(options, option) is not None]
        if given:
            raise ValueError(f"{given[0]} says how nodes share sessions through Redis: give --redis-url too")
        return None
    value: dict[str, Any] = {
        option: default if getattr(options, option) is None else getattr(options, option)
        for option, (_, default) in _CLUSTER_FLAGS.items()
    }
    sentinel = value["redis_mode"] == RedisMode.SENTINEL.value
    if sentinel and not value["redis_sentinel_master"]:
        raise ValueError(
            "--redis-mode sentinel needs --redis-sentinel-master NAME (the service Sentinel watches)"
        )
    if not sentinel and value["redis_sentinel_master"] is not None:
        raise ValueError("--redis-sentinel-master names a service of --redis-mode sentinel: give that too")
    if sentinel and not options.redis_url.startswith(("redis://", "rediss://")):
        raise ValueError(
            "--redis-mode sentinel takes a redis:// or rediss:// URL naming its sentinels "
            "(host:port, or a comma-separated list)"
        )
    if value["redis_mode"] == RedisMode.CLUSTER.value and not options.redis_url.startswith(
        ("redis://", "rediss://")
    ):
        raise ValueError(
            "--redis-mode cluster takes a redis:// or rediss:// URL naming any node of the cluster"
        )
    return StoreSettings(
        redis_url=options.redis_url,
        prefix=value["redis_prefix"],
        lease_ttl=value["lease_ttl"],
        budget=value["store_budget"],
        move_timeout=value["move_timeout"],
        evict_after=value["evict_after"] or None,
        drain_delay=value["drain_delay"],
        events=bool(value["redis_events"]),
        fencing=Fencing(value["fencing"]),
        secret=_cluster_secret(value["cluster_secret_file"]),
        release_grace=drain_grace,
        advertise_url=_advertise_url(value["advertise_url"]),
        required=bool(value["require_store"]),
        mode=RedisMode(value["redis_mode"]),
        sentinel_master=value["redis_sentinel_master"],
    )


def _advertise_url(url: str | None) -> str | None:
    if url is not None and not url.startswith(("http://", "https://")):
        raise ValueError(f"--advertise-url must be an http:// or https:// URL, got {url[:80]!r}")
    return url.rstrip("/") if url is not None else None


def _cluster_secret(path: str | None) -> ClusterSecret | None:
    if path is None:
        return None
    return ClusterSecret.from_file(path)
