"""What a shutdown tells the operator: a line now and then while sessions drain, one at the end.

Per-session lines during a shutdown are at DEBUG (`CLOSE_POLICY`): 10,000 sessions make two
lines, not 20,000. The progress line says how many sessions are left, how many calls are in
flight and how much of the grace is left; the summary says how many sessions closed and how
many calls finished during the drain and how many were cut off at its end.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import trio

from actors import RequestOutcome
from supervisor._core._ledger import Ledger
from supervisor._core._snapshots import SessionInfo

logger = logging.getLogger("supervisor._core")

PROGRESS_EVERY = 5.0
"""Seconds between two progress lines while a shutdown drains."""
FINISHED = (RequestOutcome.COMPLETED.value, RequestOutcome.CLIENT_GONE.value, "stateless")
"""Outcomes of calls that ran to an answer (one cut off by the drain is answered too, with an error)."""


class DrainReport:
    """The lines of one shutdown, read from the supervisor's ledger and its calls in flight.

    Starting it and ending it cost O(1): with 10,000 sessions closing, a walk over all of them
    (their statistics) is a measurable share of the whole shutdown. Only a progress line, once
    every `PROGRESS_EVERY` seconds, counts the calls in flight session by session.
    """

    def __init__(
        self,
        ledger: Ledger,
        live: Callable[[], int],
        sessions: Callable[[], list[SessionInfo]],
        stateless: Callable[[], int],
    ) -> None:
        self._ledger = ledger
        self._live = live
        self._sessions = sessions
        self._stateless = stateless
        self._closed_before = ledger.total_closed
        self._finished_before = ledger.finished(FINISHED)
        self._cut_off = 0

    async def progress(self, drain_end: float) -> None:
        """A line every `PROGRESS_EVERY` seconds until cancelled (the drain is over); at the end
        of the grace, what is still in flight is what the drain cuts off."""
        while trio.current_time() < drain_end:
            await trio.sleep_until(min(trio.current_time() + PROGRESS_EVERY, drain_end))
            if trio.current_time() >= drain_end:
                break
            logger.info(
                "draining: %d session(s) left, %d call(s) in flight, %.0f s of the grace left",
                self._live(),
                self._calls(),
                max(0.0, drain_end - trio.current_time()),
            )
        self._cut_off = self._calls()

    def _calls(self) -> int:
        """Calls in flight now (GET streams are not calls: a drain ends them)."""
        return sum(info.in_flight - info.open_streams for info in self._sessions()) + self._stateless()

    def summary(self) -> None:
        ledger = self._ledger
        closed = ledger.total_closed - self._closed_before
        finished = max(0, ledger.finished(FINISHED) - self._finished_before - self._cut_off)
        logger.info(
            "stopped: %d session(s) closed, %d call(s) finished during the drain, %d cut off at its end",
            closed,
            finished,
            self._cut_off,
        )
