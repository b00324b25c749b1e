"""How `mcp-supervisor serve` logs: stdlib logging, text or JSON, the session id on every record.

The session id comes from the context, not from the logger: the actor sets `actors._log.SERVING`
for its own tasks and its request tasks, so a filter on the *handler* stamps every record emitted
while a session is served, the SDK's and a tool's own included. An embedding program can install
`SessionContextFilter` on its own handlers the same way.
"""

from __future__ import annotations

import json
import logging
import logging.config
import time
from pathlib import Path
from typing import Any

from actors import SERVING

REQUEST_FIELDS = ("client", "http_method", "path", "method", "status", "duration_ms")
"""What an access-log record carries besides its message (`supervisor.access`)."""


class SessionContextFilter(logging.Filter):
    """Stamp `session_id` (and `principal`, when known) on every record emitted while serving one."""

    def filter(self, record: logging.LogRecord) -> bool:
        serving = SERVING.get()
        if serving is not None:
            if not hasattr(record, "session_id"):
                record.session_id = serving.session_id
            principal = getattr(serving, "principal", None)
            if principal is not None and not hasattr(record, "principal"):
                record.principal = getattr(principal, "client_id", None)
        return True


class TextFormatter(logging.Formatter):
    """`time level logger: [session id] message`; the prefix only where the message lacks it."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        text = super().formatMessage(record)
        session_id = getattr(record, "session_id", None)
        if session_id is not None and f"[session {session_id}]" not in text:
            head = f"{record.name}: "
            text = text.replace(head, f"{head}[session {session_id}] ", 1)
        return text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, session_id, principal, request fields."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        session_id = getattr(record, "session_id", None)
        if session_id is not None:
            # The session id is a field here: no need to repeat it in the message.
            message = message.removeprefix(f"[session {session_id}] ")
        document: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": message,
        }
        for name in ("session_id", "principal", *REQUEST_FIELDS):
            value = getattr(record, name, None)
            if value is not None:
                document[name] = value
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str)


def configure_logging(level: str, log_format: str, config_file: str | None = None) -> None:
    """The root handler: `--log-config FILE` (a dictConfig as JSON) wins over level and format."""
    if config_file is not None:
        try:
            logging.config.dictConfig(json.loads(Path(config_file).read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError, AttributeError, ImportError) as error:
            raise ValueError(f"--log-config: cannot use {config_file}: {error}") from None
        return
    handler = logging.StreamHandler()
    handler.addFilter(SessionContextFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The forwarding client's own line per request (supervisor/_http/_forward.py) is noise below DEBUG.
    logging.getLogger("httpx2").setLevel(logging.DEBUG if level.upper() == "DEBUG" else logging.WARNING)
