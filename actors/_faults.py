"""Named moments in an actor's life where a test may inject a fault.

Production actors carry no fault sink and pay one `is None` check per point. Tests (see
`supervisor.testing.FaultPlan`) pass a sink that decides, at each point, whether to kill, stop
or crash the actor there, deterministically and without sleeping.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any, Protocol

import trio
from starlette.types import Message, Send

from actors._messages import ServeRequest
from actors._reasons import CloseReason


class FaultPoint(enum.Enum):
    """Where a fault can be injected; each is reached inside the actor's own task tree."""

    INITIALIZE = "initialize"
    """The session's opening `initialize` request is about to be handed to the transport."""
    BEFORE_HANDOFF = "before_handoff"
    """Any other request's task has started and the transport has not seen it yet."""
    TOOL_RUNNING = "tool_running"
    """The server loop has just taken a `tools/call` request to dispatch it; no answer yet."""
    AFTER_SSE_HEADERS = "after_sse_headers"
    """A POST's SSE response headers went out; its result has not."""
    STREAM_OPEN = "stream_open"
    """A standalone GET stream's headers went out; the stream is open."""
    DURING_CLOSE = "during_close"
    """The actor began closing: deregistered, mailbox shut, in-flight requests still draining."""


class InjectedCrash(Exception):
    """Raised inside a server loop by a fault plan: stands for any bug that crashes the loop."""


class FaultTarget(Protocol):
    """What a fault sink may do to the actor that reached a point."""

    @property
    def session_id(self) -> str: ...

    def kill(self) -> None: ...

    def begin_close(self, reason: CloseReason, grace: float) -> None: ...


class FaultSink(Protocol):
    """What an actor calls at each fault point when it has a sink."""

    async def reached(self, point: FaultPoint, actor: FaultTarget) -> None:
        """Called at `point`; may kill, stop or crash `actor` before returning."""

    async def watch_loop(self, actor: FaultTarget) -> None:
        """Runs beside the actor's server loop; raising here crashes the loop."""


class ToolCallTap:
    """Wraps the server loop's read stream to notice `tools/call` requests as the loop takes them.

    Only actors with a fault sink use it; `last_context` and the rest forward to the SDK's stream.
    """

    def __init__(self, inner: Any, on_tool_call: Callable[[], None]) -> None:
        self._inner = inner
        self._on_tool_call = on_tool_call

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _look(self, item: Any) -> Any:
        if getattr(getattr(item, "message", None), "method", None) == "tools/call":
            self._on_tool_call()
        return item

    async def receive(self) -> Any:
        return self._look(await self._inner.receive())

    def __aiter__(self) -> ToolCallTap:
        return self

    async def __anext__(self) -> Any:
        return self._look(await self._inner.__anext__())

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> ToolCallTap:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> bool | None:
        result: bool | None = await self._inner.__aexit__(*exc_info)
        return result


def tap_tool_calls(
    read_stream: Any, sink: FaultSink, target: FaultTarget, nursery: trio.Nursery
) -> ToolCallTap:
    """The loop's read stream, reaching TOOL_RUNNING (in `nursery`) as each `tools/call` is taken."""

    def on_tool_call() -> None:
        nursery.start_soon(sink.reached, FaultPoint.TOOL_RUNNING, target)

    return ToolCallTap(read_stream, on_tool_call)


async def before_handoff(sink: FaultSink, target: FaultTarget, message: ServeRequest) -> Send:
    """Reach INITIALIZE or BEFORE_HANDOFF; return a `send` that reaches the header points."""
    point = FaultPoint.INITIALIZE if message.method == "initialize" else FaultPoint.BEFORE_HANDOFF
    await sink.reached(point, target)
    after_headers = FaultPoint.STREAM_OPEN if message.ticket.is_stream else FaultPoint.AFTER_SSE_HEADERS
    inner = message.send

    async def send(event: Message) -> None:
        await inner(event)
        if event["type"] == "http.response.start" and any(
            name == b"content-type" and value.startswith(b"text/event-stream")
            for name, value in event.get("headers", ())
        ):
            await sink.reached(after_headers, target)

    return send
