"""The admin API: see and act on live sessions without a restart, behind its own bearer token.

Off unless a token is configured. Mounted under `/admin` on the same listener, before any other
auth (it has its own). Every answer is JSON; every refusal a JSON error with a precise status.
The token is kept as a SHA-256 digest and compared in constant time; it is never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import attrs
import trio
from prometheus_client import CollectorRegistry
from starlette.types import ASGIApp, Receive, Scope, Send

from actors import ActorState, CloseReason, Principal, json_bytes, send_json, send_whole
from supervisor._cluster import or_none
from supervisor._core import (
    CONTENT_TYPE,
    SessionInfo,
    SessionSupervisor,
    metrics_registry,
    render,
    stats_document,
)
from supervisor._http._auth import SHORT_TOKEN
from supervisor._http._envelope import header

logger = logging.getLogger("supervisor._admin")

ADMIN_PREFIX = "/admin"
MAX_PAGE = 1000
_MAX_BODY = 64 * 1024


class AdminError(Exception):
    """A refusal of the admin API: its status and what it says."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def read_admin_token(path: str) -> str:
    """The first word of the file (`--admin-token-file`); ValueError naming the file, never the token."""
    try:
        words = Path(path).read_text(encoding="utf-8").split()
    except OSError as error:
        raise ValueError(f"--admin-token-file: cannot read {path}: {error.strerror}") from None
    if not words or len(words[0]) < SHORT_TOKEN:
        raise ValueError(f"--admin-token-file: {path} must hold a token of 16 characters or more")
    return words[0]


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class AdminFront:
    """`/admin...` to the admin API; every other request to `inner`."""

    def __init__(self, inner: ASGIApp, supervisor: SessionSupervisor, digest: bytes) -> None:
        self._inner = inner
        self._api = AdminApi(supervisor)
        self._digest = digest
        self._supervisor = supervisor
        self._registry: CollectorRegistry | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path != ADMIN_PREFIX and not path.startswith(ADMIN_PREFIX + "/"):
            await self._inner(scope, receive, send)
            return
        try:
            self._authorize(scope)
            if path.rstrip("/") == ADMIN_PREFIX + "/metrics":
                _allow(scope["method"], "GET")
                await self._metrics(send)
                return
            status, document = await self._api.handle(scope, receive)
        except AdminError as error:
            status, document = error.status, {"error": str(error)}
        extra = [(b"www-authenticate", b'Bearer realm="mcp-supervisor admin"')] if status == 401 else []
        await send_json(send, status, json_bytes(document), (b"cache-control", b"no-store"), *extra)

    async def _metrics(self, send: Send) -> None:
        """The Prometheus metrics behind the admin token, for a scraper that reaches only this listener."""
        if self._registry is None:
            self._registry = metrics_registry(self._supervisor)
        body = render(self._registry)
        headers = [(b"content-type", CONTENT_TYPE.encode()), (b"cache-control", b"no-store")]
        await send_whole(send, 200, [*headers, (b"content-length", str(len(body)).encode())], body)

    def _authorize(self, scope: Scope) -> None:
        given = header(scope["headers"], b"authorization") or ""
        scheme, _, token = given.partition(" ")
        # Compare digests whatever was sent, so the time taken says nothing about the token.
        valid = hmac.compare_digest(token_digest(token.strip()), self._digest)
        if scheme.lower() != "bearer" or not valid:
            raise AdminError(401, "a valid admin bearer token is required")


