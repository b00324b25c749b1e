"""Loggers that put the session id in every record (and never a token)."""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from contextvars import ContextVar
from typing import Any, Protocol


class SessionLog(logging.LoggerAdapter[logging.Logger]):
    """Prefix every message with the session id and attach it as `record.session_id`."""

    def __init__(self, logger: logging.Logger, session_id: str) -> None:
        super().__init__(logger, {"session_id": session_id})

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        extra = self.extra or {}
        kwargs["extra"] = {**extra, **kwargs.get("extra", {})}
        return f"[session {extra.get('session_id', '-')}] {msg}", kwargs


class Serving(Protocol):
    """What a log filter may ask of the session being served (the actor, seen from below)."""

    @property
    def session_id(self) -> str: ...

    @property
    def closing(self) -> bool: ...


SERVING: ContextVar[Serving | None] = ContextVar("serving_session", default=None)
"""The session whose actor task (or request task) is running: set by the actor for its own tasks."""

RACING_LOGGERS = ("mcp.server.streamable_http",)
"""SDK loggers that report, as errors, a request cut short because its session is closing."""


class ClosingSessionFilter(logging.Filter):
    """Records of the SDK transport emitted while its session closes go out at DEBUG.

    A POST racing a DELETE (or an idle timeout, or a revocation) ends with the session's loop gone
    under the request: an expected race, answered to the client by the supervisor, not an error.
    Records from sessions that are not closing, and from outside any session, are left alone. Every
    record emitted while a session is served gets its id as `record.session_id`.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        serving = SERVING.get()
        if serving is not None:
            record.session_id = serving.session_id
            if serving.closing and record.levelno > logging.DEBUG:
                record.levelno, record.levelname = logging.DEBUG, "DEBUG"
                return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


def quiet_closing_races() -> None:
    """Install the filter on the SDK loggers it is for (idempotent: one filter object per logger)."""
    for name in RACING_LOGGERS:
        target = logging.getLogger(name)
        if not any(isinstance(existing, ClosingSessionFilter) for existing in target.filters):
            target.addFilter(ClosingSessionFilter())
