"""What the supervisor hands to a session actor, and the handle it keeps on each request."""

from __future__ import annotations

import contextvars
import enum
from collections.abc import Mapping
from typing import Any

import attrs
import trio
from starlette.types import Receive, Scope, Send

from actors._reasons import RequestOutcome


@attrs.define(eq=False, kw_only=True)
class RequestTicket:
    """The ASGI handler's handle on one request it handed to an actor.

    It is the only mutable part of a message: the handler cancels through it (client
    disconnect) and waits on it; the actor records how the request ended.
    """

    is_stream: bool = False
    """A GET: a long-lived server-to-client stream that a drain closes at once instead of awaiting."""
    is_standalone: bool = False
    """The session's standalone GET stream (not a replay): one at a time, decided by the actor."""
    cancel_scope: trio.CancelScope = attrs.Factory(trio.CancelScope)
    done: trio.Event = attrs.Factory(trio.Event)
    outcome: RequestOutcome | None = None
    waiter: trio.CancelScope | None = None
    """The handler's scope around its watch on the client, if it watches: ended when done."""
    client_left: bool = False
    """The client went away before its answer was complete. A handshake-era request runs on
    (the protocol's cancellation is `notifications/cancelled`, not a dropped connection); its
    answer is dropped, or kept by the event store for the client to resume."""

    def finish(self, outcome: RequestOutcome) -> None:
        """Record the outcome once; later calls (a reject racing a kill) keep the first."""
        if self.outcome is None:
            self.outcome = outcome
        self.done.set()
        if self.waiter is not None:
            self.waiter.cancel()


@attrs.frozen(kw_only=True)
class ServeRequest:
    """Serve one HTTP request of this session through its transport.

    `context` is the ASGI handler's contextvars context: the request task runs in it so the
    SDK's auth context (`get_access_token()`) and tracing still see the request.
    """

    scope: Scope
    receive: Receive
    send: Send
    context: contextvars.Context
    ticket: RequestTicket
    method: str | None = None
    """The JSON-RPC method of a POST, when known (the direct lane, fault points and logs use it)."""
    request_id: str | int | None = None
    """The JSON-RPC id of a POSTed request: the loop is told to cancel it if the client leaves."""
    body: bytes = b""
    """The POST body: the same bytes the replayed `receive` yields to the transport."""
    message: Mapping[str, Any] | None = None
    """The body as the HTTP layer parsed it (once): direct answers validate it, the record reads
    the params of handshake messages."""
    direct: bool = False
    """Answered through the server loop's streams (actors/_direct_answers.py), decided once by the
    HTTP layer (`answers_directly`); the transport takes it if that path is unavailable."""

    @property
    def params(self) -> object:
        return self.message.get("params") if self.message is not None else None


class Admission(enum.Enum):
    """Answer of `SessionActor.submit`: why a request was or was not handed over."""

    ACCEPTED = "accepted"
    GONE = "gone"
    """The actor is closing or closed: answer like an unknown session (404)."""
    BUSY = "busy"
    """The mailbox stayed full for the whole wait: answer 503 with Retry-After."""
    CONFLICT = "conflict"
    """A standalone GET stream is open already (one per session): answer 409."""
    TOO_MANY = "too_many"
    """The session has its limit of requests in flight or queued (GET streams aside): answer 429."""
