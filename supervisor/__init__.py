"""trio-mcp-supervisor: every MCP session a trio actor, owned by one supervisor nursery.

This is the public face; every module behind it is private (`_name`) and may change. Test helpers
are in `supervisor.testing`.
"""

from actors import (
    ActorState,
    ActorStatistics,
    CloseReason,
    CloseStep,
    Principal,
    RequestOutcome,
    SessionRecord,
    asyncio_tool,
)
from supervisor._cluster import ClusterStats, Fencing, RedisMode, StoreSettings
from supervisor._core import (
    ANY_HOST,
    OpenRefusal,
    Served,
    SessionInfo,
    SessionSupervisor,
    SupervisorConfig,
    SupervisorStats,
    TargetError,
    UnsupportedServerSetting,
    load_target,
    loopback_security,
    tune_for_serving,
)
from supervisor._http import StaticTokenVerifier, TokensFileError
from supervisor._serve import (
    admin_app,
    hypercorn_config,
    open_supervisor,
    serve_supervisor,
    supervisor_app,
    wait_for_signal,
)

__all__ = [
    "ANY_HOST",
    "ActorState",
    "ActorStatistics",
    "CloseReason",
    "CloseStep",
    "ClusterStats",
    "Fencing",
    "OpenRefusal",
    "Principal",
    "RedisMode",
    "RequestOutcome",
    "Served",
    "SessionInfo",
    "SessionRecord",
    "SessionSupervisor",
    "StaticTokenVerifier",
    "StoreSettings",
    "SupervisorConfig",
    "SupervisorStats",
    "TargetError",
    "TokensFileError",
    "UnsupportedServerSetting",
    "admin_app",
    "asyncio_tool",
    "hypercorn_config",
    "load_target",
    "loopback_security",
    "open_supervisor",
    "serve_supervisor",
    "supervisor_app",
    "tune_for_serving",
    "wait_for_signal",
]


def _public_face() -> None:
    """Name `supervisor` as the module of every public name (as trio does): what users import
    is what reprs, docs and type checkers show, not the private module behind it."""
    for name in __all__:
        value = globals()[name]
        module = getattr(value, "__module__", None) or ""
        if isinstance(value, type | type(_public_face)) and module.startswith(("supervisor._", "actors._")):
            value.__module__ = "supervisor"


_public_face()
