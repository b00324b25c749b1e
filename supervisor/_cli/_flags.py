"""The command line of `mcp-supervisor serve`: its flags, their environment variables, the config.

Every flag can also come from the environment as `MCP_SUPERVISOR_<FLAG>` (`--idle-timeout` is
`MCP_SUPERVISOR_IDLE_TIMEOUT`; a switch takes 1/true/yes/on; `--bind` takes a comma-separated
list); a flag on the command line wins.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping
from importlib.metadata import version
from typing import Any

import attrs
from mcp.server.transport_security import TransportSecuritySettings

from supervisor._cli._cluster_flags import add_cluster_flags, store_settings
from supervisor._cli._haproxy import add_haproxy_command
from supervisor._cli._operator import add_sessions_command
from supervisor._cli._otel import otel_provider
from supervisor._cli._startup import PROG, OneLineParser, fail
from supervisor._core import Served, SupervisorConfig, is_default
from supervisor._http import StaticTokenVerifier, open_to_others, read_admin_token, security_for

DEMO_TARGET = "supervisor.demo:server"
DEFAULT_BIND = "127.0.0.1:8000"
ENVIRONMENT_PREFIX = "MCP_SUPERVISOR_"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def build_parser() -> argparse.ArgumentParser:
    """The command-line grammar."""
    parser = OneLineParser(prog=PROG, description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('trio-mcp-supervisor')}")
    commands = parser.add_subparsers(dest="command", required=True)
    add_sessions_command(commands)
    add_haproxy_command(commands)
    serve = commands.add_parser("serve", help="serve an MCP server over Streamable HTTP")
    serve.add_argument(
        "target", nargs="?", default=DEMO_TARGET, help="module:attribute naming the server (default: demo)"
    )
    serve.add_argument(
        "-b",
        "--bind",
        action="append",
        default=None,
        help="host:port to listen on; repeat for more (127.0.0.1:8000)",
    )
    serve.add_argument("--path", default=None, help="the MCP endpoint path (default /mcp)")
    _add_session_flags(serve)
    serve.add_argument(
        "--no-gc-tuning",
        dest="gc_tuning",
        action="store_false",
        help="keep the interpreter's garbage-collector settings (see supervisor/_core/_gc_tuning.py)",
    )
    serve.add_argument(
        "--max-sessions", type=int, default=None, help="cap on live sessions; 0 disables (default 10000)"
    )
    serve.add_argument(
        "--drain-grace", type=float, default=None, help="seconds in-flight calls get at shutdown (default 10)"
    )
    serve.add_argument("--json-response", action="store_true", default=None, help="answer POSTs with JSON")
    serve.add_argument(
        "--auth-tokens-file",
        default=None,
        help="bearer tokens, one 'token principal' per line; without it there is no auth",
    )
    serve.add_argument(
        "--max-sessions-per-principal", type=int, default=None, help="0 disables (default: no cap)"
    )
    serve.add_argument(
        "--max-requests-per-session",
        type=int,
        default=None,
        help="in flight or queued; 0 disables (default 128)",
    )
    serve.add_argument(
        "--max-initialize-bytes",
        type=int,
        default=None,
        help="bytes of initialize params a client may send (default 16384)",
    )
    _add_path_flags(serve)
    _add_process_flags(serve)
    _add_proxy_flags(serve)
    add_cluster_flags(serve)
    environment_defaults(serve, os.environ)
    return parser


def _add_session_flags(serve: argparse.ArgumentParser) -> None:
    """How sessions live: idle timeout, hibernation, quick open, direct answers."""
    serve.add_argument("--idle-timeout", type=float, default=None, help="seconds; 0 disables (default 1800)")
    serve.add_argument(
        "--hibernate-after",
        type=float,
        default=None,
        help="idle seconds before a session drops its transport until needed; 0: never (default 30)",
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


def _add_proxy_flags(serve: argparse.ArgumentParser) -> None:
    """Serving behind a reverse proxy, and TLS."""
    serve.add_argument(
        "--allowed-hosts", default=None, help="Host values allowed (comma-separated; +a,b extends)"
    )
    serve.add_argument("--allowed-origins", default=None, help="Origin values allowed (as --allowed-hosts)")
    serve.add_argument(
        "--allow-any-host",
        action="store_true",
        default=None,
        help="check neither Host nor Origin (needed for a public bind without the two above)",
    )
    serve.add_argument("--root-path", default=None, help="serve under this path prefix, e.g. /api")
    serve.add_argument(
        "--proxy-headers",
        action="store_true",
        default=None,
        help="trust X-Forwarded-* from --forwarded-allow-ips",
    )
    serve.add_argument(
        "--forwarded-allow-ips",
        default="127.0.0.1,::1",
        help="proxies trusted, comma-separated, or * (%(default)s)",
    )
    serve.add_argument("--certfile", default=None, help="TLS certificate (PEM); with --keyfile")
    serve.add_argument("--keyfile", default=None, help="TLS private key (PEM); with --certfile")


def _add_process_flags(serve: argparse.ArgumentParser) -> None:
    """How the process logs and runs."""
    serve.add_argument(
        "--log-level",
        default="info",
        type=str.lower,
        choices=["debug", "info", "warning", "error", "critical"],
        help="debug, info, warning, error, critical (default info)",
    )
    serve.add_argument("--log-format", choices=["text", "json"], default="text", help="text or json lines")
    serve.add_argument(
        "--log-config", default=None, help="a logging dictConfig as JSON (overrides the two above)"
    )
    serve.add_argument(
        "--access-log", action="store_true", default=None, help="a line per request at INFO (else DEBUG)"
    )
    serve.add_argument(
        "--otel",
        action="store_true",
        help="OpenTelemetry traces, set up by OTEL_* variables (otel extra)",
    )
    serve.add_argument("--workers", type=int, default=1, help="must be 1 (see the message for more)")


def _add_path_flags(serve: argparse.ArgumentParser) -> None:
    """The paths the supervisor answers besides the MCP endpoint."""
    serve.add_argument(
        "--metrics-path", default=None, help="serve Prometheus metrics here (default /metrics)"
    )
    serve.add_argument("--no-metrics", dest="metrics", action="store_false", help="serve no metrics")
    serve.add_argument("--admin-bind", default=None, help="serve the admin API on this host:port only")
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


def environment_defaults(serve: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
    """Take each flag's default from `MCP_SUPERVISOR_<FLAG>` when it is set."""
    defaults: dict[str, Any] = {}
    for action in serve._actions:
        if not action.option_strings or action.dest in ("help", "target"):
            continue
        flag = max(action.option_strings, key=len)
        name = ENVIRONMENT_PREFIX + flag.lstrip("-").replace("-", "_").upper()
        raw = environ.get(name)
        if raw is not None:
            defaults[action.dest] = _from_environment(action, name, raw)
    serve.set_defaults(**defaults)


