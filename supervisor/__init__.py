"""trio-mcp-supervisor: every MCP session a trio actor, owned by one supervisor nursery."""

from supervisor._config import SupervisorConfig
from supervisor._core import OpenRefusal, SessionSupervisor, open_supervisor
from supervisor._loading import Served
from supervisor._snapshots import SessionInfo, SupervisorStats

__all__ = [
    "OpenRefusal",
    "Served",
    "SessionInfo",
    "SessionSupervisor",
    "SupervisorConfig",
    "SupervisorStats",
    "open_supervisor",
]
