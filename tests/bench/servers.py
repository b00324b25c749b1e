"""The servers the benchmarks compare and the settings of a run: one definition for every bench tool.

Each server is a `ServerSpec`: a key (`ours-json`, `sdk-sse`, ...), how to start it on an address,
and the checkout it runs from (`as_before`: ours from another checkout, in the same batch).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs

from supervisor._core._config import DEFAULT_HIBERNATE_AFTER

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
SERVER_CPU = "0"


@attrs.frozen
class Settings:
    mode: str
    rounds: int
    open_count: int
    call_warmup: float
    call_duration: float
    concurrencies: tuple[int, ...]
    idle_sessions: int
    few_sessions: int
    latency_calls: int
    concurrency: int
    shutdown_timeout: float


QUICK = Settings(
    mode="quick",
    rounds=2,
    open_count=150,
    call_warmup=0.3,
    call_duration=1.0,
    concurrencies=(1, 16, 64),
    idle_sessions=600,
    few_sessions=10,
    latency_calls=40,
    concurrency=16,
    shutdown_timeout=30.0,
)
FULL = Settings(
    mode="full",
    rounds=3,
    open_count=600,
    call_warmup=1.0,
    call_duration=3.0,
    concurrencies=(1, 16, 64),
    idle_sessions=10_000,
    few_sessions=10,
    latency_calls=100,
    concurrency=16,
    shutdown_timeout=60.0,
)


@attrs.frozen
class ServerSpec:
    key: str
    label: str
    family: str  # "ours", "sdk" or "floor"
    mode: str  # "sse", "json" or "-"
    argv: Callable[[str], list[str]]
    hibernate_after: float | None = None
    """Seconds after which its idle sessions hibernate: the idle phases wait that long."""
    root: Path = ROOT
    """The source tree it runs from (another checkout measures a before/after in one batch)."""

    @property
    def check_echo(self) -> bool:
        return self.family != "floor"


PYTHON = sys.executable
HIBERNATE_AFTER = 1.0
OURS_FLAGS = ["--idle-timeout", "0", "--max-sessions", "0", "--max-requests-per-session", "0"]


def ours(
    key: str,
    label: str,
    mode: str,
    hibernate_after: float | None = None,
    *,
    default_hibernation: bool = False,
) -> ServerSpec:
    """Our CLI on the bench server: SSE or JSON answers; hibernating after `hibernate_after`, or
    after the default delay (no flag)."""
    extra = ["--json-response"] if mode == "json" else []
    if hibernate_after is not None:
        extra += ["--hibernate-after", str(hibernate_after)]
    elif default_hibernation:
        hibernate_after = DEFAULT_HIBERNATE_AFTER
    return ServerSpec(
        key,
        label,
        "ours",
        mode,
        lambda bind: [
            PYTHON,
            *("-m", "supervisor", "serve", "tests.bench.bench_server:server", "--bind", bind),
            *OURS_FLAGS,
            *extra,
            *("--log-level", os.environ.get("BENCH_LOG_LEVEL", "warning")),
        ],
        hibernate_after,
    )


SERVERS = (
    # Default flags: sessions hibernate after DEFAULT_HIBERNATE_AFTER idle seconds, which the idle
    # phases wait out.
    ours("ours-sse", "A ours SSE", "sse", default_hibernation=True),
    ours("ours-json", "B ours JSON", "json", default_hibernation=True),
    ours("ours-sse-hib", "F ours SSE, hibernate 1 s", "sse", HIBERNATE_AFTER),
    ours("ours-json-hib", "G ours JSON, hibernate 1 s", "json", HIBERNATE_AFTER),
    ServerSpec(
        "sdk-sse",
        "C SDK SSE",
        "sdk",
        "sse",
        lambda bind: [PYTHON, "-m", "tests.bench.sdk_app", "--bind", bind],
    ),
    ServerSpec(
        "sdk-json",
        "D SDK JSON",
        "sdk",
        "json",
        lambda bind: [PYTHON, "-m", "tests.bench.sdk_app", "--bind", bind, "--json-response"],
    ),
    ServerSpec(
        "floor", "E floor", "floor", "-", lambda bind: [PYTHON, "-m", "tests.bench.floor_app", "--bind", bind]
    ),
)


def as_before(spec: ServerSpec, before: Path) -> ServerSpec:
    """`spec` as run from the checkout `before` (`KEY@before`): a change measured before and after
    in one batch, so a drift of the machine falls on both."""
    return attrs.evolve(spec, key=f"{spec.key}@before", label=f"{spec.label}, before", root=before.resolve())


def with_before(before: Path) -> tuple[ServerSpec, ...]:
    """Every server, and each of ours once more as run from the checkout `before`."""
    return (*SERVERS, *(as_before(spec, before) for spec in SERVERS if spec.family == "ours"))


def chosen(keys: Sequence[str], before: Path | None, flags: str = "") -> list[ServerSpec]:
    """The servers by key; with `before`, each of ours also as run from that checkout (`KEY@before`);
    with `flags`, each of ours also run with those flags added (`KEY+FLAGS`)."""
    specs = [spec for key in keys for spec in SERVERS if spec.key == key]
    ours = [spec for spec in specs if spec.family == "ours"]
    if flags:
        specs += [with_flags(spec, flags.split()) for spec in ours]
    if before is not None:
        specs += [as_before(spec, before) for spec in ours]
    return specs


def with_flags(spec: ServerSpec, flags: list[str]) -> ServerSpec:
    """`spec` with `flags` after its own (a later flag wins): a setting's cost measured in turns."""
    key = f"{spec.key}+{' '.join(flags)}"
    return attrs.evolve(spec, key=key, argv=lambda bind: [*spec.argv(bind), *flags])
