"""The supervisor: one nursery that owns every session actor, and the operations on them.

It knows sessions, not HTTP: the endpoint and the app around it are built above it
(`supervisor/_serve/_open.py`) and talk to it through the methods under "used by the endpoint".
"""

from __future__ import annotations

import contextvars
import functools
import logging
from collections.abc import Mapping
from typing import Any

import trio
from mcp.server.lowlevel.server import Server
from starlette.types import ASGIApp

from actors import (
    CLEANUP_TIMEOUT,
    CLOSE_POLICY,
    Admission,
    AsyncioBridge,
    CloseReason,
    FaultSink,
    OwnedActor,
    Principal,
    RequestOutcome,
    Residence,
    ServeRequest,
    SessionActor,
    SessionLog,
    SessionRecord,
    new_record,
)
from supervisor._cluster import Cluster
from supervisor._core._admission import Caps, OpenRefusal, actor_settings
from supervisor._core._config import SupervisorConfig
from supervisor._core._drain_report import DrainReport
from supervisor._core._ids import mint_session_id
from supervisor._core._ledger import Ledger
from supervisor._core._notices import Notices
from supervisor._core._registry import Registry
from supervisor._core._sdk_surface import SdkSurface
from supervisor._core._snapshots import SessionInfo, SupervisorStats, count_states, session_info
from supervisor._core._stateless import StatelessRequests
from supervisor._core._tally import Tally

logger = logging.getLogger("supervisor._core")


