"""One actor's close as it goes: the steps it has taken, in order, and its drain deadline.

The actor decides when a close begins and what it means (its transitions, `actors/_state.py`);
this object carries out the steps that touch the mailbox, the idle clock and the incarnation, and
records each, so the close ordering in `SessionActor.close_steps` is observable.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol

import attrs
import trio
from opentelemetry.trace import Span, Tracer

from actors._idle import IdleClock
from actors._mailbox import Mailbox
from actors._reasons import CLOSE_POLICY, CloseReason, CloseStep
from actors._standalone import StreamSlot
from actors._tracing import started_span


class Closable(Protocol):
    """What a close does to an incarnation."""

    def set_drain_deadlines(self, drain_end: float) -> None: ...

    def end_streams(self) -> None: ...

    def say_when_cut(self, text: str) -> None: ...


@attrs.define(eq=False)
class Closing:
    """The close of one actor: its steps so far and until when in-flight requests are waited for."""

    _mailbox: Mailbox
    _clock: IdleClock
    _streams: StreamSlot
    steps: list[CloseStep] = attrs.field(init=False, factory=list)
    drain_end: float = attrs.field(init=False, default=math.inf)
    """When in-flight requests stop being waited for; incarnations made later keep it."""
    cut_short: str | None = attrs.field(init=False, default=None)
    """What calls cut off at `drain_end` are told (`ClosePolicy.cut_short`); later incarnations too."""
    _span: Span | None = attrs.field(init=False, default=None)

    def take(self, steps: tuple[CloseStep, ...], deregister: Callable[[], None]) -> None:
        """The first close's steps, in order: forget the id (404 from now on), shut the mailbox."""
        for step in steps:
            if step is CloseStep.DEREGISTERED:
                deregister()
            elif step is CloseStep.MAILBOX_CLOSED:
                self._mailbox.close()
                self._clock.stop()
            self.steps.append(step)

    def began(
        self, reason: CloseReason, incarnation: Closable | None, tracer: Tracer | None, session_id: str
    ) -> None:
        """The first close: from now on, calls the drain cuts off are told the reason's words (if it
        has any); traced from here to the actor's end, under whatever began it (a DELETE's span)."""
        self.cut_short = text = CLOSE_POLICY[reason].cut_short
        if text is not None and incarnation is not None:
            incarnation.say_when_cut(text)
        self._span = started_span(tracer, "mcp.session.close", session_id)
        if self._span is not None:
            self._span.set_attribute("mcp.session.close_reason", reason.value)

    def carry_over(self, incarnation: Closable) -> None:
        """A fresh incarnation made while closing (the request that woke it was on its way):
        it drains as told and says the same words."""
        if self.drain_end < math.inf:
            incarnation.set_drain_deadlines(self.drain_end)
        if self.cut_short is not None:
            incarnation.say_when_cut(self.cut_short)

    def tighten(self, grace: float, incarnation: Closable | None) -> None:
        """Bring the drain deadline to `grace` from now, if that is sooner (never later)."""
        drain_end = min(self.drain_end, trio.current_time() + max(grace, 0.0))
        if drain_end < self.drain_end:
            self.drain_end = drain_end
            if incarnation is not None:
                incarnation.set_drain_deadlines(drain_end)

    def end_streams(self, incarnation: Closable | None, reason: CloseReason | None) -> None:
        """End the standalone GET stream (the one the actor holds, or its incarnation's): a drain
        must not wait for it."""
        self.once(CloseStep.STREAMS_ENDED)
        self._streams.end(reason)
        if incarnation is not None:
            incarnation.end_streams()

    def once(self, step: CloseStep) -> None:
        if step not in self.steps:
            self.steps.append(step)

    def took(self, step: CloseStep) -> None:
        self.steps.append(step)
        if step is CloseStep.STOPPED and self._span is not None:
            self._span.end()
            self._span = None
