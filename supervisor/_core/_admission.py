"""Whether a new (or restored) session may start, and the settings every actor runs with.

The caps are checked here: the global cap and the per-principal cap on this node (synchronously,
so nothing runs between the check and the registration), and the per-principal cap over the
cluster (through the store, before that).
"""

from __future__ import annotations

import enum
import logging
from typing import Any

import attrs
from mcp.server.lowlevel.server import Server

from actors import ActorHooks, ActorSettings, AsyncioBridge, FaultSink, Principal, TransportOptions, tracer_of
from supervisor._cluster import Cluster, or_none
from supervisor._core._config import SupervisorConfig
from supervisor._core._registry import Registry

logger = logging.getLogger("supervisor._core")


class OpenRefusal(enum.Enum):
    """Why a new session was not opened (each answered 503 with Retry-After)."""

    AT_CAPACITY = "Too many open sessions"
    PRINCIPAL_AT_CAPACITY = "Too many open sessions for this principal"
    SHUTTING_DOWN = "Server is shutting down"
    STORE_UNAVAILABLE = "Session store unavailable; retry"


@attrs.define(eq=False)
class Caps:
    """The session caps of one supervisor, read against its registry (and its cluster's store)."""

    config: SupervisorConfig
    registry: Registry
    cluster: Cluster | None

    async def cluster_refusal(self, principal: Principal | None) -> OpenRefusal | None:
        """The per-principal cap over the whole cluster (none while the store does not answer)."""
        cap = self.config.max_sessions_per_principal
        if self.cluster is None or principal is None or cap is None:
            return None
        held = await or_none(self.cluster.store.indexes.count_of(principal))
        if held is not None and held >= cap:
            logger.warning(
                "refusing a new session: principal %s holds %d in the cluster", principal.client_id, held
            )
            return OpenRefusal.PRINCIPAL_AT_CAPACITY
        return None

    def refusal(self, principal: Principal | None, *, accepting: bool) -> OpenRefusal | None:
        """The caps on this node, or shutting down (no checkpoint: registration follows at once)."""
        if not accepting:
            return OpenRefusal.SHUTTING_DOWN
        live = len(self.registry.live)
        cap = self.config.max_sessions
        if cap is not None and live >= cap:
            logger.warning("refusing a new session: %d sessions are open", live)
            return OpenRefusal.AT_CAPACITY
        per_principal = self.config.max_sessions_per_principal
        if (
            principal is not None
            and per_principal is not None
            and self.registry.count_of(principal) >= per_principal
        ):
            logger.warning(
                "refusing a new session: principal %s holds %d", principal.client_id, per_principal
            )
            return OpenRefusal.PRINCIPAL_AT_CAPACITY
        return None


def actor_settings(
    config: SupervisorConfig,
    server: Server[Any],
    lifespan_state: Any,
    hooks: ActorHooks,
    faults: FaultSink | None,
    *,
    direct_answers: bool,
    asyncio: AsyncioBridge | None,
) -> ActorSettings:
    """What every actor of a supervisor shares, from its config."""
    return ActorSettings(
        server=server,
        lifespan_state=lifespan_state,
        hooks=hooks,
        transport=TransportOptions(
            json_response=config.json_response,
            event_store=config.event_store,
            retry_interval=config.retry_interval,
        ),
        idle_timeout=config.idle_timeout,
        mailbox_size=config.mailbox_size,
        kill_grace=config.kill_grace,
        hibernate_after=config.hibernation_delay,
        evict_after=config.store.evict_after if config.store is not None else None,
        direct_answers=direct_answers,
        faults=faults,
        asyncio=asyncio,
        tracer=tracer_of(config.tracer_provider),
    )
