"""`mcp-supervisor serve [module:attr]`: serve an MCP server with one trio actor per session.

The flags are in supervisor/_cli/_flags.py; this module checks them, then serves until a signal.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from importlib.metadata import version
from pathlib import Path

import attrs
import trio
from hypercorn.trio import serve as hypercorn_serve
from starlette.types import ASGIApp

from supervisor._cli._flags import apply_options, binds_of, build_parser, secret_file_warnings
from supervisor._cli._haproxy import haproxy_config, options_of
from supervisor._cli._operator import run_sessions
from supervisor._cli._otel import exporting_to
from supervisor._cli._startup import (
    EXIT_CANNOT_LISTEN,
    EXIT_FORCED,
    EXIT_OK,
    EXIT_USAGE,
    bind_problem,
    fail,
    flag_message,
    listen_problem,
)
from supervisor._core import (
    LOOPBACK_HOSTS,
    Served,
    SessionSupervisor,
    SupervisorConfig,
    TargetError,
    bind_host,
    configure_logging,
    freeze_for_exit,
    load_target,
    metrics_beside,
    sdk_surface,
    surface_for,
    tune_for_serving,
)
from supervisor._http import ForwardedHeaders, RootPath, TokensFileError, trusted_peers
from supervisor._serve import StoreRequired, admin_app, hypercorn_config, open_supervisor, serve_supervisor

ONE_PROCESS = (
    "mcp-supervisor serves from one process: every session is an actor in this process's memory, "
    "so a second worker process could not see the sessions of the first. Run several instances "
    "as nodes sharing their sessions through Redis behind HAProxy to scale out (docs/scale-out.md)."
)


def banner(served: Served, config: SupervisorConfig, *, server_auth: bool = False) -> str:
    """The main settings as they really are, for the start-up line."""
    server = served.server
    name = getattr(server, "name", type(server).__name__)
    if config.token_verifier is not None:
        auth = "bearer tokens"
    else:
        auth = "the server's own (SDK)" if server_auth else "none"
    security = config.security
    if not security.enable_dns_rebinding_protection:
        hosts = "any (not checked)"
    else:
        hosts = ", ".join(security.allowed_hosts) or "none"
    parts = [
        f"mcp-supervisor {version('trio-mcp-supervisor')}",
        f"server {name!r}",
        f"sessions up to {config.max_sessions or 'unlimited'}",
        f"idle timeout {f'{config.idle_timeout:g} s' if config.idle_timeout else 'off'}",
        f"hibernate after {f'{config.hibernate_after:g} s' if config.hibernate_after else 'off'}",
        f"auth: {auth}",
        f"hosts: {hosts}",
        f"metrics {config.metrics_path or 'off'}",
        f"admin {'on' if config.admin_token else 'off'}",
        f"tracing {'on' if config.tracer_provider is not None else 'off'}",
    ]
    return ", ".join(parts)


def overrides(bundled: SupervisorConfig, final: SupervisorConfig) -> list[str]:
    """A line for each setting a `Served` bundle chose that a command-line flag changed."""
    default = SupervisorConfig()
    lines = []
    for field in attrs.fields(SupervisorConfig):
        chosen = getattr(bundled, field.name)
        now = getattr(final, field.name)
        if chosen != getattr(default, field.name) and now != chosen:
            lines.append(f"the command line overrides the target's {field.name}: {chosen!r} -> {now!r}")
    return lines


@attrs.frozen(kw_only=True)
class Listening:
    """Where and how hypercorn listens, and what wraps the app for a proxy in front."""

    binds: tuple[str, ...]
    certfile: str | None = None
    keyfile: str | None = None
    root_path: str | None = None
    forwarded_from: frozenset[str] | None = frozenset()
    """Peers whose X-Forwarded-* headers are trusted; None: any; empty: none (no --proxy-headers)."""
    admin_bind: str | None = None
    """The admin API's own listener, if it has one."""

    def wrap(self, app: ASGIApp) -> ASGIApp:
        if self.forwarded_from is None or self.forwarded_from:
            app = ForwardedHeaders(app, self.forwarded_from)
        if self.root_path:
            app = RootPath(app, self.root_path)
        return app


def listening_of(options: argparse.Namespace) -> Listening:
    if (options.certfile is None) != (options.keyfile is None):
        fail("--certfile and --keyfile go together: give both for TLS")
    for path in (options.certfile, options.keyfile):
        if path is not None and not Path(path).is_file():
            fail(f"no such file: {path}")
    if options.root_path is not None and not options.root_path.startswith("/"):
        fail(f"--root-path must start with '/', got {options.root_path!r}")
    trusted = trusted_peers(options.forwarded_allow_ips) if options.proxy_headers else frozenset()
    if options.admin_bind is not None and options.admin_token_file is None:
        fail("--admin-bind needs --admin-token-file: the admin API is off without a token")
    binds = tuple(binds_of(options))
    return Listening(
        binds=binds,
        certfile=options.certfile,
        keyfile=options.keyfile,
        root_path=options.root_path,
        forwarded_from=trusted,
        admin_bind=options.admin_bind,
    )


