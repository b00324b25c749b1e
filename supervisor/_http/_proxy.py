"""Serving behind a reverse proxy: the allowed Host and Origin values, forwarded headers, a root path.

- `security_for`: the DNS-rebinding check's allow-lists. Loopback binds get the SDK's loopback
  defaults; `--allowed-hosts`/`--allowed-origins` replace them, or extend them when the list starts
  with `+`. A public bind needs them (exactly those values are allowed), or `--allow-any-host`.
- `ForwardedHeaders`: `X-Forwarded-For`, `-Proto` and `-Host` rewrite the client, scheme and Host
  the app sees, only when the peer is a trusted proxy (`--forwarded-allow-ips`), so the Host check
  and the logs see what the client asked for, and nobody else can pretend to be a proxy.
- `RootPath`: an app mounted under a prefix (`--root-path /api`) answers `/api/mcp` as `/mcp`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

import supervisor._http._refusals as refusals
from actors import Refusal
from supervisor._core import (
    ANY_HOST,
    LOOPBACK_ALLOWED_HOSTS,
    LOOPBACK_ALLOWED_ORIGINS,
    all_loopback,
    loopback_security,
    public_bind_refusal,
)
from supervisor._http._envelope import header, passes_only_by_prefix


def _listed(given: str | None, defaults: Sequence[str]) -> list[str] | None:
    if given is None:
        return None
    extend = given.startswith("+")
    values = [value.strip() for value in given.removeprefix("+").split(",") if value.strip()]
    return [*defaults, *values] if extend else values


def security_for(
    binds: Sequence[str],
    allowed_hosts: str | None = None,
    allowed_origins: str | None = None,
    *,
    allow_any_host: bool = False,
) -> TransportSecuritySettings:
    """The Host/Origin allow-lists for these binds and flags.

    ValueError (one line) for a bind that is not loopback with no allow-list and no
    `allow_any_host`: nothing opens the check but asking for it by name.
    """
    if allow_any_host:
        if allowed_hosts is not None or allowed_origins is not None:
            raise ValueError("--allow-any-host checks no Host: give it or the allow-lists, not both")
        return ANY_HOST
    loopback = all_loopback(binds)
    hosts = _listed(allowed_hosts, LOOPBACK_ALLOWED_HOSTS if loopback else ())
    origins = _listed(allowed_origins, LOOPBACK_ALLOWED_ORIGINS if loopback else ())
    if hosts is None and origins is None:
        security = loopback_security()
        refusal = public_bind_refusal(binds, security)
        if refusal is not None:
            raise ValueError(refusal)
        return security
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=hosts if hosts is not None else list(LOOPBACK_ALLOWED_HOSTS if loopback else ()),
        allowed_origins=origins
        if origins is not None
        else list(LOOPBACK_ALLOWED_ORIGINS if loopback else ()),
    )


class HostCheck:
    """The SDK's Host/Origin checks, with a wildcard port that must be a port; one for every path
    the supervisor answers itself (MCP, metrics, health, readiness)."""

    def __init__(self, security: TransportSecuritySettings) -> None:
        self._settings = security
        checks = security.enable_dns_rebinding_protection
        self._sdk = TransportSecurityMiddleware(security) if checks else None

    async def refusal(self, scope: Scope, *, without_host_passes: bool = False) -> Refusal | None:
        """421 for a Host not allowed, 403 for an Origin not allowed; None when it passes.

        `without_host_passes`: a request with no Host header at all passes (an HTTP/1.0 health
        check, as HAProxy's `option httpchk` sends; no browser sends one without a Host).
        """
        if self._sdk is None:
            return None
        headers = scope["headers"]
        host = header(headers, b"host")
        if host is None and without_host_passes and header(headers, b"origin") is None:
            return None
        refusal = await self._sdk.validate_request(Request(scope), is_post=False)
        if refusal is not None:
            return refusals.host_refused(refusal.status_code, bytes(refusal.body).decode())
        if passes_only_by_prefix(host, self._settings.allowed_hosts):
            return refusals.invalid_host()
        if passes_only_by_prefix(header(headers, b"origin"), self._settings.allowed_origins):
            return refusals.invalid_origin()
        return None


def trusted_peers(value: str) -> frozenset[str] | None:
    """`--forwarded-allow-ips`: comma-separated addresses, or `*` for any peer (None)."""
    if value.strip() == "*":
        return None
    peers = frozenset(part.strip() for part in value.split(",") if part.strip())
    for peer in peers:
        try:
            ipaddress.ip_address(peer)
        except ValueError:
            raise ValueError(f"--forwarded-allow-ips: {peer!r} is not an IP address (or give *)") from None
    return peers


class ForwardedHeaders:
    """Take the client, scheme and Host from a trusted proxy's `X-Forwarded-*` headers."""

    def __init__(self, app: ASGIApp, trusted: frozenset[str] | None) -> None:
        self._app = app
        self._trusted = trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self._from_trusted(scope):
            scope = _forwarded(scope)
        await self._app(scope, receive, send)

    def _from_trusted(self, scope: Scope) -> bool:
        client = scope.get("client")
        return self._trusted is None or (client is not None and client[0] in self._trusted)


def _forwarded(scope: Scope) -> Scope:
    headers = list(scope["headers"])
    found = {name: value.decode("latin-1") for name, value in headers if name.startswith(b"x-forwarded-")}
    changed = dict(scope)
    if b"x-forwarded-for" in found:
        first = found[b"x-forwarded-for"].split(",")[0].strip()
        changed["client"] = (first, 0)
    if b"x-forwarded-proto" in found:
        changed["scheme"] = found[b"x-forwarded-proto"].split(",")[0].strip().lower()
    if b"x-forwarded-host" in found:
        host = found[b"x-forwarded-host"].split(",")[0].strip().encode("latin-1")
        changed["headers"] = [(name, value) for name, value in headers if name != b"host"] + [(b"host", host)]
    return changed


class RootPath:
    """Serve the app under `root_path`: strip it from the request path, and say so in the scope."""

    def __init__(self, app: ASGIApp, root_path: str) -> None:
        self._app = app
        self._root = root_path.rstrip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if path == self._root or path.startswith(self._root + "/"):
                scope = {**scope, "path": path[len(self._root) :] or "/", "root_path": self._root}
        await self._app(scope, receive, send)
