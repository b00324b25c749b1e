"""Serving a supervisor through hypercorn's trio worker, with a drain before hypercorn stops.

hypercorn's own lifespan shutdown runs after its graceful timeout has already cancelled the
handlers, so it cannot be the drain. The shutdown trigger drains the supervisor first (in-flight
calls finish within the grace, GET streams close, new sessions get 503) and only then returns,
which is what tells hypercorn to stop.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Awaitable, Callable, Sequence

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve as hypercorn_serve
from starlette.types import ASGIApp

from supervisor._core import SessionSupervisor, public_bind_refusal

KEEP_ALIVE_TIMEOUT = 75.0
"""Seconds an idle kept-alive connection stays open: longer than what a proxy keeps an idle
connection to a node (HAProxy closes its idle ones after 5 s, nginx's `keepalive_timeout` is 60 s),
so the proxy closes it, never the node under a request already on its way; and longer than a pause
a node comes back from, since hypercorn's idle close fires at once on waking, in the same instant
the request waiting in the socket is read (and its answer lost, though it ran)."""


def hypercorn_config(
    bind: str | Sequence[str],
    *,
    graceful_timeout: float = 3.0,
    certfile: str | None = None,
    keyfile: str | None = None,
    keep_alive_timeout: float = KEEP_ALIVE_TIMEOUT,
) -> HypercornConfig:
    """A hypercorn config for one or more bind addresses (TLS with a certificate and key); no
    access log of hypercorn's (ours is `--access-log`)."""
    config = HypercornConfig()
    config.keep_alive_timeout = keep_alive_timeout
    config.bind = [bind] if isinstance(bind, str) else list(bind)
    config.certfile = certfile
    config.keyfile = keyfile
    config.graceful_timeout = graceful_timeout
    config.accesslog = None
    # hypercorn's own error logger, without the stream handler hypercorn would add to it: its
    # records ("Running on ...") go out once, through the application's logging.
    config.errorlog = logging.getLogger("hypercorn.error")
    return config


async def wait_for_signal() -> None:
    """Return on the first SIGINT or SIGTERM."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            return


async def serve_supervisor(
    supervisor: SessionSupervisor,
    config: HypercornConfig,
    *,
    shutdown_trigger: Callable[[], Awaitable[None]] = wait_for_signal,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
    wrap: Callable[[ASGIApp], ASGIApp] | None = None,
) -> None:
    """Serve `supervisor.asgi_app` until `shutdown_trigger` returns; drain, then let hypercorn stop.

    `task_status.started()` receives hypercorn's bound URLs (the real port when binding to 0).
    ValueError, before anything listens, for a bind that is not loopback while the Host checks
    allow loopback names only (the default): every outside request would get 421.
    """
    refusal = public_bind_refusal(config.bind, supervisor.config.security)
    if refusal is not None:
        raise ValueError(refusal)

    async def drain_then_stop() -> None:
        await shutdown_trigger()
        store = supervisor.config.store
        if store is not None and store.drain_delay > 0:
            # Not ready first: the balancer's checks see it and route this node's sessions to
            # others (which move them from here) before the sessions close here.
            supervisor.drain()
            await trio.sleep(store.drain_delay)
        if supervisor.cluster is not None:
            await supervisor.cluster.directory.withdraw()  # others move its sessions from now on
        await supervisor.shutdown()
        if store is not None and store.drain_delay > 0:
            # Stopping, not gone: `/readyz?sessions=held` says 503 and every request here is
            # answered "retry" (503) until the balancer's checks have seen it, so no request that a kept-alive
            # connection brings is dropped unanswered when hypercorn closes the connections.
            await trio.sleep(store.drain_delay)

    app = supervisor.asgi_app if wrap is None else wrap(supervisor.asgi_app)
    await hypercorn_serve(
        app,  # type: ignore[arg-type]
        config,
        shutdown_trigger=drain_then_stop,
        task_status=task_status,
    )
