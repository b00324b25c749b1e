"""The actor lifecycle as a pure transition function."""

from __future__ import annotations

import pytest

from actors._state import ActorEvent, ActorState, InvalidTransitionError, accepts_requests, next_state


def test_happy_path() -> None:
    state = ActorState.STARTING
    for event, expected in [
        (ActorEvent.STARTED, ActorState.RUNNING),
        (ActorEvent.CLOSE, ActorState.DRAINING),
        (ActorEvent.STOPPED, ActorState.CLOSED),
    ]:
        state = next_state(state, event)
        assert state is expected


def test_close_and_stop_are_idempotent_once_closing() -> None:
    assert next_state(ActorState.DRAINING, ActorEvent.CLOSE) is ActorState.DRAINING
    assert next_state(ActorState.CLOSED, ActorEvent.CLOSE) is ActorState.CLOSED
    assert next_state(ActorState.CLOSED, ActorEvent.STOPPED) is ActorState.CLOSED


def test_closed_while_starting_stays_draining() -> None:
    state = next_state(ActorState.STARTING, ActorEvent.CLOSE)
    assert next_state(state, ActorEvent.STARTED) is ActorState.DRAINING


@pytest.mark.parametrize(
    ("state", "event"),
    [
        (ActorState.RUNNING, ActorEvent.STARTED),
        (ActorState.CLOSED, ActorEvent.STARTED),
    ],
)
def test_impossible_transitions_raise(state: ActorState, event: ActorEvent) -> None:
    with pytest.raises(InvalidTransitionError):
        next_state(state, event)


def test_only_running_accepts_requests() -> None:
    assert [s for s in ActorState if accepts_requests(s)] == [ActorState.RUNNING]
