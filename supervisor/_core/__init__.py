"""The supervisor core: the nursery that owns every session actor, and what it is configured by.

It knows sessions, not HTTP: `SessionSupervisor` admits, routes, closes and counts actors;
`SupervisorConfig` says how; the snapshots, the tally and the metrics say what happened. The HTTP
layer above imports from here only.
"""

from supervisor._core._admission import OpenRefusal
from supervisor._core._config import SupervisorConfig
from supervisor._core._gc_tuning import freeze_for_exit, tune_for_serving
from supervisor._core._hosts import (
    ANY_HOST,
    LOOPBACK_ALLOWED_HOSTS,
    LOOPBACK_ALLOWED_ORIGINS,
    LOOPBACK_HOSTS,
    all_loopback,
    bind_host,
    is_default,
    loopback_security,
    public_bind_refusal,
)
from supervisor._core._ids import check_node_id
from supervisor._core._loading import Served, TargetError, load_target, resolve_server
from supervisor._core._logs import configure_logging
from supervisor._core._membership import Membership
from supervisor._core._metrics import CONTENT_TYPE, metrics_registry, render
from supervisor._core._sdk_surface import (
    SdkSurface,
    UnsupportedServerSetting,
    metrics_beside,
    sdk_surface,
    surface_for,
)
from supervisor._core._snapshots import SessionInfo, SupervisorStats, stats_document
from supervisor._core._stateless import StatelessRequests
from supervisor._core._supervisor import SessionSupervisor
from supervisor._core._tally import method_label

__all__ = [
    "ANY_HOST",
    "CONTENT_TYPE",
    "LOOPBACK_ALLOWED_HOSTS",
    "LOOPBACK_ALLOWED_ORIGINS",
    "LOOPBACK_HOSTS",
    "Membership",
    "OpenRefusal",
    "SdkSurface",
    "Served",
    "SessionInfo",
    "SessionSupervisor",
    "StatelessRequests",
    "SupervisorConfig",
    "SupervisorStats",
    "TargetError",
    "UnsupportedServerSetting",
    "all_loopback",
    "bind_host",
    "check_node_id",
    "configure_logging",
    "freeze_for_exit",
    "is_default",
    "load_target",
    "loopback_security",
    "method_label",
    "metrics_beside",
    "metrics_registry",
    "public_bind_refusal",
    "render",
    "resolve_server",
    "sdk_surface",
    "stats_document",
    "surface_for",
    "tune_for_serving",
]
