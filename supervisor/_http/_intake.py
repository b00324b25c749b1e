"""Reading a request body within the size and time limits, before anything looks at it.

The SDK's manager limits the body first (its body-limit middleware), so the supervisor does too:
a declared length over the limit is refused unread, a body that grows past it is refused as soon
as it does, and a body that does not arrive in time gets 408.
"""

from __future__ import annotations

import trio
from starlette.types import Receive, Scope

import supervisor._http._refusals as refusals
from actors import Refusal
from supervisor._http._envelope import header


class ClientLeft(Exception):
    """The client disconnected before its body was in: there is nobody to answer."""


async def read_body(scope: Scope, receive: Receive, *, limit: int, timeout: float) -> bytes | Refusal:
    """The whole body, or the refusal to send; raises `ClientLeft` if the client went away."""
    declared = header(scope["headers"], b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return refusals.payload_too_large(limit)
    chunks: list[bytes] = []
    size = 0
    with trio.move_on_after(timeout):
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientLeft
            chunk = bytes(message.get("body", b""))
            size += len(chunk)
            if size > limit:
                return refusals.payload_too_large(limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)
    return refusals.body_timeout()
