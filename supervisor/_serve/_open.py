"""Opening a supervisor for a server, and the ASGI app that serves it.

This is the one place that knows both sides: the supervisor below (sessions, no HTTP) and the
HTTP layers (the endpoint, auth and the server's own routes). The supervisor builds no app;
`supervisor_app` does, and `open_supervisor` gives the supervisor the one it serves.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import attrs
import trio
from mcp.server.lowlevel.server import Server
from mcp.server.mcpserver import MCPServer
from starlette.types import ASGIApp, Receive, Scope, Send

from actors import (
    CLEANUP_TIMEOUT,
    SDK_TOOL_LOGGER,
    AsyncioBridge,
    AsyncioHint,
    FaultSink,
    open_bridge,
    quiet_closing_races,
    send_refusal,
    tracer_of,
)
from supervisor._cluster import Cluster, RedisEventStore, StoreUnavailable, open_store, redacted
from supervisor._core import (
    Membership,
    SessionSupervisor,
    StatelessRequests,
    SupervisorConfig,
    metrics_beside,
    resolve_server,
    sdk_surface,
    surface_for,
)
from supervisor._http import (
    AccessLog,
    AdminFront,
    HttpTracing,
    SupervisorEndpoint,
    build_front,
    token_digest,
    unknown_path,
)


def supervisor_app(supervisor: SessionSupervisor) -> ASGIApp:
    """The ASGI app for `supervisor`: health first, then its MCP endpoint behind the server's auth,
    beside the server's own routes (see supervisor/_http/_front.py)."""
    config = supervisor.config
    app = build_front(
        SupervisorEndpoint(supervisor), config, supervisor.surface, supervisor, supervisor.tally.refused
    )
    if config.admin_token is not None and not config.admin_separate:
        app = AdminFront(app, supervisor, token_digest(config.admin_token))
    tracer = tracer_of(config.tracer_provider)
    if tracer is not None:
        app = HttpTracing(app, tracer, bodies_at=frozenset({config.path}))
    polled = (config.health_path, config.ready_path, config.metrics_path)
    quiet = frozenset(path for path in polled if path is not None)
    return AccessLog(
        app, at_info=config.access_log, quiet_paths=quiet, mcp_path=config.path, took=supervisor.tally.took
    )


def admin_app(supervisor: SessionSupervisor) -> ASGIApp:
    """The admin API alone, for a listener of its own (`--admin-bind`); every other path is 404."""
    token = supervisor.config.admin_token
    if token is None:
        raise ValueError("the admin API needs an admin token (SupervisorConfig.admin_token)")
    return AdminFront(_not_found, supervisor, token_digest(token))


async def _not_found(scope: Scope, receive: Receive, send: Send) -> None:
    """Every path but the admin API's: JSON-RPC 404; the lifespan acknowledged."""
    if scope["type"] == "http":
        await send_refusal(send, unknown_path())
    elif scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})


@asynccontextmanager
async def open_supervisor(
    server: MCPServer | Server[Any],
    config: SupervisorConfig | None = None,
    *,
    faults: FaultSink | None = None,
) -> AsyncIterator[SessionSupervisor]:
    """Run a supervisor for `server` (an MCPServer or low-level Server) for the block's duration.

    The server's lifespan is entered once and shared by every session and the stateless requests.
    Leaving the block shuts down: with the configured drain grace after a normal exit, at once
    after an error or cancellation. `faults` is for fault-injection tests
    (`supervisor.testing.FaultPlan`); production leaves it None.

    Whatever the server configures for its own HTTP app (auth, custom routes) is served the same
    way here; what cannot be raises `UnsupportedServerSetting` before anything starts.
    """
    lowlevel = resolve_server(server)
    config = config or SupervisorConfig()
    config, note = metrics_beside(sdk_surface(server, config.path), config)
    if note is not None:
        logging.getLogger("supervisor").info("%s", note)
    surface = surface_for(server, config)
    quiet_closing_races()
    async with (
        lowlevel.lifespan(lowlevel) as lifespan_state,
        _cluster_for(config) as cluster,
        _asyncio_bridge() as bridge,
        trio.open_nursery() as nursery,
    ):
        config = _with_store_events(config, cluster)
        stateless = StatelessRequests(lowlevel, config, lifespan_state, asyncio=bridge)
        await nursery.start(stateless.run)
        supervisor = SessionSupervisor(
            lowlevel,
            config,
            nursery=nursery,
            lifespan_state=lifespan_state,
            stateless=stateless,
            faults=faults,
            surface=surface,
            cluster=cluster,
            asyncio=bridge,
        )
        if cluster is not None:
            await nursery.start(cluster.run, Membership(supervisor))
        supervisor.asgi_app = supervisor_app(supervisor)
        clean_exit = False
        try:
            yield supervisor
            clean_exit = True
        finally:
            grace = config.drain_grace if clean_exit else 0.0
            bound = grace + config.kill_grace + CLEANUP_TIMEOUT + 2.0
            with trio.move_on_after(bound, shield=True):
                await supervisor.shutdown(grace)
            if cluster is not None:
                # Every session's record written, every lease let go: they wake on other nodes.
                with trio.move_on_after(cluster.store.settings.move_wait, shield=True):
                    await cluster.flush(cluster.store.settings.move_wait)
            nursery.cancel_scope.cancel()


@asynccontextmanager
async def _asyncio_bridge() -> AsyncIterator[AsyncioBridge]:
    """The loop for `asyncio_tool` (opened on first use), and the hint for a tool that lacked one."""
    hint = AsyncioHint()
    logging.getLogger(SDK_TOOL_LOGGER).addFilter(hint)
    try:
        async with open_bridge() as bridge:
            yield bridge
    finally:
        logging.getLogger(SDK_TOOL_LOGGER).removeFilter(hint)


def _with_store_events(config: SupervisorConfig, cluster: Cluster | None) -> SupervisorConfig:
    """`StoreSettings(events=True)`: the SDK's event store in Redis, beside the records."""
    if cluster is None or config.store is None or not config.store.events:
        return config
    if config.event_store is not None:
        raise ValueError("give an event store or StoreSettings(events=True), not both")
    return attrs.evolve(config, event_store=RedisEventStore(cluster.store, cluster.record_keep))


class StoreRequired(Exception):
    """The store must answer at start (`StoreSettings.required`) and did not."""


@asynccontextmanager
async def _cluster_for(config: SupervisorConfig) -> AsyncIterator[Cluster | None]:
    """This node's cluster part, connected to the store for the block; None without a store."""
    if config.store is None:
        yield None
        return
    async with AsyncExitStack() as stack:
        store = await stack.enter_async_context(open_store(config.store, config.node_id))
        store.trace_with(tracer_of(config.tracer_provider))
        try:
            await store.ping()  # readiness says "down" from the start if it is (serving goes on)
            await store.forgot_recently(0.0)  # learn the marker: a later loss is then seen
        except StoreUnavailable:
            if config.store.required:
                url, budget = redacted(config.store.redis_url), config.store.budget
                raise StoreRequired(
                    f"--require-store: the session store at {url} did not answer within {budget:g} s"
                ) from None
        logging.getLogger("supervisor").info(
            "node %s shares its sessions through %s", config.node_id, redacted(config.store.redis_url)
        )
        yield Cluster(store, config.idle_timeout)
