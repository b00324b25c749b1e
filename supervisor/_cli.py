"""`mcp-supervisor serve [module:attr]`: serve an MCP server with one trio actor per session."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from importlib.metadata import version

import attrs
import trio

from supervisor import _gc_tuning
from supervisor._admin import read_admin_token
from supervisor._auth import StaticTokenVerifier, TokensFileError
from supervisor._config import SupervisorConfig
from supervisor._loading import Served, TargetError, load_target
from supervisor._logs import configure_logging
from supervisor._open import open_supervisor
from supervisor._operator import add_sessions_command, run_sessions
from supervisor._sdk_surface import metrics_beside, sdk_surface, surface_for
from supervisor._serving import (
    LOOPBACK_HOSTS,
    bind_host,
    hypercorn_config,
    loopback_security,
    serve_supervisor,
)
from supervisor._startup import (
    EXIT_CANNOT_LISTEN,
    EXIT_FORCED,
    EXIT_OK,
    EXIT_USAGE,
    OneLineParser,
    bind_problem,
    fail,
    flag_message,
    listen_problem,
)

DEMO_TARGET = "supervisor.demo:server"
ONE_PROCESS = (
    "mcp-supervisor serves from one process: every session is an actor in this process's memory, "
    "so a second worker process could not see the sessions of the first. Run several instances "
    "behind a load balancer with session affinity (the Mcp-Session-Id header) to scale out."
)


def build_parser() -> argparse.ArgumentParser:
    """The command-line grammar."""
    parser = OneLineParser(prog="mcp-supervisor", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('trio-mcp-supervisor')}")
    commands = parser.add_subparsers(dest="command", required=True)
    add_sessions_command(commands)
    serve = commands.add_parser("serve", help="serve an MCP server over Streamable HTTP")
    serve.add_argument(
        "target", nargs="?", default=DEMO_TARGET, help="module:attribute naming the server (default: demo)"
    )
    serve.add_argument("--bind", default="127.0.0.1:8000", help="host:port to listen on")
    serve.add_argument("--path", default=None, help="the MCP endpoint path (default /mcp)")
    serve.add_argument("--idle-timeout", type=float, default=None, help="seconds; 0 disables")
    serve.add_argument(
        "--hibernate-after",
        type=float,
        default=None,
        help="idle seconds before a session drops its transport",
    )
    serve.add_argument(
        "--no-quick-open",
        dest="quick_open",
        action="store_false",
        default=None,
        help="make every session's transport and loop at initialize, not at its first request",
    )
    serve.add_argument(
        "--no-direct-answers",
        dest="direct_answers",
        action="store_false",
        default=None,
        help="serve every request through the SDK transport's handle_request (slower; for comparison)",
    )
    serve.add_argument(
        "--no-gc-tuning",
        dest="gc_tuning",
        action="store_false",
        help="keep the interpreter's garbage-collector settings (see supervisor/_gc_tuning.py)",
    )
    serve.add_argument("--max-sessions", type=int, default=None, help="cap on live sessions; 0 disables")
    serve.add_argument(
        "--drain-grace", type=float, default=None, help="seconds in-flight calls get at shutdown"
    )
    serve.add_argument("--json-response", action="store_true", default=None, help="answer POSTs with JSON")
    serve.add_argument(
        "--auth-tokens-file",
        default=None,
        help="bearer tokens, one 'token principal' per line; without it there is no auth",
    )
    serve.add_argument("--max-sessions-per-principal", type=int, default=None, help="0 disables")
    serve.add_argument("--max-requests-per-session", type=int, default=None, help="0 disables")
    _add_path_flags(serve)
    _add_process_flags(serve)
    return parser


def _add_process_flags(serve: argparse.ArgumentParser) -> None:
    """How the process logs and runs."""
    serve.add_argument(
        "--log-level",
        default="info",
        type=str.lower,
        choices=["debug", "info", "warning", "error", "critical"],
        help="debug, info, warning, error, critical",
    )
    serve.add_argument("--log-format", choices=["text", "json"], default="text", help="text or json lines")
    serve.add_argument(
        "--log-config", default=None, help="a logging dictConfig as JSON (overrides the two above)"
    )
    serve.add_argument(
        "--access-log", action="store_true", default=None, help="a line per request at INFO (else DEBUG)"
    )
    serve.add_argument("--workers", type=int, default=1, help="must be 1 (see the message for more)")


def _add_path_flags(serve: argparse.ArgumentParser) -> None:
    """The paths the supervisor answers besides the MCP endpoint."""
    serve.add_argument(
        "--metrics-path", default=None, help="serve Prometheus metrics here (default /metrics)"
    )
    serve.add_argument("--no-metrics", dest="metrics", action="store_false", help="serve no metrics")
    serve.add_argument(
        "--admin-token-file",
        default=None,
        help="turn the admin API on under /admin, with the token in this file",
    )
    serve.add_argument("--health-path", default=None, help="liveness, outside auth (default /healthz)")
    serve.add_argument("--ready-path", default=None, help="readiness, outside auth (default /readyz)")
    serve.add_argument(
        "--no-health", dest="health", action="store_false", help="serve neither liveness nor readiness"
    )


def apply_options(served: Served, options: argparse.Namespace) -> SupervisorConfig:
    """The target's own config, overridden by what the command line sets explicitly."""
    config = served.config
    changes: dict[str, object] = {}
    if options.path is not None:
        changes["path"] = options.path
    if options.idle_timeout is not None:
        changes["idle_timeout"] = options.idle_timeout or None
    if options.hibernate_after is not None:
        changes["hibernate_after"] = options.hibernate_after or None
    if options.quick_open is not None:
        changes["quick_open"] = options.quick_open
    if options.direct_answers is not None:
        changes["direct_answers"] = options.direct_answers
    if options.max_sessions is not None:
        changes["max_sessions"] = options.max_sessions or None
    if options.drain_grace is not None:
        changes["drain_grace"] = options.drain_grace
    if options.json_response:
        changes["json_response"] = True
    if options.max_sessions_per_principal is not None:
        changes["max_sessions_per_principal"] = options.max_sessions_per_principal or None
    if options.max_requests_per_session is not None:
        changes["max_requests_per_session"] = options.max_requests_per_session or None
    if options.metrics_path is not None:
        changes["metrics_path"] = options.metrics_path
    if not options.metrics:
        changes["metrics_path"] = None
    if options.access_log:
        changes["access_log"] = True
    if options.admin_token_file is not None:
        changes["admin_token"] = read_admin_token(options.admin_token_file)
    if options.health_path is not None:
        changes["health_path"] = options.health_path
    if options.ready_path is not None:
        changes["ready_path"] = options.ready_path
    if not options.health:
        changes["health_path"] = changes["ready_path"] = None
    if options.auth_tokens_file is not None:
        changes["token_verifier"] = StaticTokenVerifier.from_file(options.auth_tokens_file)
    if config.security is None:
        changes["security"] = loopback_security(options.bind)
    return attrs.evolve(config, **changes)  # type: ignore[arg-type]


