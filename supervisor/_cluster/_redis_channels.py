"""The cluster's messages on Redis pub/sub: sealed when sent, checked when heard.

With a cluster secret every message carries an HMAC over its text and its channel, and its
sending time: a node ignores one that fails the check or is older than `MESSAGE_WINDOW`.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from supervisor._cluster._cluster_secret import MESSAGE_WINDOW, ClusterSecret, unsealed


def sealed_message(message: dict[str, Any], node_id: str, channel: str, secret: ClusterSecret | None) -> str:
    """The text to publish: the message, who sends it and when, sealed for `channel` if there is a secret."""
    text = json.dumps({**message, "from": node_id, "at": time.time()}, separators=(",", ":"))
    return text if secret is None else secret.seal(channel, text)


async def messages_of(
    pubsub: Any, secret: ClusterSecret | None, refused: Callable[[str], None]
) -> AsyncIterator[dict[str, Any]]:
    """The messages heard on `pubsub` as sent by a node of this cluster (`refused` told of others)."""
    async for message in pubsub:
        if message.get("type") != "message":
            continue
        channel = str(message.get("channel"))
        data = opened_message(channel, message.get("data"), secret)
        if data is None and secret is not None and isinstance(message.get("data"), str):
            refused(channel)
        elif data is not None:
            yield data


def opened_message(channel: str, text: object, secret: ClusterSecret | None) -> dict[str, Any] | None:
    """A message as sent by a node of this cluster; None otherwise (with a secret: refused)."""
    if not isinstance(text, str):
        return None
    opened = unsealed(text) if secret is None else secret.unseal(channel, text)
    try:
        data = json.loads(opened) if opened is not None else None
    except ValueError:
        data = None
    if secret is not None and not (
        isinstance(data, dict)
        and isinstance(data.get("at"), int | float)
        and abs(time.time() - data["at"]) <= MESSAGE_WINDOW
    ):
        return None
    return data if isinstance(data, dict) else None
