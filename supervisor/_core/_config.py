"""Supervisor configuration: one frozen value, validated when it is made."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import attrs
from mcp.server.auth.provider import TokenVerifier
from mcp.server.streamable_http import EventStore
from mcp.server.transport_security import TransportSecuritySettings
from opentelemetry.trace import TracerProvider

from supervisor._cluster import StoreSettings
from supervisor._core._hosts import loopback_security
from supervisor._core._ids import check_node_id, default_node_id

DEFAULT_IDLE_TIMEOUT = 30 * 60.0
DEFAULT_HIBERNATE_AFTER = 30.0
"""Idle seconds before a session hibernates by default: long enough that a client calling now and
then keeps its session awake, short enough that idle sessions cost almost nothing."""
DEFAULT_MAX_SESSIONS = 10_000
DEFAULT_MAX_BODY = 4 * 1024 * 1024
DEFAULT_MAX_REQUESTS = 128
DEFAULT_MAX_INITIALIZE = 16 * 1024
DEFAULT_METRICS_PATH = "/metrics"


def _positive(_: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    """A positive, finite number; None only where the field wraps this in `optional`."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not (math.isfinite(value) and value > 0)
    ):
        raise ValueError(f"{attribute.name} must be a positive, finite number, got {value!r}")


def _whole(_: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if value != int(value):
        raise ValueError(f"{attribute.name} must be a positive, finite number and whole, got {value!r}")


def _not_negative(_: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not (math.isfinite(value) and value >= 0)
    ):
        raise ValueError(f"{attribute.name} must be a finite number >= 0, got {value!r}")


_v = attrs.validators
_POSITIVE = _positive
_NOT_NEGATIVE = _not_negative
_COUNT = _v.and_(_positive, _whole)
_OPTIONAL_POSITIVE: Any = _v.optional(_POSITIVE)
_OPTIONAL_COUNT: Any = _v.optional(_COUNT)
_FLAG = _v.instance_of(bool)


def _mcp_path(_: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if not isinstance(value, str) or not value.startswith("/"):
        raise ValueError(f"{attribute.name} must start with '/', got {value!r}")


def _optional_path(instance: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None:
        _mcp_path(instance, attribute, value)


def _host_checks(_: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, TransportSecuritySettings):
        raise TypeError(
            f"{attribute.name} must be TransportSecuritySettings (the default allows loopback names; "
            f"supervisor.ANY_HOST checks no Host), got {value!r}"
        )


def _scopes(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen(kw_only=True)
class SupervisorConfig:
    """Everything a supervisor needs to know; defaults are those of the SDK's own manager where it has one."""

    idle_timeout: float | None = attrs.field(default=DEFAULT_IDLE_TIMEOUT, validator=_OPTIONAL_POSITIVE)
    """Seconds a session may have nothing in flight before it is closed; None disables."""
    max_sessions: int | None = attrs.field(default=DEFAULT_MAX_SESSIONS, validator=_OPTIONAL_COUNT)
    """Open sessions at most; past it a new session gets 503 with Retry-After. None removes the cap."""
    hibernate_after: float | None = attrs.field(default=DEFAULT_HIBERNATE_AFTER, validator=_OPTIONAL_POSITIVE)
    """Idle seconds after which a session drops its SDK transport and server loop (most of its
    memory) until its next request, which replays the handshake into fresh ones. None: never.
    See docs/architecture.md for what a hibernated session keeps and what it does not (a session
    whose server keeps per-connection state never hibernates)."""
    quick_open: bool = attrs.field(default=True, validator=_FLAG)
    """Open sessions born dormant: after the first session per protocol version, `initialize` is
    answered with the server's own earlier answer and the SDK transport and server loop are made
    on the session's first real request (see supervisor/_http/_quick_open.py). Off with an event store."""
    direct_answers: bool = attrs.field(default=True, validator=_FLAG)
    """Answer POSTed requests (other than initialize) through the server loop's streams instead of
    the SDK transport's per-request path: the same answers, for less work per call (see
    actors/_direct_answers.py and docs/architecture.md). Off with an event store."""
    drain_grace: float = attrs.field(default=10.0, validator=_NOT_NEGATIVE)
    """Seconds in-flight requests get to finish when a session closes gracefully or at shutdown."""
    kill_grace: float = attrs.field(default=1.0, validator=_NOT_NEGATIVE)
    """Extra seconds after the drain grace before leftover request tasks are cancelled."""
    mailbox_size: int = attrs.field(default=64, validator=_COUNT)
    """Requests that may wait in one session's mailbox before senders wait for room."""
    mailbox_timeout: float = attrs.field(default=5.0, validator=_POSITIVE)
    """Seconds a request waits for room in a full mailbox before it gets 503."""
    open_timeout: float = attrs.field(default=30.0, validator=_POSITIVE)
    """Seconds the opening initialize request may take before the new session is discarded."""
    body_timeout: float = attrs.field(default=30.0, validator=_POSITIVE)
    """Seconds a client may take to send a request body (a slow client cannot hold a session slot)."""
    send_timeout: float = attrs.field(default=10.0, validator=_POSITIVE)
    """Bound on each shielded ASGI send, so a client that does not read cannot wedge a close."""
    retry_after: int = attrs.field(default=1, validator=_COUNT)
    """Seconds sent in Retry-After with every 503."""
    json_response: bool = attrs.field(default=False, validator=_FLAG)
    """Answer POSTs with one JSON body instead of an SSE stream."""
    event_store: EventStore | None = None
    """Makes SSE streams resumable (Last-Event-ID), as in the SDK."""
    retry_interval: int | None = None
    """Milliseconds suggested to clients in SSE priming events (SSE polling); needs an event store."""
    security: TransportSecuritySettings = attrs.field(factory=loopback_security, validator=_host_checks)
    """DNS-rebinding protection: the Host/Origin allow-lists, for the MCP endpoint, metrics, health
    and readiness. Loopback names only by default; `supervisor.ANY_HOST` checks neither."""
    max_request_body_size: int = attrs.field(default=DEFAULT_MAX_BODY, validator=_COUNT)
    """Bytes; a larger body gets 413 before it is parsed."""
    max_initialize_bytes: int = attrs.field(default=DEFAULT_MAX_INITIALIZE, validator=_COUNT)
    """Bytes of `initialize` params (as compact JSON) a client may send; more gets 400 with -32602.
    A session keeps part of them (its record) for its whole life, in memory and in the store."""
    path: str = attrs.field(default="/mcp", validator=_mcp_path)
    """The MCP endpoint's path."""
    health_path: str | None = attrs.field(default="/healthz", validator=_optional_path)
    """Liveness (200 while the process answers), outside bearer auth; None serves none."""
    ready_path: str | None = attrs.field(default="/readyz", validator=_optional_path)
    """Readiness (503 while draining or at the session cap, JSON detail), outside bearer auth; None: none."""
    metrics_path: str | None = attrs.field(default=DEFAULT_METRICS_PATH, validator=_optional_path)
    """Where GET serves Prometheus metrics; None serves none. Behind the MCP endpoint's auth when on."""
    access_log: bool = attrs.field(default=False, validator=_FLAG)
    """A line per request at INFO (method, status, duration); off, they are at DEBUG."""
    admin_token: str | None = attrs.field(default=None, repr=False)
    """The admin API's bearer token (docs/operations.md); None: no admin API. Never shown or logged."""
    admin_separate: bool = attrs.field(default=False, validator=_FLAG)
    """Serve the admin API only on its own listener (`admin_app`, `--admin-bind`), not beside MCP."""
    max_sessions_per_principal: int | None = attrs.field(default=None, validator=_OPTIONAL_COUNT)
    """Live sessions one principal may hold; beyond it 503 with Retry-After. None: only the global cap."""
    max_requests_per_session: int | None = attrs.field(
        default=DEFAULT_MAX_REQUESTS, validator=_OPTIONAL_COUNT
    )
    """Requests in flight or queued on one session (GET streams aside); beyond it 429 with Retry-After."""
    token_verifier: TokenVerifier | None = None
    """Bearer authentication through the SDK's `TokenVerifier`; None serves without auth."""
    required_scopes: tuple[str, ...] = attrs.field(default=(), converter=_scopes)
    """Scopes every bearer token must carry (403 otherwise)."""
    node_id: str = attrs.field(factory=default_node_id, converter=check_node_id)
    """This node's name: the first part of every session id it opens (`<node-id>.<hex>`)."""
    store: StoreSettings | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.instance_of(StoreSettings))
    )
    """A session store (Redis) shared with other nodes: sessions outlive the process (docs/scale-out.md)."""
    tracer_provider: TracerProvider | None = None
    """OpenTelemetry spans for each HTTP request and the supervisor's work (open, wake, hibernation,
    close, store calls), from this provider; None: none of ours (the SDK's own spans go to the
    global provider, as always). `--otel` makes one (docs/operations.md)."""

    def __attrs_post_init__(self) -> None:
        taken: dict[str, str] = {self.path: "path"}
        for name in ("metrics_path", "health_path", "ready_path"):
            value = getattr(self, name)
            if value is None:
                continue
            if value in taken:
                raise ValueError(
                    f"{taken[value]} and {name} are both {value!r}: each needs a path of its own"
                )
            taken[value] = name

    @property
    def hibernation_delay(self) -> float | None:
        """`hibernate_after`, no later than `evict_after` with a store: eviction is from dormancy."""
        evict = self.store.evict_after if self.store is not None else None
        if evict is None:
            return self.hibernate_after
        return evict if self.hibernate_after is None else min(self.hibernate_after, evict)

    @property
    def own_paths(self) -> tuple[str, ...]:
        """The paths the supervisor answers besides the MCP endpoint (metrics, health, readiness)."""
        admin = "/admin" if self.admin_token and not self.admin_separate else None
        paths = (self.metrics_path, self.health_path, self.ready_path, admin)
        return tuple(path for path in paths if path is not None)
