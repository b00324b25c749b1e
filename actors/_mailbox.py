"""An actor's mailbox: a bounded memory channel of requests, and what to do with the leftovers."""

from __future__ import annotations

from collections.abc import Callable

import attrs
import trio

from actors._messages import Admission, ServeRequest
from actors._reasons import RequestOutcome


@attrs.define(eq=False)
class Mailbox:
    """Requests waiting for their actor, in order; senders wait (bounded) for room."""

    size: int
    _send: trio.MemorySendChannel[ServeRequest] = attrs.field(init=False)
    _receive: trio.MemoryReceiveChannel[ServeRequest] = attrs.field(init=False)
    _reading: bool = attrs.field(init=False, default=False)

    def __attrs_post_init__(self) -> None:
        self._send, self._receive = trio.open_memory_channel[ServeRequest](self.size)

    @property
    def queued(self) -> int:
        """Requests waiting in the mailbox or waiting for room in it."""
        stats = self._send.statistics()
        return stats.current_buffer_used + stats.tasks_waiting_send

    async def put(self, message: ServeRequest, timeout: float) -> Admission:
        """Queue `message`, waiting at most `timeout` for room (BUSY after that; GONE once closed)."""
        try:
            try:
                # Room in the mailbox is the usual case: no timer needed for it.
                self._send.send_nowait(message)
                return Admission.ACCEPTED
            except trio.WouldBlock:
                with trio.move_on_after(timeout):
                    await self._send.send(message)
                    return Admission.ACCEPTED
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            return Admission.GONE
        return Admission.BUSY

    def close(self) -> None:
        """Nothing new gets in; what is queued can still be taken (or rejected)."""
        self._send.close()

    async def take(self) -> ServeRequest | None:
        """The next request; None once the mailbox is closed and empty."""
        try:
            return await self._receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            return None

    @property
    def waiting_reader(self) -> bool:
        """Empty, and its reader waits in `deliver`: a request may skip it and be taken at once."""
        return self._reading and not self.queued

    async def deliver(self, take: Callable[[ServeRequest], None]) -> None:
        """Hand each request to `take` as it comes, until the mailbox is closed and empty."""
        self._reading = True
        try:
            async for message in self._receive:
                take(message)
                # Do not keep the last request (its scope, closures and context) alive while idle.
                del message
        finally:
            self._reading = False

    def reject_leftovers(self) -> None:
        """Answer what is still queued as rejected: it never reached a transport."""
        while True:
            try:
                message = self._receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
            message.ticket.finish(RequestOutcome.REJECTED)
        self._receive.close()
