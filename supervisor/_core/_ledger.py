"""What a supervisor has done, counted: sessions created and closed (per reason), sleeps and
wakes, and how requests ended. One owner for every counter `SupervisorStats` reports."""

from __future__ import annotations

from collections import Counter

from actors import CloseReason, RequestOutcome


class Ledger:
    """The supervisor's counters: they only grow, except a live session's served count."""

    def __init__(self) -> None:
        self.created = 0
        self.hibernations = 0
        self.wakes = 0
        self._closed: Counter[str] = Counter()
        self._outcomes: Counter[str] = Counter()
        self._served: Counter[str] = Counter()
        """Requests finished per live session: its closing line says how many."""

    def opened(self) -> None:
        self.created += 1

    def slept(self, *, woke: bool) -> None:
        if woke:
            self.wakes += 1
        else:
            self.hibernations += 1

    def request_ended(
        self, outcome: RequestOutcome | None, *, stateless: bool, session_id: str | None
    ) -> None:
        key = "stateless" if stateless else (outcome.value if outcome is not None else "unknown")
        self._outcomes[key] += 1
        if session_id is not None:
            self._served[session_id] += 1

    def closed(self, session_id: str, reason: CloseReason) -> int:
        """A session closed for `reason`; the requests it served."""
        self._closed[reason.value] += 1
        return self._served.pop(session_id, 0)

    @property
    def total_closed(self) -> int:
        return self._closed.total()

    def finished(self, outcomes: tuple[str, ...]) -> int:
        """Requests that ended with any of `outcomes` (outcome values, or "stateless")."""
        return sum(self._outcomes[name] for name in outcomes)

    def closed_by_reason(self) -> dict[str, int]:
        return dict(self._closed)

    def requests_by_outcome(self) -> dict[str, int]:
        return dict(self._outcomes)
