"""Which Host and Origin values a supervisor answers: secure by default, opened only by name.

DNS rebinding lets a web page reach a server on the visitor's own machine or network under the
attacker's host name; checking Host (and Origin) against the names the server is really reached
by stops it. The default allows loopback names only. Serving any Host is `ANY_HOST`, asked for
by name (`--allow-any-host`); a public bind needs its own allow-lists.
"""

from __future__ import annotations

from collections.abc import Sequence

from mcp.server.transport_security import TransportSecuritySettings

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
LOOPBACK_ALLOWED_HOSTS = ("127.0.0.1:*", "localhost:*", "[::1]:*")
LOOPBACK_ALLOWED_ORIGINS = ("http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*")

ANY_HOST = TransportSecuritySettings(enable_dns_rebinding_protection=False)
"""Check neither Host nor Origin: for a server behind something that checks them itself."""


def loopback_security(bind: str | None = None) -> TransportSecuritySettings:
    """The SDK's loopback allow-lists (what `MCPServer` turns on for a loopback host): the default.

    With `bind`, ValueError if it is not loopback (those lists would answer no outside client).
    """
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=list(LOOPBACK_ALLOWED_HOSTS),
        allowed_origins=list(LOOPBACK_ALLOWED_ORIGINS),
    )
    refusal = public_bind_refusal([bind], security) if bind is not None else None
    if refusal is not None:
        raise ValueError(refusal)
    return security


def bind_host(bind: str) -> str:
    """The host part of a hypercorn bind string (`host:port`, `[v6]:port`)."""
    host, _, _ = bind.rpartition(":")
    return host or bind


def all_loopback(binds: Sequence[str]) -> bool:
    return all(bind_host(bind) in LOOPBACK_HOSTS for bind in binds)


def is_default(security: TransportSecuritySettings) -> bool:
    """Whether these are the default checks (loopback names only), not lists someone chose."""
    return (
        security.enable_dns_rebinding_protection
        and list(security.allowed_hosts) == list(LOOPBACK_ALLOWED_HOSTS)
        and list(security.allowed_origins) == list(LOOPBACK_ALLOWED_ORIGINS)
    )


def public_bind_refusal(binds: Sequence[str], security: TransportSecuritySettings) -> str | None:
    """Why serving `binds` with `security` would answer no client, or None.

    Loopback-only checks on a bind that is not loopback would answer every outside request 421:
    say so at start instead, naming what to set.
    """
    public = [bind for bind in binds if bind_host(bind) not in LOOPBACK_HOSTS]
    if not public or not is_default(security):
        return None
    return (
        f"binding {public[0]} (not loopback) with the default Host checks, which allow loopback "
        "names only: give the names clients use (--allowed-hosts, --allowed-origins; "
        "SupervisorConfig(security=...)), or --allow-any-host (supervisor.ANY_HOST) to check neither"
    )
