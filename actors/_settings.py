"""What every actor of one supervisor shares, and the narrow interface back to its owner."""

from __future__ import annotations

from typing import Any, Protocol

import attrs
from mcp.server.lowlevel.server import Server
from mcp.server.streamable_http import EventStore
from opentelemetry.trace import Tracer

from actors._asyncio import AsyncioBridge
from actors._faults import FaultSink
from actors._reasons import CloseReason
from actors._record import Principal, SessionRecord

CLEANUP_TIMEOUT = 5.0
"""Upper bound for shielded cleanup (transport termination): a hung cleanup must not wedge shutdown."""


class OwnedActor(Protocol):
    """An actor as its owner sees it in a hook."""

    @property
    def session_id(self) -> str: ...

    @property
    def principal(self) -> Principal | None: ...

    @property
    def close_reason(self) -> CloseReason | None: ...

    @property
    def started_at(self) -> float: ...

    @property
    def record(self) -> SessionRecord:
        """The session as a value, as of now."""
        ...


class ActorHooks(Protocol):
    """What an actor tells its owner; kept narrow so actors do not depend on the supervisor."""

    def actor_closing(self, actor: OwnedActor) -> None:
        """The actor stopped taking requests: forget its id now, so it answers 404 at once."""

    def actor_stopped(self, actor: OwnedActor) -> None:
        """The actor task is about to end: nothing of the session is left."""

    def actor_slept(self, actor: OwnedActor, *, woke: bool) -> None:
        """The actor dropped its incarnation (hibernated), or was woken into a new one."""

    def record_changed(self, actor: OwnedActor) -> None:
        """The session's record changed (a handshake message, hibernation): it may be written out."""


@attrs.frozen
class TransportOptions:
    """How each incarnation's SDK transport is built."""

    json_response: bool = False
    event_store: EventStore | None = None
    retry_interval: int | None = None


@attrs.frozen(kw_only=True)
class ActorSettings:
    """Held once by the supervisor, referenced by each actor."""

    server: Server[Any]
    lifespan_state: Any
    hooks: ActorHooks
    transport: TransportOptions = TransportOptions()
    idle_timeout: float | None = None
    mailbox_size: int = 64
    kill_grace: float = 1.0
    hibernate_after: float | None = None
    """Idle seconds after which an actor drops its incarnation until the next request."""
    evict_after: float | None = None
    """Dormant seconds after which an actor ends, its record kept in the store (only with one)."""
    direct_answers: bool = True
    """Answer plain requests through the loop's streams (actors/_direct_answers.py); off with a store."""
    faults: FaultSink | None = None
    asyncio: AsyncioBridge | None = None
    """The supervisor's asyncio loop for tools wrapped in `asyncio_tool` (opened on first use)."""
    tracer: Tracer | None = None
    """Spans for the session's own work (`actors/_tracing.py`); None: tracing is off."""

    _said: set[str] = attrs.field(factory=set, alias="said")
    """What this supervisor's actors have said once already (`first_time`)."""

    def first_time(self, key: str) -> bool:
        """True the first time any actor of this supervisor asks about `key`: say it once."""
        if key in self._said:
            return False
        self._said.add(key)
        return True

    @property
    def holds_streams(self) -> bool:
        """Actors hold standalone GET streams themselves (`actors/_standalone.py`): not with an
        event store, whose event ids and replay are the transport's."""
        return self.transport.event_store is None
