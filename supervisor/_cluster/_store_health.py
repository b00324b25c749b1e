"""Whether the store answers, as this node sees it: every call bounded by the budget, counted.

A call that fails or outlasts the budget raises `StoreUnavailable` and marks the store down; the
next one that answers marks it up again. Both changes are logged once, not per call. A read (an
idempotent call) that found its connection closed is tried once more at once, within the same
budget: a link that heals closes the connections the client still held, and the first request
after it must not be the one that finds out.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TypeVar

import attrs
import trio
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Tracer

logger = logging.getLogger("supervisor._redis_store")
T = TypeVar("T")


class StoreUnavailable(Exception):
    """The store did not answer within the budget, or the call failed."""


async def or_none(question: Awaitable[T]) -> T | None:
    """A request's question to the store: its answer, or None when the store does not answer."""
    try:
        return await question
    except StoreUnavailable:
        return None


@attrs.frozen(kw_only=True)
class StoreHealth:
    """The store as this node last saw it."""

    up: bool
    since: float
    """Seconds since the epoch when it last changed between up and down."""
    errors: int
    operations: dict[str, int]
    """Store calls made, by kind: what docs/scale-out.md's operation counts are read from."""
    refused: dict[str, int] = attrs.field(factory=dict)
    """Records and messages that failed the cluster secret's check, by kind (`record`, `message`)."""


class HealthWatch:
    """Runs store calls within the budget and keeps what they say of the store's health."""

    def __init__(self, budget: float, closed_errors: tuple[type[BaseException], ...] = ()) -> None:
        self._budget = budget
        self._closed_errors = closed_errors
        """What the client raises for a connection found closed (coredis's `ConnectionError`)."""
        self.up = True
        self._since = time.time()
        self._errors = 0
        self._operations: Counter[str] = Counter()
        self._refused: Counter[str] = Counter()
        self.tracer: Tracer | None = None
        """Spans for the store calls made for a traced request (`SupervisorConfig.tracer_provider`)."""

    def health(self) -> StoreHealth:
        return StoreHealth(
            up=self.up,
            since=self._since,
            errors=self._errors,
            operations=dict(self._operations),
            refused=dict(self._refused),
        )

    def refused(self, kind: str) -> None:
        """A record or message failed the cluster secret's check."""
        self._refused[kind] += 1

    async def bounded(self, kind: str, call: Awaitable[T], budget: float | None = None) -> T:
        """Run one store call within the budget; StoreUnavailable if it fails or takes longer."""
        return await self._run(kind, lambda: call, again=False, budget=budget)

    async def read(self, kind: str, make_call: Callable[[], Awaitable[T]]) -> T:
        """An idempotent call within the budget, tried once more if its connection was found closed."""
        return await self._run(kind, make_call, again=True, budget=None)

    async def _run(
        self, kind: str, make_call: Callable[[], Awaitable[T]], *, again: bool, budget: float | None
    ) -> T:
        if self.tracer is not None and trace.get_current_span().get_span_context().is_valid:
            # A child of the request it is made for; the node's own rounds (renewals) are not traced.
            attributes = {"db.system.name": "redis", "db.operation.name": kind}
            with self.tracer.start_as_current_span(
                f"redis {kind}", kind=SpanKind.CLIENT, attributes=attributes
            ):
                return await self._run_bounded(kind, make_call, again=again, budget=budget)
        return await self._run_bounded(kind, make_call, again=again, budget=budget)

    async def _run_bounded(
        self, kind: str, make_call: Callable[[], Awaitable[T]], *, again: bool, budget: float | None
    ) -> T:
        self._operations[kind] += 1
        with trio.move_on_after(self._budget if budget is None else budget) as scope:
            while True:
                try:
                    answer = await make_call()
                except StoreUnavailable:
                    raise
                except Exception as error:
                    if scope.cancel_called:
                        break  # the client turned the budget's cancellation into an error of its own
                    if again and isinstance(error, self._closed_errors):
                        again = False
                        continue
                    self._failed(error)
                    raise StoreUnavailable(str(error)) from None
                self._mark(True)
                return answer
        self._failed(None)
        raise StoreUnavailable("no answer within the budget")

    def _failed(self, error: BaseException | None) -> None:
        self._errors += 1
        self._mark(False, error)

    def _mark(self, up: bool, error: BaseException | None = None) -> None:
        if up != self.up:
            self.up, self._since = up, time.time()
            if up:
                logger.warning("session store is reachable again")
            else:
                logger.error("session store unreachable: %s", error or "no answer within the budget")
