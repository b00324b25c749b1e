"""Which sessions exist: routable ones (an id may name them), live ones, and each principal's."""

from __future__ import annotations

import attrs

from actors import OwnedActor, Principal, SessionActor


@attrs.define(eq=False)
class Registry:
    """Three maps kept in step; every change is synchronous, so no checkpoint splits one."""

    routable: dict[str, SessionActor] = attrs.field(factory=dict)
    """Sessions that take requests: what an Mcp-Session-Id may name."""
    live: dict[str, SessionActor] = attrs.field(factory=dict)
    """Every actor not yet stopped, draining ones included."""
    _by_principal: dict[Principal, dict[str, SessionActor]] = attrs.field(factory=dict)
    """Live actors by principal: revocation costs O(that principal's sessions)."""

    def add(self, actor: SessionActor) -> None:
        session_id = actor.session_id
        self.routable[session_id] = actor
        self.live[session_id] = actor
        if actor.principal is not None:
            self._by_principal.setdefault(actor.principal, {})[session_id] = actor

    def unroute(self, actor: OwnedActor) -> None:
        """The actor takes no more requests: its id answers 404 from now on."""
        if self.routable.get(actor.session_id) is actor:
            del self.routable[actor.session_id]

    def remove(self, actor: OwnedActor) -> bool:
        """Forget a stopped actor; whether it was the live one under its id."""
        self.unroute(actor)
        was_live = self.live.get(actor.session_id) is actor
        if was_live:
            del self.live[actor.session_id]
        principal = actor.principal
        if principal is not None:
            owned = self._by_principal.get(principal)
            if owned is not None and owned.pop(actor.session_id, None) is not None and not owned:
                del self._by_principal[principal]
        return was_live

    def of(self, principal: Principal) -> list[SessionActor]:
        return list(self._by_principal.get(principal, {}).values())

    def count_of(self, principal: Principal) -> int:
        return len(self._by_principal.get(principal, ()))

    def principals_named(self, client_id: str) -> list[Principal]:
        return [principal for principal in self._by_principal if principal.client_id == client_id]
