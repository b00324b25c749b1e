"""The one SSE parser of the tests: events as their fields, and the JSON-RPC messages they carry."""

from __future__ import annotations

import json
from typing import Any


def sse_events(text: str | bytes) -> list[dict[str, str]]:
    """The SSE events of a body: their id, retry, event and data fields (comments dropped)."""
    if isinstance(text, bytes):
        text = text.decode()
    events: list[dict[str, str]] = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            name, _, value = line.partition(":")
            if name in {"id", "retry", "event", "data"}:
                fields[name] = value.strip()
        if fields:
            events.append(fields)
    return events


def sse_messages(text: str | bytes) -> list[dict[str, Any]]:
    """The JSON-RPC messages in an SSE body, in order (events without data, like priming, skipped)."""
    return [json.loads(event["data"]) for event in sse_events(text) if event.get("data")]


def message_in(line: str) -> dict[str, Any] | None:
    """The JSON-RPC message on one `data:` line of a stream read line by line, if it carries one."""
    if line.startswith("data:") and line[5:].strip():
        message: dict[str, Any] = json.loads(line[5:])
        return message
    return None
