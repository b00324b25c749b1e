"""What the supervisor counts as requests go by: durations by method, refusals by status and cause.

Plain counters, no Prometheus objects: the stats snapshot copies them, and `/metrics`,
`/admin/stats` and `SessionSupervisor.stats()` all read that one snapshot. Labels are bounded:
a method outside the known MCP methods counts as `other`; no session id or principal is a label.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping

import attrs

KNOWN_METHODS = frozenset(
    {
        "initialize",
        "ping",
        "tools/list",
        "tools/call",
        "resources/list",
        "resources/templates/list",
        "resources/read",
        "resources/subscribe",
        "resources/unsubscribe",
        "prompts/list",
        "prompts/get",
        "completion/complete",
        "logging/setLevel",
        "tasks/get",
        "tasks/list",
        "tasks/result",
        "tasks/cancel",
        "server/discover",
    }
)
OTHER = "other"

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""Upper bounds in seconds (Prometheus' defaults, extended for long tool calls); +Inf is implied."""


def method_label(method: str | None) -> str:
    """A known method as itself; any notification as `notification`; a client's response (no method)
    as `response`; anything else as `other`."""
    if method is None:
        return "response"
    if method in KNOWN_METHODS:
        return method
    return "notification" if method.startswith("notifications/") else OTHER


@attrs.frozen
class Histogram:
    """Counts per bucket (not cumulative; the last is +Inf), their sum, their total."""

    counts: tuple[int, ...]
    total: float

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[str, int]]:
        """(upper bound, observations at or under it), +Inf last: the exposition format's buckets."""
        running = 0
        rows = []
        for bound, count in zip((*(str(b) for b in BUCKETS), "+Inf"), self.counts, strict=True):
            running += count
            rows.append((bound, running))
        return rows


@attrs.define
class Tally:
    """The mutable counters, owned by one supervisor."""

    _durations: dict[str, list[float]] = attrs.field(factory=dict)
    """Per method label: the bucket counts, then the sum of observations."""
    _refusals: dict[tuple[int, str], int] = attrs.field(factory=dict)

    def took(self, label: str, seconds: float) -> None:
        """One request of `label` (a method label, or `GET`, `DELETE`, `unparsed`) took `seconds`."""
        row = self._durations.get(label)
        if row is None:
            row = self._durations[label] = [0.0] * (len(BUCKETS) + 2)
        row[bisect.bisect_left(BUCKETS, seconds)] += 1
        row[-1] += seconds

    def refused(self, status: int, cause: str) -> None:
        key = (status, cause)
        self._refusals[key] = self._refusals.get(key, 0) + 1

    def durations(self) -> Mapping[str, Histogram]:
        return {
            label: Histogram(tuple(int(count) for count in row[:-1]), row[-1])
            for label, row in sorted(self._durations.items())
        }

    def refusals(self) -> Mapping[tuple[int, str], int]:
        return dict(sorted(self._refusals.items()))
