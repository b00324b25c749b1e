"""Bearer authentication in front of the supervisor, through the SDK's `TokenVerifier`.

Sessions are bound to the principal a token stands for (client id, issuer, subject), never to
the token itself, so a refreshed token keeps its sessions. Tokens are never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import stat
from pathlib import Path

import attrs
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from starlette.types import ASGIApp, Receive, Scope, Send

import supervisor._http._refusals as refusals
from actors import send_refusal

SHORT_TOKEN = 16
"""Characters below which a bearer token is easy to guess."""


def open_to_others(path: str | Path, flag: str) -> str | None:
    """A warning line when a file of secrets is readable (or writable) by other users, else None."""
    try:
        mode = Path(path).stat().st_mode
    except OSError:
        return None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return f"{flag}: {path} is open to other users (mode {oct(stat.S_IMODE(mode))}): chmod 600 it"
    return None


class TokensFileError(Exception):
    """The tokens file cannot be used; the message names the line, never a token."""


@attrs.frozen
class _Entry:
    digest: bytes
    principal: str


class StaticTokenVerifier:
    """A `TokenVerifier` over a fixed set of bearer tokens, each standing for a named principal.

    Tokens are kept only as SHA-256 digests and every lookup compares against every entry with
    `hmac.compare_digest`, so neither timing nor memory dumps give a token away.
    """

    def __init__(self, tokens: dict[str, str], warnings: tuple[str, ...] = ()) -> None:
        self._entries = tuple(_Entry(_digest(token), principal) for token, principal in tokens.items())
        self.warnings = warnings
        """What the file it came from invites (its mode, short tokens): logged once at start."""

    @classmethod
    def from_file(cls, path: str | Path) -> StaticTokenVerifier:
        """Read `token principal` lines; blank lines and `#` comments are skipped."""
        tokens: dict[str, str] = {}
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as error:
            raise TokensFileError(f"cannot read the tokens file {path}: {error.strerror}") from None
        for number, line in enumerate(text.splitlines(), start=1):
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            parts = stripped.split()
            if len(parts) != 2:
                raise TokensFileError(f"{path}, line {number}: expected 'token principal'")
            token, principal = parts
            if token in tokens:
                raise TokensFileError(f"{path}, line {number}: this token appears twice")
            tokens[token] = principal
        if not tokens:
            raise TokensFileError(f"{path} holds no tokens")
        warnings = [line for line in (open_to_others(path, "--auth-tokens-file"),) if line is not None]
        short = sorted(principal for token, principal in tokens.items() if len(token) < SHORT_TOKEN)
        if short:
            named = ", ".join(short[:5]) + (", ..." if len(short) > 5 else "")
            warnings.append(
                f"--auth-tokens-file: {len(short)} token(s) under {SHORT_TOKEN} characters "
                f"(principals: {named}): easy to guess, use long random ones"
            )
        return cls(tokens, tuple(warnings))

    async def verify_token(self, token: str) -> AccessToken | None:
        given = _digest(token)
        found: str | None = None
        for entry in self._entries:
            if hmac.compare_digest(given, entry.digest):
                found = entry.principal
        if found is None:
            return None
        return AccessToken(token=token, client_id=found, scopes=[])


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class RequireBearer:
    """401 without a valid token, 403 without the required scopes; JSON-RPC error bodies.

    For the supervisor's own verifier (`SupervisorConfig.token_verifier`); a server's own auth is
    checked by the SDK's `RequireAuthMiddleware` instead, answering exactly as the SDK does.
    """

    def __init__(self, app: ASGIApp, required_scopes: tuple[str, ...]) -> None:
        self._app = app
        self._required = required_scopes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        user = scope.get("user")
        if not isinstance(user, AuthenticatedUser):
            await send_refusal(send, refusals.unauthorized())
            return
        granted = set(user.access_token.scopes)
        missing = [name for name in self._required if name not in granted]
        if missing:
            await send_refusal(send, refusals.insufficient_scope(missing[0]))
            return
        await self._app(scope, receive, send)
