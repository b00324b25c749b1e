"""Messages to clients from outside any request: written to the standalone streams actors hold.

A server loop sends what belongs to no request (a list change, a resource update) through the
stream of the session it serves, and only while it is awake. An application that learns of a
change outside any request (a file changed, a row was written) tells the sessions here instead:
the notification goes straight onto each open standalone stream, without waking anybody, so a
hibernating session's client hears of it as an awake one's does.

Delivery is what a standalone stream offers: to a client whose stream is open now, on this node.
A session with no open stream misses the message, as with the SDK's transport, and so does a
client more than the stream's buffer behind (it is not waited for: one slow client must not hold
up the others).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from actors import SessionActor, notification_body
from supervisor._core._registry import Registry


@attrs.define(eq=False)
class Notices:
    """Notifications to the clients of this node's sessions, by session, subscription or to all."""

    _registry: Registry = attrs.field(alias="registry")

    def send(self, session_id: str, method: str, params: Mapping[str, Any] | None = None) -> bool:
        """Notify one session's client; False if it has no open standalone stream here."""
        actor = self._registry.routable.get(session_id)
        return actor is not None and _offer(actor, notification_body(method, params))

    def resource_updated(self, uri: str) -> int:
        """`notifications/resources/updated` to every session subscribed to `uri`; how many got it."""
        data = notification_body("notifications/resources/updated", {"uri": uri})
        listening = (actor for actor in self._actors() if actor.streams.held() is not None)
        return sum(_offer(actor, data) for actor in listening if uri in actor.record.subscriptions)

    def broadcast(self, method: str, params: Mapping[str, Any] | None = None) -> int:
        """Notify every session's client (say `notifications/tools/list_changed`); how many got it."""
        data = notification_body(method, params)
        return sum(_offer(actor, data) for actor in self._actors())

    def _actors(self) -> Iterable[SessionActor]:
        return list(self._registry.routable.values())


def _offer(actor: SessionActor, data: bytes) -> bool:
    stream = actor.streams.held()
    return stream is not None and stream.offer(data)