class AdminApi:
    """The routes of the admin API, each a method returning (status, JSON document)."""

    def __init__(self, supervisor: SessionSupervisor) -> None:
        self._supervisor = supervisor

    async def handle(self, scope: Scope, receive: Receive) -> tuple[int, Any]:
        method, path = scope["method"], scope["path"][len(ADMIN_PREFIX) :].rstrip("/")
        query = {key: values[-1] for key, values in parse_qs(scope.get("query_string", b"").decode()).items()}
        if path == "/sessions":
            _allow(method, "GET")
            if query.get("scope", "node") == "cluster":
                return 200, await self._cluster_list(query)
            return 200, self._list(query)
        if path.startswith("/sessions/"):
            session_id = path[len("/sessions/") :]
            _allow(method, "GET", "DELETE")
            if method == "GET":
                return 200, _session(self._known(session_id))
            return 200, await self._close(session_id, query.get("mode", "graceful"))
        if path == "/revoke":
            _allow(method, "POST")
            return 200, await self._revoke(await _json_body(receive))
        if path == "/drain":
            _allow(method, "POST")
            self._supervisor.drain()
            return 200, {"draining": True, "live": self._supervisor.live_sessions}
        if path == "/stats":
            _allow(method, "GET")
            return 200, stats_document(self._supervisor.stats())
        raise AdminError(404, f"no admin route {scope['path'][:100]!r}")

    def _list(self, query: dict[str, str]) -> dict[str, Any]:
        limit = _number(query.get("limit", "100"), "limit", 1, MAX_PAGE)
        start = _number(query.get("cursor", "0"), "cursor", 0, math.inf)
        state = query.get("state")
        if state is not None and state not in {s.value for s in ActorState} | {"hibernating", "awake"}:
            raise AdminError(400, f"unknown state {state[:40]!r}")
        sessions = [
            info
            for info in self._supervisor.sessions()
            if _matches(info, principal=query.get("principal"), state=state)
        ]
        page = sessions[start : start + limit]
        following = start + limit if start + limit < len(sessions) else None
        return {
            "sessions": [_session(info) for info in page],
            "total": len(sessions),
            "next_cursor": str(following) if following is not None else None,
        }

    async def _cluster_list(self, query: dict[str, str]) -> dict[str, Any]:
        """Every session of the cluster, from the store: its record and the node holding it awake."""
        cluster = self._supervisor.cluster
        if cluster is None:
            raise AdminError(400, "scope=cluster needs a session store (--redis-url)")
        limit = _number(query.get("limit", "100"), "limit", 1, MAX_PAGE)
        found = await or_none(cluster.store.listing.records(limit))
        if found is None:
            raise AdminError(503, "the session store does not answer")
        return {
            "sessions": [
                {
                    "session_id": record.session_id,
                    "principal": attrs.asdict(record.principal) if record.principal is not None else None,
                    "held_by": owner,
                    "created": record.created_at,
                    "last_activity": record.last_active_at,
                    "protocol_version": record.protocol_version,
                }
                for record, owner in found
            ],
            "total": len(found),
            "next_cursor": None,
        }

    def _known(self, session_id: str) -> SessionInfo:
        info = self._supervisor.get(session_id)
        if info is None:
            raise AdminError(404, "no such session")
        return info

    async def _close(self, session_id: str, mode: str) -> dict[str, Any]:
        if mode not in ("graceful", "kill", "evict"):
            raise AdminError(400, "mode must be graceful, kill or evict")
        if mode == "evict" and self._supervisor.cluster is None:
            raise AdminError(400, "mode=evict needs a session store (--redis-url)")
        self._known(session_id)
        if mode == "kill":
            self._supervisor.kill(session_id)
        else:
            reason = CloseReason.EVICTED if mode == "evict" else CloseReason.CLOSED
            await self._supervisor.close_session(session_id, reason=reason)
        logger.info("admin: %s session %s", "killed" if mode == "kill" else "closed", session_id)
        return {"closed": True, "mode": mode}

    async def _revoke(self, body: Any) -> dict[str, int]:
        wanted = body.get("principal") if isinstance(body, dict) else None
        if isinstance(wanted, str):
            principals = await self._named(wanted)
        elif isinstance(wanted, dict) and isinstance(wanted.get("client_id"), str):
            try:
                principals = [Principal(**wanted)]
            except TypeError as error:
                raise AdminError(400, f"bad principal: {error}") from None
        else:
            raise AdminError(400, 'the body must be {"principal": "<client id>"} or a principal object')
        closed = 0
        for principal in principals:
            closed += await self._supervisor.close_sessions_for(principal)
        return {"closed": closed}

    async def _named(self, client_id: str) -> list[Principal]:
        """Every principal with this client id (any issuer, subject): this node's, and with a
        store those with a session anywhere in the cluster (sessions this node never saw)."""
        named = set(self._supervisor.principals_named(client_id))
        cluster = self._supervisor.cluster
        if cluster is not None:
            elsewhere = await or_none(cluster.store.principals_named(client_id))
            if elsewhere is None:
                logger.error(
                    "revoking client %s: the store did not answer; other nodes' sessions "
                    "of it with an issuer or subject stay",
                    client_id,
                )
            named |= elsewhere or set()
            named.add(Principal(client_id))
        return sorted(named, key=lambda principal: (principal.issuer or "", principal.subject or ""))


def _allow(method: str, *allowed: str) -> None:
    if method not in allowed:
        raise AdminError(405, f"{method} is not allowed here; use {', '.join(allowed)}")


def _number(text: str, name: str, least: float, most: float) -> int:
    if not text.isdigit() or not least <= int(text) <= most:
        raise AdminError(400, f"{name} must be a whole number from {least:g} to {most:g}")
    return int(text)


def _matches(info: SessionInfo, *, principal: str | None, state: str | None) -> bool:
    if principal is not None and (info.principal is None or info.principal.client_id != principal):
        return False
    if state == "hibernating":
        return not info.awake and info.state is ActorState.RUNNING
    if state == "awake":
        return info.awake
    return state is None or info.state.value == state


def _session(info: SessionInfo) -> dict[str, Any]:
    """One session as the admin API shows it (times: seconds since the epoch; deadline: seconds)."""
    principal = info.principal
    deadline = info.idle_deadline
    return {
        "id": info.session_id,
        "principal": None
        if principal is None
        else {"client_id": principal.client_id, "issuer": principal.issuer, "subject": principal.subject},
        "state": info.state.value,
        "awake": info.awake,
        "created": info.created,
        "last_activity": info.last_activity,
        "in_flight": info.in_flight,
        "open_streams": info.open_streams,
        "queued": info.queued,
        "idle_deadline_in": None if math.isinf(deadline) else max(deadline - trio.current_time(), 0.0),
    }


async def _json_body(receive: Receive) -> Any:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise AdminError(400, "the client left before its body was in")
        chunk = bytes(message.get("body", b""))
        size += len(chunk)
        if size > _MAX_BODY:
            raise AdminError(413, f"the body is larger than {_MAX_BODY} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    try:
        return json.loads(b"".join(chunks) or b"null")
    except (ValueError, UnicodeDecodeError):
        raise AdminError(400, "the body is not valid JSON") from None
