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
from supervisor._core._snapshots import SessionInfo, SupervisorStats

logger = logging.getLogger("supervisor._core")

PROGRESS_EVERY = 5.0
"""Seconds between two progress lines while a shutdown drains."""
FINISHED = (RequestOutcome.COMPLETED.value, RequestOutcome.CLIENT_GONE.value, "stateless")
"""Outcomes of calls that ran to an answer (one cut off by the drain is answered too, with an error)."""


class DrainReport:
    """The lines of one shutdown, read from the supervisor's stats and its calls in flight."""

    def __init__(
        self, stats: Callable[[], SupervisorStats], sessions: Callable[[], list[SessionInfo]]
    ) -> None:
        self._stats = stats
        self._sessions = sessions
        self._before = stats()
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
                self._stats().live,
                self._calls(),
                max(0.0, drain_end - trio.current_time()),
            )
        self._cut_off = self._calls()

    def _calls(self) -> int:
        """Calls in flight now (GET streams are not calls: a drain ends them)."""
        served = sum(info.in_flight - info.open_streams for info in self._sessions())
        return served + self._stats().stateless_in_flight

    def summary(self) -> None:
        before, after = self._before, self._stats()
        closed = after.total_closed - before.total_closed
        finished = max(0, _delta(before, after, FINISHED) - self._cut_off)
        logger.info(
            "stopped: %d session(s) closed, %d call(s) finished during the drain, %d cut off at its end",
            closed,
            finished,
            self._cut_off,
        )


def _delta(before: SupervisorStats, after: SupervisorStats, outcomes: tuple[str, ...]) -> int:
    return sum(after.requests.get(name, 0) - before.requests.get(name, 0) for name in outcomes)
