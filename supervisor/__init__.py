"""trio-mcp-supervisor: every MCP session a trio actor, owned by one supervisor nursery."""

from supervisor.config import SupervisorConfig
from supervisor.core import OpenRefusal, SessionSupervisor, open_supervisor
from supervisor.loading import Served
from supervisor.snapshots import SessionInfo, SupervisorStats

__all__ = [
    "OpenRefusal",
    "Served",
    "SessionInfo",
    "SessionSupervisor",
    "SupervisorConfig",
    "SupervisorStats",
    "open_supervisor",
]
