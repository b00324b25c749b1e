"""Tools written for asyncio, on the supervisor's trio: `asyncio_tool` and the loop it runs on.

The server runs on trio, so `await asyncio.sleep(...)` (or any asyncio-only library) in a tool
fails with "no running event loop". trio-asyncio (the `asyncio` extra) runs an asyncio loop inside
trio: `asyncio_tool` wraps an `async def` written for asyncio so that it runs there, as a trio
task's child, cancelled with it (a DELETE, a kill, a client that leaves in the 2026-07-28 era, a
shutdown). The loop is opened by the supervisor the first time a wrapped function runs, lives as
long as the supervisor, and is shared by all its sessions. Each request task says which
supervisor's loop is its own (`BRIDGE`), the tool sees it through the request's context.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any, ParamSpec, TypeVar

import trio

P = ParamSpec("P")
T = TypeVar("T")

NOT_INSTALLED = (
    "asyncio_tool needs trio-asyncio: pip install 'trio-mcp-supervisor[asyncio]' "
    "(or pip install 'trio-asyncio>=0.16')"
)
HINT = (
    "a tool used asyncio ('no running event loop'): the server runs on trio; wrap an async def "
    "written for asyncio in supervisor.asyncio_tool (docs/embedding.md, 'Tools written for asyncio')"
)


class AsyncioBridge:
    """One supervisor's asyncio loop (trio-asyncio), opened on first use, closed with the supervisor."""

    def __init__(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        self._loop: Any = None
        self._opened: trio.Event | None = None

    async def loop(self) -> Any:
        if self._opened is None:
            self._opened = trio.Event()
            try:
                self._loop = await self._nursery.start(_run_loop)
            finally:
                self._opened.set()
        await self._opened.wait()
        if self._loop is None:
            raise RuntimeError(NOT_INSTALLED)
        return self._loop


async def _run_loop(*, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
    try:
        import trio_asyncio
    except ImportError:
        task_status.started(None)
        return
    async with trio_asyncio.open_loop() as loop:
        task_status.started(loop)
        await trio.sleep_forever()


@asynccontextmanager
async def open_bridge() -> Any:
    """An `AsyncioBridge` for the block's duration (its loop, if opened, closes at the end)."""
    async with trio.open_nursery() as nursery:
        yield AsyncioBridge(nursery)
        nursery.cancel_scope.cancel()


class AsyncioHint(logging.Filter):
    """On the SDK's tool logger: the first tool that failed for want of an asyncio loop gets one
    line saying what to do (the traceback alone says "no running event loop")."""

    def __init__(self) -> None:
        super().__init__()
        self._said = False

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._said and record.exc_info and _wants_asyncio(record.exc_info[1]):
            self._said = True
            logging.getLogger("supervisor").warning("%s", HINT)
        return True


def _wants_asyncio(error: BaseException | None) -> bool:
    seen = 0
    while error is not None and seen < 8:
        if isinstance(error, RuntimeError) and "no running event loop" in str(error):
            return True
        error, seen = error.__cause__ or error.__context__, seen + 1
    return False


SDK_TOOL_LOGGER = "mcp.server.mcpserver.server"
"""Where the SDK logs a tool's (or a resource's, a prompt's) unexpected exception."""


BRIDGE: ContextVar[AsyncioBridge | None] = ContextVar("mcp_supervisor_asyncio", default=None)
"""The bridge of the supervisor serving the current request (set by each request task)."""


def asyncio_tool(function: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Run `function`, an `async def` written for asyncio, on the supervisor's asyncio loop.

    Use it under the SDK's decorator: `@server.tool()` then `@asyncio_tool`; the same for
    `@server.resource(...)` and `@server.prompt()`. The tool's signature (its schema) is kept.
    """
    if not inspect.iscoroutinefunction(function):
        raise TypeError(f"asyncio_tool wraps an async def; {function!r} is not one")

    @functools.wraps(function)
    async def on_asyncio(*args: P.args, **kwargs: P.kwargs) -> T:
        bridge = BRIDGE.get()
        if bridge is None:
            raise RuntimeError("asyncio_tool: called outside a request served by a supervisor")
        loop = await bridge.loop()
        import trio_asyncio

        result: T = await trio_asyncio.aio_as_trio(function, loop=loop)(*args, **kwargs)
        return result

    return on_asyncio
