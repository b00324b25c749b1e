"""The stateless requests: 2026-07-28-era requests, served by the SDK's own stateless manager.

Those requests carry no session, so there is no actor; they still run as children of a
nursery the supervisor owns, so they are counted, drained at shutdown and cancelled when
their client leaves, exactly like session requests.
"""

from __future__ import annotations

import logging
from typing import Any

import trio
from mcp.server.lowlevel.server import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

from actors import BRIDGE, AsyncioBridge, RequestOutcome, ServeRequest, sharing_lifespan
from supervisor._core._config import SupervisorConfig

logger = logging.getLogger("supervisor._stateless")


class StatelessRequests:
    """A nursery of stateless requests in front of the SDK's stateless manager."""

    def __init__(
        self,
        server: Server[Any],
        config: SupervisorConfig,
        lifespan_state: Any,
        *,
        asyncio: AsyncioBridge | None = None,
    ) -> None:
        self.asyncio = asyncio
        """The supervisor's asyncio loop for tools wrapped in `asyncio_tool`."""
        self._manager = StreamableHTTPSessionManager(
            sharing_lifespan(server, lifespan_state),
            json_response=config.json_response,
            stateless=True,
            security_settings=None,  # checked once at the front of the ASGI app
            max_request_body_size=config.max_request_body_size,
        )
        self._kill_grace = config.kill_grace
        self._nursery: trio.Nursery | None = None
        self._idle_scope = trio.CancelScope()
        self._requests_scope = trio.CancelScope()
        self.stopped = trio.Event()

    @property
    def accepting(self) -> bool:
        return self._nursery is not None and not self._idle_scope.cancel_called

    @property
    def in_flight(self) -> int:
        return len(self._nursery.child_tasks) if self._nursery is not None else 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            async with self._manager.run():
                with self._requests_scope:
                    async with trio.open_nursery() as nursery:
                        self._nursery = nursery
                        task_status.started()
                        with self._idle_scope:
                            await trio.sleep_forever()
        finally:
            self._nursery = None
            self.stopped.set()

    def submit(self, message: ServeRequest) -> bool:
        """Start the request as a child task in the caller's context; False once closing."""
        if not self.accepting:
            return False
        assert self._nursery is not None
        message.context.run(self._nursery.start_soon, self._serve, message)
        return True

    def close(self, grace: float) -> None:
        """Take nothing new; let what runs finish within `grace`, then cancel it."""
        self._idle_scope.cancel()
        deadline = trio.current_time() + max(grace, 0.0) + self._kill_grace
        self._requests_scope.deadline = min(self._requests_scope.deadline, deadline)

    async def _serve(self, message: ServeRequest) -> None:
        BRIDGE.set(self.asyncio)
        ticket = message.ticket
        outcome = RequestOutcome.ABORTED
        try:
            with ticket.cancel_scope:
                await self._manager.handle_request(message.scope, message.receive, message.send)
                outcome = RequestOutcome.COMPLETED
            if ticket.cancel_scope.cancelled_caught:
                outcome = RequestOutcome.CLIENT_GONE
        except Exception:
            logger.exception("stateless request failed")
            outcome = RequestOutcome.FAILED
        finally:
            ticket.finish(outcome)
