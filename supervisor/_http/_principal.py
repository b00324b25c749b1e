"""Who a request speaks for: sessions are bound to this, never to the raw token."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser, authorization_context

from actors import Principal


def principal_of(scope: Mapping[str, Any]) -> Principal | None:
    """The principal the SDK's bearer-auth middleware put in the scope, or None without auth."""
    user = scope.get("user")
    if not isinstance(user, AuthenticatedUser):
        return None
    context = authorization_context(user)
    return Principal(client_id=context["client_id"], issuer=context["issuer"], subject=context["subject"])
