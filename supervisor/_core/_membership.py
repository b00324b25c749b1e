"""The supervisor as one node of a cluster: waking sessions from the store, and what other nodes ask.

A request whose session is not live here is not a 404 while the store has its record: the
session is claimed for this node (moved from its holder, if another node has it awake) and woken
from the record, with the same id and the same principal. Only an id with no record is unknown.
"""

from __future__ import annotations

import logging

import trio

from actors import CloseReason, Principal, SessionActor, SessionRecord, session_span, tracer_of
from supervisor._cluster import POLL, Forward, Wake
from supervisor._core._admission import OpenRefusal
from supervisor._core._supervisor import SessionSupervisor

logger = logging.getLogger("supervisor._membership")


class Membership:
    """What a cluster asks of a supervisor (`cluster.Member`), and the wake-anywhere path."""

    def __init__(self, supervisor: SessionSupervisor) -> None:
        self._supervisor = supervisor
        self._tracer = tracer_of(supervisor.config.tracer_provider)

    def fence(self, session_id: str) -> None:
        actor = self._supervisor.actor_of(session_id)
        if actor is not None:
            actor.kill(CloseReason.FENCED)

    async def release(self, session_id: str) -> None:
        """Let the session go once its calls in flight are done; its record is kept.

        It serves on here meanwhile (up to the release grace, which the asking request's move
        timeout outlasts), so a move cuts no call; only one still running after the grace is.
        """
        supervisor = self._supervisor
        actor = supervisor.actor_of(session_id)
        cluster = supervisor.cluster
        if actor is None or actor.closing or cluster is None:
            return
        settings = cluster.store.settings
        actor.log.info("moving to another node once its calls in flight are done")
        with trio.move_on_after(max(0.0, min(settings.release_grace, settings.move_wait - 1.0))):
            while _busy(actor):  # noqa: ASYNC110 (a bounded wait on the actor's own counts)
                await trio.sleep(POLL)
        await supervisor.close_actor(actor, CloseReason.MOVED, 0.0)

    async def revoke_here(self, principal: Principal) -> None:
        await self._supervisor.revoke_here(principal)

    def record_of(self, session_id: str) -> SessionRecord | None:
        actor = self._supervisor.actor_of(session_id)
        return actor.record if actor is not None and not actor.closing else None

    async def find(
        self, session_id: str, principal: Principal | None, *, forward: bool = False
    ) -> SessionActor | OpenRefusal | Forward | None:
        """The live actor for this id, else the session woken here from its record; None: unknown.

        `forward`: when another live node that advertises a URL holds it, where to forward the
        request instead (a Forward), rather than moving the session here.

        The actor may be closing by the time it is returned (asked to move on at once): the caller
        hands the request to it all the same, and the dispatch answers by its close reason.
        """
        supervisor = self._supervisor
        cluster = supervisor.cluster
        actor = supervisor.route(session_id)
        if actor is not None or cluster is None:
            return actor
        if not supervisor.accepting:
            # Draining or stopping: another node wakes it (HAProxy sends the 503 on elsewhere).
            return OpenRefusal.SHUTTING_DOWN
        while (waking := cluster.claims.waking.get(session_id)) is not None:
            # Another request is waking it here already: take the actor that one gets, even if
            # it is already closing again (moved on: the dispatch answers that "retry", not 404).
            await waking.wait()
            actor = supervisor.actor_of(session_id)
            if actor is not None:
                return actor
        done = cluster.claims.waking[session_id] = trio.Event()
        tracer = self._tracer
        try:
            with session_span(tracer, "mcp.session.wake_from_store", session_id) as span:
                woken = await self._wake(session_id, principal, forward=forward)
                if span is not None:
                    span.set_attribute("mcp.session.outcome", _outcome(woken))
                return woken
        finally:
            del cluster.claims.waking[session_id]
            done.set()

    async def _wake(
        self, session_id: str, principal: Principal | None, *, forward: bool
    ) -> SessionActor | OpenRefusal | Forward | None:
        supervisor = self._supervisor
        cluster = supervisor.cluster
        assert cluster is not None
        ending = supervisor.actor_of(session_id)
        if ending is not None:
            # It is closing here (evicted, moved): let it finish and write its record first.
            with trio.move_on_after(cluster.store.settings.move_wait):
                await ending.stopped.wait()
            if supervisor.actor_of(session_id) is not None:
                return OpenRefusal.STORE_UNAVAILABLE
        await cluster.settled(session_id)
        woken = await cluster.claims.wake(session_id, principal, cluster.directory if forward else None)
        if isinstance(woken, Forward):
            return woken
        if woken is Wake.MISSING:
            return None
        if woken is Wake.UNAVAILABLE:
            return OpenRefusal.STORE_UNAVAILABLE
        restored = await supervisor.restore(woken)
        if isinstance(restored, OpenRefusal):
            cluster.let_go(woken)
            return restored
        restored.log.info("woken from the store")
        return restored


def _busy(actor: SessionActor) -> bool:
    seen = actor.statistics()
    return seen.queued > 0 or seen.in_flight - seen.open_streams > 0


def _outcome(woken: SessionActor | OpenRefusal | Forward | None) -> str:
    """What a wake from the store came to, for its span."""
    if isinstance(woken, SessionActor):
        return "woken"
    if isinstance(woken, Forward):
        return "forwarded"
    return "unknown" if woken is None else woken.name.lower()