async def _serve_main(
    supervisor: SessionSupervisor,
    listening: Listening,
    stop_signal: Callable[[], Awaitable[None]],
    nursery: trio.Nursery,
    *,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """The MCP listeners until the stop signal and the drain; then everything else ends too."""
    hypercorn = hypercorn_config(
        list(listening.binds), certfile=listening.certfile, keyfile=listening.keyfile
    )
    await serve_supervisor(
        supervisor, hypercorn, shutdown_trigger=stop_signal, task_status=task_status, wrap=listening.wrap
    )
    nursery.cancel_scope.cancel()


async def _serve_admin(
    supervisor: SessionSupervisor,
    bind: str,
    *,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """The admin API's own listener; it ends with the main one (its nursery is cancelled then)."""
    await hypercorn_serve(
        admin_app(supervisor),  # type: ignore[arg-type]
        hypercorn_config(bind),
        shutdown_trigger=trio.sleep_forever,
        task_status=task_status,
    )


async def serve(
    served: Served, config: SupervisorConfig, listening: Listening, gc_tuning: bool = False
) -> bool:
    """Run the supervisor and hypercorn until SIGINT/SIGTERM; drain, then stop.

    A second signal while draining stops at once. Returns whether it had to.
    """
    logger = logging.getLogger("supervisor")
    draining = trio.Event()
    forced = False

    async def stop_signal() -> None:
        await draining.wait()
        if gc_tuning:
            freeze_for_exit()

    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with open_supervisor(served.server, config) as supervisor:
            async with trio.open_nursery() as nursery:

                async def watch_signals() -> None:
                    nonlocal forced
                    async for _ in signals:
                        if not draining.is_set():
                            logger.info(
                                "stopping: draining %d session(s), grace %gs; a second Ctrl-C stops at once",
                                supervisor.live_sessions,
                                config.drain_grace,
                            )
                            draining.set()
                        else:
                            logger.warning("stopping at once: in-flight calls are cancelled")
                            forced = True
                            nursery.cancel_scope.cancel()

                nursery.start_soon(watch_signals)
                if listening.admin_bind is not None:
                    admin_urls: list[str] = await nursery.start(
                        _serve_admin, supervisor, listening.admin_bind
                    )
                    logger.info("admin API on %s/admin", admin_urls[0])
                urls: list[str] = await nursery.start(
                    _serve_main, supervisor, listening, stop_signal, nursery
                )
                logger.info("%s", banner(served, config, server_auth=supervisor.surface.authenticates))
                for url in urls:
                    logger.info("serving MCP on %s%s%s", url, listening.root_path or "", config.path)
            if forced:
                # The nursery took its own cancellation: cut the drain short here, or leaving the
                # supervisor would wait out the whole grace as after a clean stop.
                await supervisor.shutdown(grace=0)
    return forced


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `mcp-supervisor` console script."""
    try:
        return _main(argv)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE


def _main(argv: Sequence[str] | None) -> int:
    options = build_parser().parse_args(argv)
    if options.command == "sessions":
        return run_sessions(options)
    if options.command == "haproxy-config":
        try:
            print(haproxy_config(options_of(options)), end="")
        except ValueError as error:
            fail(str(error))
        return EXIT_OK
    try:
        configure_logging(options.log_level, options.log_format, options.log_config)
    except ValueError as error:
        fail(str(error))
    served, config, listening = _prepare(options)
    if options.gc_tuning:
        tune_for_serving()
    try:
        forced = trio.run(serve, served, config, listening, options.gc_tuning)
    except StoreRequired as error:
        fail(str(error), EXIT_CANNOT_LISTEN)
    except (OSError, BaseExceptionGroup) as error:
        if isinstance(error, BaseExceptionGroup):
            group, _ = error.split(StoreRequired)
            required: BaseException | None = group
            while isinstance(required, BaseExceptionGroup):
                required = required.exceptions[0]
            if required is not None:
                fail(str(required), EXIT_CANNOT_LISTEN)
        cannot = listen_problem(error, list(listening.binds))
        if cannot is None:
            raise
        fail(cannot, EXIT_CANNOT_LISTEN)
    return EXIT_FORCED if forced else EXIT_OK


def _prepare(options: argparse.Namespace) -> tuple[Served, SupervisorConfig, Listening]:
    """Everything checked before serving: each refusal one line and exit 2."""
    if options.workers != 1:
        fail(f"--workers {options.workers} refused. {ONE_PROCESS}")
    for bind in [*binds_of(options), *([options.admin_bind] if options.admin_bind else [])]:
        problem = bind_problem(bind)
        if problem is not None:
            fail(problem)
    logger = logging.getLogger("supervisor")
    try:
        listening = listening_of(options)
        served = load_target(options.target)
        config = apply_options(served, options)
        if options.metrics_path is None:
            config, note = metrics_beside(sdk_surface(served.server, config.path), config)
            if note is not None:
                logger.info("%s", note)
        surface = surface_for(served.server, config)
    except (TargetError, TokensFileError, ValueError, TypeError) as error:
        fail(flag_message(str(error)))
    for line in overrides(served.config, config):
        logger.info("%s", line)
    if options.otel:
        logger.info(
            "tracing: spans to %s, service %s",
            exporting_to(),
            os.environ.get("OTEL_SERVICE_NAME", "mcp-supervisor"),
        )
    for line in secret_file_warnings(options, config):
        logger.warning("%s", line)
    if surface.authenticates:
        logger.info("authentication: the server's own (SDK token verifier and AuthSettings)")
    if surface.routes:
        logger.info("the server's own routes: %s", ", ".join(surface.route_paths))
    public = [bind for bind in listening.binds if bind_host(bind) not in LOOPBACK_HOSTS]
    if not config.security.enable_dns_rebinding_protection:
        logger.warning("checking neither Host nor Origin (--allow-any-host): keep a proxy in front that does")
    if config.token_verifier is None and not surface.authenticates and public:
        logger.warning(
            "serving %s without authentication: anyone who can reach it can open sessions", ", ".join(public)
        )
    return served, config, listening


if __name__ == "__main__":
    sys.exit(main())
