"""Serving a supervisor through hypercorn's trio worker, with a drain before hypercorn stops.

hypercorn's own lifespan shutdown runs after its graceful timeout has already cancelled the
handlers, so it cannot be the drain. The shutdown trigger drains the supervisor first (in-flight
calls finish within the grace, GET streams close, new sessions get 503) and only then returns,
which is what tells hypercorn to stop.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Awaitable, Callable

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve as hypercorn_serve
from mcp.server.transport_security import TransportSecuritySettings

from supervisor._core import SessionSupervisor

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


def hypercorn_config(bind: str, *, graceful_timeout: float = 3.0) -> HypercornConfig:
    """A hypercorn config for one bind address; no access log (it would log every call)."""
    config = HypercornConfig()
    config.bind = [bind]
    config.graceful_timeout = graceful_timeout
    config.accesslog = None
    # hypercorn's own error logger, without the stream handler hypercorn would add to it: its
    # records ("Running on ...") go out once, through the application's logging.
    config.errorlog = logging.getLogger("hypercorn.error")
    return config


def bind_host(bind: str) -> str:
    """The host part of a hypercorn bind string (`host:port`, `[v6]:port`)."""
    host, _, _ = bind.rpartition(":")
    return host or bind


def loopback_security(bind: str) -> TransportSecuritySettings | None:
    """DNS-rebinding protection for loopback binds (as the SDK does); None for other binds."""
    if bind_host(bind) not in LOOPBACK_HOSTS:
        return None
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
        allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
    )


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
) -> None:
    """Serve `supervisor.asgi_app` until `shutdown_trigger` returns; drain, then let hypercorn stop.

    `task_status.started()` receives hypercorn's bound URLs (the real port when binding to 0).
    """

    async def drain_then_stop() -> None:
        await shutdown_trigger()
        await supervisor.shutdown()

    await hypercorn_serve(
        supervisor.asgi_app,  # type: ignore[arg-type]
        config,
        shutdown_trigger=drain_then_stop,
        task_status=task_status,
    )