class SessionSupervisor:
    """Creates, messages, idle-times-out, closes and kills session actors.

    Create it with `open_supervisor`; it is an object you pass around, never a global.
    """

    def __init__(
        self,
        server: Server[Any],
        config: SupervisorConfig,
        *,
        nursery: trio.Nursery,
        lifespan_state: Any,
        stateless: StatelessRequests,
        faults: FaultSink | None,
        surface: SdkSurface,
        cluster: Cluster | None = None,
        asyncio: AsyncioBridge | None = None,
    ) -> None:
        self.server = server
        self.cluster = cluster
        """This node's part in a cluster of nodes sharing a session store; None without a store."""
        self.surface = surface
        """What the server's own HTTP app serves besides MCP (auth, routes): the app is built from it."""
        self.config = config
        self._nursery = nursery
        self._stateless = stateless
        self.direct_answers = config.direct_answers and config.event_store is None
        """Whether plain requests are answered through the loop's streams (actors/_direct_answers.py)."""
        self._actor_settings = actor_settings(
            config, server, lifespan_state, self, faults, direct_answers=self.direct_answers, asyncio=asyncio
        )
        self._registry = Registry()
        self._live = self._registry.live
        self.notices = Notices(self._registry)
        """Notifications to clients from outside any request (supervisor/_core/_notices.py)."""
        self._caps = Caps(config, self._registry, cluster)
        self._ledger = Ledger()
        self.tally = Tally()
        """Request durations and refusals, as the HTTP layer reports them (supervisor/_core/_tally.py)."""
        self._accepting = True
        self._all_stopped: trio.Event | None = None
        """Made by the first shutdown; set once no actor is left (none can be added by then)."""
        self.quick_open = config.quick_open and config.event_store is None and faults is None
        """Whether new sessions may be born dormant (see supervisor/_http/_quick_open.py): not with an event
        store (answers then carry event ids) nor under fault injection (its points are on the way)."""
        # Actors start in the supervisor's own context, not in the context of the request that
        # opened them: one client's auth context must not leak into a session's server loop.
        self._context = contextvars.copy_context()
        self._app: ASGIApp | None = None

    @property
    def asgi_app(self) -> ASGIApp:
        """The ASGI app that serves this supervisor, given by `open_supervisor` (`_serve/_open.py`)."""
        if self._app is None:
            raise RuntimeError("this supervisor was not made by open_supervisor(): it has no app")
        return self._app

    @asgi_app.setter
    def asgi_app(self, app: ASGIApp) -> None:
        self._app = app

    # ------------------------------------------------------------------ inspection

    def stats(self) -> SupervisorStats:
        """A consistent snapshot: created == live + closed, per reason."""
        running, draining, hibernating, session_requests = count_states(self._live.values())
        stateless = self._stateless.in_flight
        return SupervisorStats(
            live=len(self._live),
            running=running,
            draining=draining,
            hibernating=hibernating,
            in_flight=session_requests + stateless,
            stateless_in_flight=stateless,
            created=self._ledger.created,
            closed=self._ledger.closed_by_reason(),
            requests=self._ledger.requests_by_outcome(),
            accepting=self._accepting,
            hibernations=self._ledger.hibernations,
            wakes=self._ledger.wakes,
            durations=self.tally.durations(),
            refusals=self.tally.refusals(),
            cluster=self.cluster.stats() if self.cluster is not None else None,
        )

    def sessions(self) -> list[SessionInfo]:
        """Every live session, draining ones included."""
        return [session_info(actor) for actor in self._live.values()]

    def actor_tasks(self) -> int:
        """Actor tasks alive in the supervisor nursery (the stateless requests' task not counted)."""
        return len(self._nursery.child_tasks) - (0 if self._stateless.stopped.is_set() else 1)

    def get(self, session_id: str) -> SessionInfo | None:
        actor = self._live.get(session_id)
        return session_info(actor) if actor is not None else None

    # ------------------------------------------------------------------ control

    async def close_session(
        self, session_id: str, grace: float | None = None, *, reason: CloseReason = CloseReason.CLOSED
    ) -> bool:
        """Close one session gracefully and wait until it is gone; False if no such session.

        With a store, `CloseReason.EVICTED` keeps its record: it wakes on its next request, anywhere.
        """
        actor = self._live.get(session_id)
        if actor is None:
            return False
        await self.close_actor(actor, reason, self.config.drain_grace if grace is None else grace)
        return True

    def principals_named(self, client_id: str) -> list[Principal]:
        """The principals with live sessions whose client id is `client_id` (any issuer, subject)."""
        return self._registry.principals_named(client_id)

    def drain(self) -> None:
        """Take no new sessions (503, and not ready) while the live ones go on being served."""
        if self._accepting:
            logger.info("draining: no new sessions; %d live session(s) go on", len(self._live))
        self._accepting = False

    def sessions_for(self, principal: Principal) -> list[SessionInfo]:
        """The live sessions bound to `principal`."""
        return [session_info(actor) for actor in self._registry.of(principal)]

    async def close_sessions_for(self, principal: Principal, grace: float | None = None) -> int:
        """Revoke: close every session of `principal` (concurrently, within `grace`); return how many.

        New requests for those sessions get 404 the moment this is called. With a store, the other
        nodes close theirs too (asked on the cluster channel, not waited for) and the records are
        deleted; the count is then the store's count of them (this node's ones included).
        """
        closed = await self.revoke_here(principal, grace)
        if self.cluster is None:
            return closed
        elsewhere = await self.cluster.revoke(principal)
        return max(closed, len(elsewhere))

    async def revoke_here(self, principal: Principal, grace: float | None = None) -> int:
        """Close this node's sessions of `principal` (the whole revocation without a store)."""
        actors = self._registry.of(principal)
        grace = self.config.drain_grace if grace is None else grace
        for actor in actors:
            actor.begin_close(CloseReason.REVOKED, grace)
        for actor in actors:
            await actor.stopped.wait()
        if actors:
            logger.info("revoked %d session(s) of principal %s", len(actors), principal.client_id)
        return len(actors)

    def kill(self, session_id: str) -> bool:
        """Cancel a session at once; its in-flight requests still get an error answer."""
        actor = self._live.get(session_id)
        if actor is None:
            return False
        actor.kill()
        return True

    async def shutdown(self, grace: float | None = None) -> None:
        """Refuse new sessions, drain every session and the stateless requests within `grace`, then cancel."""
        grace = self.config.drain_grace if grace is None else grace
        first, stateless = self._accepting, self._stateless
        report = DrainReport(self._ledger, self._live.__len__, self.sessions, lambda: stateless.in_flight)
        if first:
            logger.info("shutting down: %d sessions, grace %.3gs", len(self._live), grace)
        self._accepting = False
        for actor in list(self._live.values()):
            actor.begin_close(CloseReason.SHUTDOWN, grace)
        self._stateless.close(grace)
        if self._all_stopped is None:
            self._all_stopped = trio.Event()
        if not self._live:
            self._all_stopped.set()
        with trio.move_on_after(grace + self.config.kill_grace + CLEANUP_TIMEOUT + 1.0):
            async with trio.open_nursery() as reporting:
                if first:
                    reporting.start_soon(report.progress, trio.current_time() + grace)
                # One event for all of them: waiting on 10,000 events one by one costs a checkpoint each.
                await self._all_stopped.wait()
                await self._stateless.stopped.wait()
                reporting.cancel_scope.cancel()
        if first:
            report.summary()

    # ------------------------------------------------------------------ used by the endpoint

    @property
    def accepting(self) -> bool:
        return self._accepting

    @property
    def stopping(self) -> bool:
        """Shutdown began: the sessions here are closing (`/readyz?sessions=held` says so)."""
        return self._all_stopped is not None

    @property
    def live_sessions(self) -> int:
        """Live sessions (draining ones included), in O(1): what readiness and the cap count."""
        return len(self._live)

    @property
    def store_up(self) -> bool | None:
        """Whether the session store answers, as last seen (None without a store)."""
        return self.cluster.store.up if self.cluster is not None else None

    def actor_of(self, session_id: str) -> SessionActor | None:
        """The live actor under this id, closing or not (the cluster's way in)."""
        return self._live.get(session_id)

    def route(self, session_id: str) -> SessionActor | None:
        """The actor a session id names, if it takes requests. No checkpoint: see `submit`."""
        return self._registry.routable.get(session_id)

    async def open_session(
        self, principal: Principal | None, *, dormant_with: Mapping[str, Any] | None = None
    ) -> SessionActor | OpenRefusal:
        """Admit and start a new session actor; the cap is checked and the actor registered atomically.

        `dormant_with`: the params of the session's `initialize`, already answered (quick open):
        the actor starts dormant, to be woken from its record by its first real request.
        """
        refusal = await self._caps.cluster_refusal(principal) or self._caps.refusal(
            principal, accepting=self._accepting
        )
        if refusal is not None:
            return refusal
        record = new_record(mint_session_id(self.config.node_id), principal, dormant_with)
        residence = Residence.AWAKE if dormant_with is None else Residence.DORMANT
        actor = await self._start(SessionActor(record, self._actor_settings, residence=residence))
        if self.cluster is not None:
            self.cluster.opened(actor.record)
        return actor

    async def restore(self, record: SessionRecord) -> SessionActor | OpenRefusal:
        """Bring a session back from its record (same id, same principal), dormant until its next request.

        The record must be of a session that has been opened (its `initialize` known) and that is
        not live here. Caps apply as to a new session.
        """
        if not record.opened:
            raise ValueError("a record without its initialize cannot be restored")
        if record.session_id in self._live:
            raise ValueError(f"session {record.session_id[:64]} is live already")
        refusal = self._caps.refusal(record.principal, accepting=self._accepting)
        if refusal is not None:
            return refusal
        return await self._start(SessionActor(record, self._actor_settings, residence=Residence.DORMANT))

    async def _start(self, actor: SessionActor) -> SessionActor:
        """Register and start `actor` (no checkpoint between the caps' check and this)."""
        self._registry.add(actor)
        self._ledger.opened()
        actor.log.info("created")
        self._context.run(functools.partial(self._nursery.start_soon, actor.run))
        await actor.ready.wait()
        return actor

    async def submit(self, actor: SessionActor, message: ServeRequest) -> Admission:
        config = self.config
        return await actor.submit(message, config.mailbox_timeout, config.max_requests_per_session)

    def submit_stateless(self, message: ServeRequest) -> bool:
        return self._stateless.submit(message)

    async def close_actor(self, actor: SessionActor, reason: CloseReason, grace: float) -> None:
        actor.begin_close(reason, grace)
        await actor.stopped.wait()

    def record_outcome(
        self, outcome: RequestOutcome | None, *, stateless: bool = False, session_id: str | None = None
    ) -> None:
        self._ledger.request_ended(outcome, stateless=stateless, session_id=session_id)

    # ------------------------------------------------------------------ ActorHooks

    def actor_closing(self, actor: OwnedActor) -> None:
        self._registry.unroute(actor)

    def actor_slept(self, actor: OwnedActor, *, woke: bool) -> None:
        self._ledger.slept(woke=woke)

    def record_changed(self, actor: OwnedActor) -> None:
        if self.cluster is not None:
            self.cluster.changed(actor.record)

    def actor_stopped(self, actor: OwnedActor) -> None:
        if self._registry.remove(actor):
            reason = actor.close_reason or CloseReason.SHUTDOWN
            if self.cluster is not None:
                self.cluster.ended(actor.record, reason)
            served = self._ledger.closed(actor.session_id, reason)
            _closed_line(actor, reason, served)
            if not self._live and self._all_stopped is not None:
                self._all_stopped.set()


def _closed_line(actor: OwnedActor, reason: CloseReason, served: int) -> None:
    """The session's last line, at its close reason's level (made only if it goes out: a
    shutdown closes 10,000 at DEBUG)."""
    level = CLOSE_POLICY[reason].log_level
    if logger.isEnabledFor(level):
        lifetime = trio.current_time() - actor.started_at
        SessionLog(logger, actor.session_id).log(
            level, "closed (%s) after %.3gs, %d request(s)", reason.value, lifetime, served
        )
