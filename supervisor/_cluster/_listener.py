"""The listener: what other nodes say to this one, on its own channel and the cluster's.

"release" (another node wants a session held here), "released" (a holder let go of a session this
node asked for), "revoke" (a principal's sessions end everywhere). A lost subscription is made again
after a second; messages that fail the cluster secret's check never get here (`RedisStore`).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import trio
from opentelemetry.propagate import extract

from actors import Principal, SessionLog, session_span
from supervisor._cluster._claims import Claims
from supervisor._cluster._leases import Leases
from supervisor._cluster._redis_store import RedisStore
from supervisor._cluster._store_health import StoreUnavailable
from supervisor._cluster._terms import Member
from supervisor._cluster._writer import RecordWriter

logger = logging.getLogger("supervisor._cluster")


class Listener:
    """Hears the cluster's messages for one node and hands each to whom it concerns."""

    def __init__(self, store: RedisStore, leases: Leases, writer: RecordWriter, claims: Claims) -> None:
        self._store = store
        self._leases = leases
        self._writer = writer
        self._claims = claims

    async def run(self, member: Member, nursery: trio.Nursery) -> None:
        """Listen until cancelled; what a message asks of the supervisor runs in `nursery`."""
        while True:
            try:
                async with self._store.listening() as messages:
                    async for message in messages:
                        self._heard(message, member, nursery)
            except Exception as error:
                level = logging.WARNING if self._store.up else logging.DEBUG
                logger.log(level, "lost the cluster channel (%s); listening again", error)
            await trio.sleep(1.0)

    def _heard(self, message: dict[str, Any], member: Member, nursery: trio.Nursery) -> None:
        op, sender, session = message.get("op"), message.get("from"), message.get("session")
        if op == "release" and isinstance(session, str) and isinstance(sender, str):
            if session in self._leases:
                self._writer.asked_by(session, sender)
                nursery.start_soon(self._release, member, session, message)
            elif self._writer.ending(session):
                self._writer.asked_by(session, sender)  # told once its end is written
            elif session not in self._claims.waking:
                nursery.start_soon(self._free_left_behind, session, sender)
        elif op == "released" and isinstance(session, str):
            self._claims.heard_released(session)
        elif op == "revoke" and sender != self._store.node_id and isinstance(message.get("principal"), dict):
            try:
                principal = Principal(**message["principal"])
            except (TypeError, ValueError):
                return
            nursery.start_soon(member.revoke_here, principal)

    async def _free_left_behind(self, session: str, sender: str) -> None:
        """Asked for a session no actor here stands for (not held, not ending, not being woken):
        a lease of this process that is still in the store was left behind (a check of leases
        that crossed the session's end can set it again). Free it for the node that asked."""
        with contextlib.suppress(StoreUnavailable):
            if await self._store.release(session, None, tell=sender):
                SessionLog(logger, session).info("freed a lease left behind here for node %s", sender)

    async def _release(self, member: Member, session: str, message: dict[str, Any]) -> None:
        """Let go of `session` for the node that asked: traced under that node's request, when
        its message carries the trace."""
        carrier = {
            key: value for key in ("traceparent", "tracestate") if isinstance(value := message.get(key), str)
        }
        tracer = self._store.tracer
        parent = extract(carrier) if carrier and tracer is not None else None
        with session_span(tracer, "mcp.session.release", session, parent=parent, own_trace=parent is None):
            await member.release(session)