def _from_environment(action: argparse.Action, name: str, raw: str) -> Any:
    if action.nargs == 0:
        if raw.lower() not in _TRUE | _FALSE:
            fail(f"{name}={raw[:40]!r}: give 1/true/yes/on or 0/false/no/off")
        return action.const if raw.lower() in _TRUE else action.default
    if isinstance(action, argparse._AppendAction):
        return [part.strip() for part in raw.split(",") if part.strip()]
    convert: Callable[[str], Any] = action.type if callable(action.type) else str
    try:
        value = convert(raw)
    except ValueError:
        fail(f"{name}={raw[:40]!r} is not a valid value for {max(action.option_strings, key=len)}")
    if action.choices is not None and value not in action.choices:
        fail(f"{name}={raw[:40]!r}: choose from {', '.join(map(str, action.choices))}")
    return value


def secret_file_warnings(options: argparse.Namespace, config: SupervisorConfig) -> list[str]:
    """What the files of secrets given invite: logged once the configuration is accepted."""
    verifier = config.token_verifier
    lines = list(verifier.warnings) if isinstance(verifier, StaticTokenVerifier) else []
    for flag, path in (
        ("--admin-token-file", options.admin_token_file),
        ("--cluster-secret-file", options.cluster_secret_file),
    ):
        line = open_to_others(path, flag) if path is not None else None
        if line is not None:
            lines.append(line)
    return lines


def binds_of(options: argparse.Namespace) -> list[str]:
    return list(options.bind or [DEFAULT_BIND])


def _zero_is_none(value: float) -> float | None:
    return value or None


_SIMPLE: tuple[tuple[str, str, Callable[[Any], Any]], ...] = (
    ("path", "path", str),
    ("idle_timeout", "idle_timeout", _zero_is_none),
    ("hibernate_after", "hibernate_after", _zero_is_none),
    ("quick_open", "quick_open", bool),
    ("direct_answers", "direct_answers", bool),
    ("max_sessions", "max_sessions", _zero_is_none),
    ("drain_grace", "drain_grace", float),
    ("json_response", "json_response", bool),
    ("max_sessions_per_principal", "max_sessions_per_principal", _zero_is_none),
    ("max_requests_per_session", "max_requests_per_session", _zero_is_none),
    ("max_initialize_bytes", "max_initialize_bytes", int),
    ("metrics_path", "metrics_path", str),
    ("access_log", "access_log", bool),
    ("health_path", "health_path", str),
    ("ready_path", "ready_path", str),
)
"""(option, config field, conversion) for the flags that set one field when given."""


def apply_options(served: Served, options: argparse.Namespace) -> SupervisorConfig:
    """The target's own config, overridden by what the command line sets explicitly."""
    config = served.config
    changes: dict[str, object] = {
        field: convert(getattr(options, option))
        for option, field, convert in _SIMPLE
        if getattr(options, option) is not None
    }
    if not options.metrics:
        changes["metrics_path"] = None
    if not options.health:
        changes["health_path"] = changes["ready_path"] = None
    if options.admin_token_file is not None:
        changes["admin_token"] = read_admin_token(options.admin_token_file)
    if options.admin_bind is not None:
        changes["admin_separate"] = True
    if options.auth_tokens_file is not None:
        changes["token_verifier"] = StaticTokenVerifier.from_file(options.auth_tokens_file)
    if options.node_id is not None:
        changes["node_id"] = options.node_id
    if options.otel:
        changes["tracer_provider"] = otel_provider()
    drain_grace = options.drain_grace if options.drain_grace is not None else config.drain_grace
    store = store_settings(options, drain_grace)
    if store is not None:
        changes["store"] = store
    changes["security"] = _security(config, options)
    return attrs.evolve(config, **changes)  # type: ignore[arg-type]


def _security(config: SupervisorConfig, options: argparse.Namespace) -> TransportSecuritySettings:
    """The target's own Host checks, unless it left the default or the flags say: then the flags
    and binds decide (a public bind must say which names it serves, or that it checks none)."""
    given = options.allowed_hosts is not None or options.allowed_origins is not None or options.allow_any_host
    if not is_default(config.security) and not given:
        return config.security
    return security_for(
        binds_of(options),
        options.allowed_hosts,
        options.allowed_origins,
        allow_any_host=bool(options.allow_any_host),
    )
