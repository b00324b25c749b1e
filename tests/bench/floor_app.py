"""The floor: a raw ASGI app under hypercorn's trio worker that answers every POST with a fixed body.

The cost of HTTP alone on this stack. It reads the request body, then answers with a fixed JSON-RPC
result and a fixed Mcp-Session-Id, so the load generator's MCP client code works unchanged; only the
request's id is copied into the answer (a byte search, no JSON parsing), so the load generator's
id check holds here too. A notification gets 202, a DELETE 200, as an MCP server would answer them.
`python -m tests.bench.floor_app --bind 127.0.0.1:PORT`
"""

from __future__ import annotations

import argparse
import functools
import re
import signal
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

SESSION_ID = b"0123456789abcdef0123456789abcdef"
ID = re.compile(rb'"id"\s*:\s*(-?\d+|"[^"]*")')
BODY_HEAD = b'{"jsonrpc":"2.0","id":'
BODY_TAIL = b',"result":{"content":[{"type":"text","text":"floor"}],"isError":false}}'
EMPTY_HEADERS = [(b"content-length", b"0"), (b"mcp-session-id", SESSION_ID)]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    found = ID.search(body) if scope["method"] == "POST" else None
    if found is not None:
        payload = BODY_HEAD + found.group(1) + BODY_TAIL
        status = 200
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
            (b"mcp-session-id", SESSION_ID),
        ]
    elif scope["method"] == "POST":
        status, headers, payload = 202, EMPTY_HEADERS, b""
    else:
        status, headers, payload = 200, EMPTY_HEADERS, b""
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def wait_for_signal() -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            return


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bind", required=True)
    options = parser.parse_args(argv)
    config = Config()
    config.bind = [options.bind]
    config.accesslog = None
    config.graceful_timeout = 3.0
    trio.run(functools.partial(serve, app, config, shutdown_trigger=wait_for_signal))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
