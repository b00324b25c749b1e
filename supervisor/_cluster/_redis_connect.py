"""Connecting a node to its store: one Redis, or the primary that Redis Sentinel names.

coredis is imported only here, and only when a store is configured.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from supervisor._cluster._redis_store import RedisStore
from supervisor._cluster._store_settings import RedisMode, StoreSettings
from supervisor._cluster._store_urls import SENTINEL_PORT, hosts_of, tls_context


@asynccontextmanager
async def open_store(settings: StoreSettings, node_id: str) -> AsyncIterator[RedisStore]:
    """Connect to the store for the block's duration (coredis, imported only now)."""
    try:
        import coredis
        from coredis.retry import NoRetryPolicy
    except ImportError:
        raise RuntimeError(
            "a session store needs the coredis package (a dependency of trio-mcp-supervisor): "
            "reinstall it, e.g. pip install -e . from a clone"
        ) from None
    _quiet_connection_tracebacks(logging.getLogger("coredis"))
    options: dict[str, Any] = {
        "decode_responses": True,
        "connect_timeout": settings.budget,
        "stream_timeout": max(settings.budget, 1.0),
        "client_name": f"mcp-supervisor-{node_id}",
        # No retries inside the client: each call has its budget, and a failed one is ours to handle.
        "retry_policy": NoRetryPolicy(),
    }
    tls = tls_context(settings.redis_url)
    # Ours, not coredis's: its default checks neither the host name nor (strictly) the chain.
    extra: dict[str, Any] = {"ssl_context": tls} if tls is not None else {}
    async with AsyncExitStack() as stack:
        if settings.mode is RedisMode.SENTINEL:
            client = await stack.enter_async_context(_primary_of(settings, {**options, **extra}))
        elif settings.mode is RedisMode.CLUSTER:
            # Reads of many sessions (an MGET) are split by slot: they need no atomicity. Every
            # shard it finds is dialled with the same TLS context as the seed node.
            cluster = coredis.RedisCluster.from_url(
                settings.redis_url, non_atomic_cross_slot=True, **options, **extra
            )
            client = await stack.enter_async_context(cluster)
        else:
            client = await stack.enter_async_context(
                coredis.Redis.from_url(settings.redis_url, **options, **extra)
            )
        closed = (coredis.exceptions.ConnectionError,)
        yield RedisStore(settings, node_id, client, no_retry=NoRetryPolicy(), closed_errors=closed)


class OneLineTraceback(logging.Filter):
    """coredis logs a failed connection with its whole traceback: keep the line, drop the trace.

    The store's health already reports the outage (`session store unreachable: ...`). And a
    handler that renders tracebacks richly (the SDK's `MCPServer` installs one) can block the
    event loop for seconds per record, in the middle of a call that has a budget.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            cause = error.__cause__ or error.__context__
            record.msg = f"{record.getMessage()} ({type(error).__name__}: {error}"
            record.msg += f"; caused by {type(cause).__name__})" if cause is not None else ")"
            record.args, record.exc_info, record.exc_text = None, None, None
        return True


def _quiet_connection_tracebacks(coredis_logger: logging.Logger) -> None:
    if not any(isinstance(each, OneLineTraceback) for each in coredis_logger.filters):
        coredis_logger.addFilter(OneLineTraceback())


@asynccontextmanager
async def _primary_of(settings: StoreSettings, options: dict[str, Any]) -> AsyncIterator[Any]:
    """A client of the primary that the sentinels at `redis_url` name for the service; after a
    failover its next connection goes to the new primary. With `rediss://` the sentinels and
    every primary they name are dialled over TLS, checked with the same context."""
    import coredis
    from coredis.connection import TCPLocation

    url = urllib.parse.urlsplit(settings.redis_url)
    database = int(url.path.strip("/") or 0)
    # Asked in turn: one sentinel down does not keep the node from its primary.
    locations = [TCPLocation(host, port) for host, port in hosts_of(settings.redis_url, SENTINEL_PORT)]
    kept = ("connect_timeout", "stream_timeout", "ssl_context")
    sentinel_options: dict[str, Any] = {key: options[key] for key in kept if key in options}
    connection: dict[str, Any] = {
        key: value for key, value in options.items() if key not in ("retry_policy", "decode_responses")
    }
    connection["db"] = database
    if url.password:
        connection["password"] = urllib.parse.unquote(url.password)
    if url.username:
        connection["username"] = urllib.parse.unquote(url.username)
    sentinel = coredis.Sentinel(
        locations,
        sentinel_kwargs=sentinel_options,
        retry_policy=options["retry_policy"],
        decode_responses=True,
        **connection,
    )
    async with sentinel:
        assert settings.sentinel_master is not None
        async with sentinel.primary_for(settings.sentinel_master) as client:
            yield client
