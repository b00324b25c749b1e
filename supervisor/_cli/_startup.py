"""Start-up problems as one line on stderr and a distinct exit code, never a traceback.

| exit code | meaning |
|---|---|
| 0 | served, then stopped by SIGINT/SIGTERM after draining |
| 1 | a second SIGINT/SIGTERM stopped it at once, without draining |
| 2 | a bad flag, target or configuration: nothing was started |
| 3 | it could not listen (address in use, no permission, an address this machine does not have) |
"""

from __future__ import annotations

import argparse
import errno
import re
import socket
import sys
from collections.abc import Sequence
from typing import NoReturn

EXIT_OK = 0
EXIT_FORCED = 1
EXIT_USAGE = 2
EXIT_CANNOT_LISTEN = 3

FLAG_OF = {
    "idle_timeout": ("--idle-timeout", "0 disables it"),
    "hibernate_after": ("--hibernate-after", "0 never hibernates"),
    "max_sessions": ("--max-sessions", "0 removes the cap"),
    "drain_grace": ("--drain-grace", "0 cancels in-flight calls at once"),
    "max_sessions_per_principal": ("--max-sessions-per-principal", "0 removes the cap"),
    "max_requests_per_session": ("--max-requests-per-session", "0 removes the cap"),
    "max_initialize_bytes": ("--max-initialize-bytes", None),
    "path": ("--path", None),
    "metrics_path": ("--metrics-path", None),
    "health_path": ("--health-path", None),
    "ready_path": ("--ready-path", None),
    "redis_url": ("--redis-url", None),
    "prefix": ("--redis-prefix", None),
    "lease_ttl": ("--lease-ttl", None),
    "budget": ("--store-budget", None),
    "move_timeout": ("--move-timeout", None),
    "evict_after": ("--evict-after", "0 never evicts"),
    "drain_delay": ("--drain-delay", None),
}
"""SupervisorConfig fields set by flags: the flag's name, and what 0 means for it."""


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line naming the `--help` of the command the user
    gave (`mcp-supervisor sessions --help`, not `serve`'s), exit code 2."""

    def error(self, message: str) -> NoReturn:
        fail(f"{message} (see {self.prog} --help)")

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        options, extra = super().parse_known_args(args, namespace)
        command = getattr(options, "command", None)
        if extra and command is not None and self.prog == PROG:
            # Flags the command does not know: its own --help lists the ones it does.
            fail(f"unrecognized arguments: {' '.join(extra)} (see {PROG} {command} --help)")
        return options, extra


PROG = "mcp-supervisor"


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    print(f"mcp-supervisor: {message}", file=sys.stderr)
    raise SystemExit(code)


def bind_problem(bind: str) -> str | None:
    """What is wrong with a `--bind` value, if anything (hypercorn's forms: HOST:PORT, unix:PATH, fd://N)."""
    if bind.startswith(("unix:", "fd://")):
        return None
    host, separator, port = bind.rpartition(":")
    if not separator or not host:
        return f"--bind {bind!r}: expected HOST:PORT, e.g. 127.0.0.1:8000 (or unix:PATH)"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        return f"--bind {bind!r}: the port must be a number from 0 to 65535 (0 picks a free one)"
    return None


def flag_message(message: str) -> str:
    """A SupervisorConfig error in the words of the command line: the flag, and what 0 means."""
    clash = re.match(r"(\w+) and (\w+) are both ", message)
    if clash is not None and all(name in FLAG_OF for name in clash.groups()):
        first, second = (FLAG_OF[name][0] for name in clash.groups())
        return f"{first} and {second}{message[clash.end(2) :]}"
    for field, (flag, zero) in FLAG_OF.items():
        if message.startswith(field + " "):
            rest = message[len(field) :]
            return f"{flag}{rest}" + (f" ({zero})" if zero else "")
    return message


def listen_problem(error: BaseException, binds: list[str]) -> str | None:
    """The one line for an OSError (perhaps inside exception groups) from binding the listener."""
    found = _first_os_error(error)
    if found is None:
        return None
    where = ", ".join(binds)
    if found.errno == errno.EADDRINUSE:
        busy = [bind for bind in binds if _in_use(bind)] or binds
        return f"cannot listen on {', '.join(busy)}: the address is already in use"
    if found.errno in (errno.EACCES, errno.EPERM):
        return f"cannot listen on {where}: permission denied"
    if found.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {where}: this machine has no such address"
    return f"cannot listen on {where}: {found.strerror or found}"


def _first_os_error(error: BaseException) -> OSError | None:
    if isinstance(error, OSError):
        return error
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            found = _first_os_error(inner)
            if found is not None:
                return found
    return None


def _in_use(bind: str) -> bool:
    """Whether a HOST:PORT bind's address is taken now (tried the way a listener binds it)."""
    if bind.startswith(("unix:", "fd://")):
        return False
    host, _, port = bind.rpartition(":")
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, int(port)))
        except OSError as error:
            return error.errno == errno.EADDRINUSE
        except ValueError:
            return False
    return False
