"""The actor lifecycle as a pure transition function."""

from __future__ import annotations

import pytest

from actors._reasons import CLOSE_POLICY, CloseReason, RecordFate
from actors._state import (
    ActorEvent,
    ActorState,
    InvalidTransitionError,
    Residence,
    ResidenceEvent,
    accepts_requests,
    ends_streams_at_once,
    next_residence,
    next_state,
)


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


def test_a_session_sleeps_and_wakes_between_awake_and_its_record_alone() -> None:
    residence = Residence.DORMANT  # born from its record (quick open, a wake from the store)
    for event, expected in [
        (ResidenceEvent.WOKE, Residence.AWAKE),
        (ResidenceEvent.SLEPT, Residence.HIBERNATING),
        (ResidenceEvent.WOKE, Residence.AWAKE),
        (ResidenceEvent.EVICTED, Residence.EVICTED),
    ]:
        residence = next_residence(residence, event)
        assert residence is expected


@pytest.mark.parametrize(
    ("residence", "event"),
    [
        (Residence.AWAKE, ResidenceEvent.WOKE),  # an awake session is not woken again
        (Residence.DORMANT, ResidenceEvent.SLEPT),  # only an incarnation can go to sleep
        (Residence.HIBERNATING, ResidenceEvent.SLEPT),
        (Residence.EVICTED, ResidenceEvent.EVICTED),
    ],
)
def test_impossible_residence_moves_are_bugs(residence: Residence, event: ResidenceEvent) -> None:
    with pytest.raises(InvalidTransitionError):
        next_residence(residence, event)


def test_a_wake_taken_as_the_eviction_began_leaves_the_session_evicted() -> None:
    assert next_residence(Residence.EVICTED, ResidenceEvent.WOKE) is Residence.EVICTED


@pytest.mark.parametrize("reason", list(CloseReason))
def test_every_close_reason_says_what_becomes_of_the_record(reason: CloseReason) -> None:
    policy = CLOSE_POLICY[reason]
    # A request that came too late is told to retry exactly when the session lives on somewhere.
    assert policy.retry is (policy.record is not RecordFate.DELETED)
    assert ends_streams_at_once(reason, 1.0) is (reason is CloseReason.KILLED)
