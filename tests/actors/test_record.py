"""A session as a value: `SessionRecord` round-trips through JSON, and a session is rebuilt from it."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from actors import UnreadParams
from supervisor import Principal, SessionRecord, open_supervisor
from tests.actors.test_hibernation import HIBERNATE, awake, config, recording_server
from tests.support.helpers import rpc
from tests.support.inprocess import open_in_process, post

_text = st.text(max_size=20)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=10,
)
_principals = st.none() | st.builds(
    Principal, client_id=_text, issuer=st.none() | _text, subject=st.none() | _text
)
_times = st.floats(min_value=0, max_value=4e9, allow_nan=False)
records = st.builds(
    SessionRecord,
    session_id=_text,
    principal=_principals,
    client_params=st.none() | st.dictionaries(_text, _json, max_size=4),
    initialized=st.booleans(),
    log_level=st.none() | st.sampled_from(["debug", "info", "error"]),
    subscriptions=st.lists(_text, max_size=4, unique=True).map(tuple),
    created_at=_times,
    last_active_at=_times,
)


@given(records)
def test_a_record_round_trips_through_json(record: SessionRecord) -> None:
    assert SessionRecord.from_json(record.to_json()) == record


@pytest.mark.parametrize(
    "text",
    ["", "[]", "{}", '{"format": 1}', '{"format": 2, "session_id": "x"}', '{"format": 1, "session_id": 3}'],
)
def test_anything_else_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="record"):
        SessionRecord.from_json(text)


def test_each_handshake_message_changes_the_record_and_nothing_else_does() -> None:
    record = SessionRecord(session_id="s")
    record = record.after("initialize", {"protocolVersion": "2025-06-18", "clientInfo": {"name": "c"}})
    assert record.opened and record.protocol_version == "2025-06-18" and not record.initialized
    record = record.after("notifications/initialized", None)
    record = record.after("logging/setLevel", {"level": "debug"})
    record = record.after("logging/setLevel", {"level": "error"})
    for method, uri in [("subscribe", "a"), ("subscribe", "b"), ("unsubscribe", "a"), ("subscribe", "c")]:
        record = record.after(f"resources/{method}", {"uri": uri})
    assert record.after("tools/call", {"name": "x"}) is record
    assert record.after("resources/subscribe", {"uri": 5}) is record
    assert (record.initialized, record.log_level, record.subscriptions) == (True, "error", ("b", "c"))
    replayed: list[dict[str, Any]] = [json.loads(body) for body in record.replay()]
    assert [message["method"] for message in replayed] == [
        "initialize",
        "notifications/initialized",
        "logging/setLevel",
        "resources/subscribe",
        "resources/subscribe",
    ]
    assert replayed[0]["params"]["clientInfo"] == {"name": "c"}
    assert record.initialize_params == {"protocolVersion": "2025-06-18", "clientInfo": {"name": "c"}}
    assert "id" not in replayed[1]


@pytest.mark.filterwarnings("ignore:The logging capability is deprecated")
async def test_a_session_rebuilt_from_its_json_record_is_where_it_was(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Hibernate, dump the record to JSON, end the session, restore it from the JSON: same id, same
    level and subscriptions in the woken loop, no new initialize from the client."""
    calls: list[tuple[str, str]] = []
    async with open_supervisor(recording_server(calls), config()) as supervisor:
        session_id = await open_in_process(supervisor)
        for request_id, (method, params) in enumerate(
            [("logging/setLevel", {"level": "warning"}), ("resources/subscribe", {"uri": "test://kept"})],
            start=10,
        ):
            assert (await post(supervisor, rpc(method, request_id, params), session_id)).status == 200
        await trio.sleep(HIBERNATE + 1)
        assert not awake(supervisor, session_id)
        actor = supervisor.route(session_id)
        assert actor is not None
        stored = actor.record.to_json()
        assert await supervisor.close_session(session_id)
        assert (await post(supervisor, rpc("ping", 19), session_id)).status == 404
        calls.clear()
        restored = await supervisor.restore(SessionRecord.from_json(stored))
        assert not isinstance(restored, type(None))
        assert (await post(supervisor, rpc("ping", 20), session_id)).status == 200
        assert calls == [("level", "warning"), ("subscribe", "test://kept")]
        record = supervisor.route(session_id)
        assert record is not None and record.record.subscriptions == ("test://kept",)


def test_a_record_is_stored_compactly_and_either_shape_reads_back() -> None:
    """Issue 26.3: what a record costs in Redis. Fields at their default are left out and the
    client's params are nested, not quoted; a record in the older, full shape (a node not yet
    upgraded wrote it) reads back the same, and so does the new one on an older reader's terms
    (missing fields take their defaults, params as an object)."""
    record = SessionRecord(
        session_id="n1." + "a" * 32, principal=Principal("alice"), created_at=10.5, last_active_at=11.0
    ).after("initialize", {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "c"}})
    text = record.to_json()
    assert '\\"' not in text and "null" not in text and "subscriptions" not in text
    assert json.loads(text)["client_params"] == record.initialize_params
    assert SessionRecord.from_json(text) == record
    full: dict[str, Any] = {
        "client_params": record.client_params,
        "created_at": 10.5,
        "format": 1,
        "initialized": False,
        "last_active_at": 11.0,
        "log_level": None,
        "principal": {"client_id": "alice", "issuer": None, "subject": None},
        "session_id": record.session_id,
        "subscriptions": [],
    }
    assert SessionRecord.from_json(json.dumps(full)) == record


def test_a_record_whose_params_are_stored_apart_needs_them_to_be_read() -> None:
    params = {"protocolVersion": "2025-11-25", "capabilities": {"experimental": {"x": "y" * 600}}}
    record = SessionRecord(session_id="a." + "1" * 32, principal=Principal("alice"), client_params=params)
    text = record.to_json(params_ref="r1")
    assert 'client_params"' not in text and '"client_params_ref":"r1"' in text
    shared = {"r1": record.client_params}
    assert SessionRecord.from_json(text, shared.get) == record
    with pytest.raises(UnreadParams) as unread:
        SessionRecord.from_json(text)
    assert unread.value.ref == "r1"
    with pytest.raises(UnreadParams):
        SessionRecord.from_json(text, lambda ref: None)