def banner(served: Served, config: SupervisorConfig) -> str:
    """The main settings, for the start-up line."""
    server = served.server
    name = getattr(server, "name", type(server).__name__)
    auth = "bearer tokens" if config.token_verifier is not None else "the server's own or none"
    parts = [
        f"mcp-supervisor {version('trio-mcp-supervisor')}",
        f"server {name!r}",
        f"sessions up to {config.max_sessions or 'unlimited'}",
        f"idle timeout {config.idle_timeout or 'off'}",
        f"hibernate after {config.hibernate_after or 'off'}",
        f"auth: {auth}",
        f"metrics {config.metrics_path or 'off'}",
        f"admin {'on' if config.admin_token else 'off'}",
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


async def serve(served: Served, config: SupervisorConfig, bind: str, gc_tuning: bool = False) -> bool:
    """Run the supervisor and hypercorn until SIGINT/SIGTERM; drain, then stop.

    A second signal while draining stops at once. Returns whether it had to.
    """
    logger = logging.getLogger("supervisor")
    draining = trio.Event()
    forced = False

    async def stop_signal() -> None:
        await draining.wait()
        if gc_tuning:
            _gc_tuning.freeze_for_exit()

    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with open_supervisor(served.server, config) as supervisor:
            async with trio.open_nursery() as nursery:

                async def watch_signals() -> None:
                    nonlocal forced
                    async for _ in signals:
                        if not draining.is_set():
                            logger.info(
                                "stopping: draining %d session(s), grace %gs; a second Ctrl-C stops at once",
                                supervisor.stats().live,
                                config.drain_grace,
                            )
                            draining.set()
                        else:
                            logger.warning("stopping at once: in-flight calls are cancelled")
                            forced = True
                            nursery.cancel_scope.cancel()

                async def run_server(
                    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
                ) -> None:
                    await serve_supervisor(
                        supervisor,
                        hypercorn_config(bind),
                        shutdown_trigger=stop_signal,
                        task_status=task_status,
                    )
                    nursery.cancel_scope.cancel()

                nursery.start_soon(watch_signals)
                urls: list[str] = await nursery.start(run_server)
                logger.info("%s", banner(served, config))
                for url in urls:
                    logger.info("serving MCP on %s%s", url, config.path)
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
    try:
        configure_logging(options.log_level, options.log_format, options.log_config)
    except ValueError as error:
        fail(str(error))
    if options.workers != 1:
        fail(f"--workers {options.workers} refused. {ONE_PROCESS}")
    problem = bind_problem(options.bind)
    if problem is not None:
        fail(problem)
    logger = logging.getLogger("supervisor")
    try:
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
    if surface.authenticates:
        logger.info("authentication: the server's own (SDK token verifier and AuthSettings)")
    if surface.routes:
        logger.info("the server's own routes: %s", ", ".join(surface.route_paths))
    if (
        config.token_verifier is None
        and not surface.authenticates
        and bind_host(options.bind) not in LOOPBACK_HOSTS
    ):
        logger.warning(
            "serving %s without authentication: anyone who can reach it can open sessions", options.bind
        )
    if options.gc_tuning:
        _gc_tuning.tune_for_serving()
    try:
        forced = trio.run(serve, served, config, options.bind, options.gc_tuning)
    except (OSError, BaseExceptionGroup) as error:
        cannot = listen_problem(error, [options.bind])
        if cannot is None:
            raise
        fail(cannot, EXIT_CANNOT_LISTEN)
    return EXIT_FORCED if forced else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
