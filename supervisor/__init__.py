"""trio-mcp-supervisor: every MCP session a trio actor, owned by one supervisor nursery.

This is the public face; every module behind it is private (`_name`) and may change. Test helpers
are in `supervisor.testing`.
"""

from actors._reasons import CloseReason, CloseStep, RequestOutcome
from actors._record import Principal, SessionRecord
from actors._state import ActorState
from actors._statistics import ActorStatistics
from supervisor._admission import OpenRefusal
from supervisor._auth import StaticTokenVerifier, TokensFileError
from supervisor._cluster_terms import ClusterStats
from supervisor._config import SupervisorConfig
from supervisor._core import SessionSupervisor
from supervisor._gc_tuning import tune_for_serving
from supervisor._hosts import ANY_HOST, loopback_security
from supervisor._loading import Served, TargetError, load_target
from supervisor._open import admin_app, open_supervisor, supervisor_app
from supervisor._sdk_surface import UnsupportedServerSetting
from supervisor._serving import hypercorn_config, serve_supervisor, wait_for_signal
from supervisor._snapshots import SessionInfo, SupervisorStats
from supervisor._store_settings import Fencing, StoreSettings

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
