"""Pure classification of request bodies and headers."""

from __future__ import annotations

import pytest

from actors._frames import INVALID_REQUEST, PARSE_ERROR
from supervisor._http._envelope import (
    Envelope,
    MessageKind,
    Rejection,
    accepts,
    classify_body,
    is_handshake_era,
    valid_session_id,
)


def test_request_notification_response() -> None:
    assert classify_body(b'{"jsonrpc":"2.0","id":1,"method":"initialize"}') == Envelope(
        MessageKind.REQUEST, 1, "initialize"
    )
    notification = classify_body(b'{"jsonrpc":"2.0","method":"notifications/initialized"}')
    assert isinstance(notification, Envelope)
    assert notification.kind is MessageKind.NOTIFICATION
    response = classify_body(b'{"jsonrpc":"2.0","id":"a","result":{}}')
    assert isinstance(response, Envelope)
    assert response.kind is MessageKind.RESPONSE


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", PARSE_ERROR),
        (b"\xff\xfe", PARSE_ERROR),
        (b"[]", INVALID_REQUEST),
        (b'[{"jsonrpc":"2.0","id":1,"method":"ping"}]', INVALID_REQUEST),
        (b'"hello"', INVALID_REQUEST),
        (b'{"jsonrpc":"1.0","id":1,"method":"ping"}', INVALID_REQUEST),
        (b'{"jsonrpc":"2.0","id":1,"method":7}', INVALID_REQUEST),
        (b'{"jsonrpc":"2.0","id":true,"method":"ping"}', INVALID_REQUEST),
        (b'{"jsonrpc":"2.0","id":1}', INVALID_REQUEST),
    ],
)
def test_rejections(body: bytes, code: int) -> None:
    result = classify_body(body)
    assert isinstance(result, Rejection)
    assert result.status == 400
    assert result.code == code


def test_session_id_validation() -> None:
    assert valid_session_id("a" * 32)
    assert not valid_session_id("")
    assert not valid_session_id("a" * 257)
    assert not valid_session_id("caf\u00e9")
    assert not valid_session_id("has space")
    assert not valid_session_id("tab\there")
    assert not valid_session_id("del\x7f")
    assert valid_session_id("!~")


def test_protocol_era() -> None:
    assert is_handshake_era(None)
    assert is_handshake_era("2025-11-25")
    assert is_handshake_era("2024-11-05")
    assert not is_handshake_era("2026-07-28")


def test_accept_rules() -> None:
    both = "application/json, text/event-stream"
    assert accepts(both, json_response=False, method="POST")
    assert not accepts("application/json", json_response=False, method="POST")
    assert accepts("application/json", json_response=True, method="POST")
    assert accepts("text/event-stream", json_response=False, method="GET")
    assert not accepts("application/json", json_response=False, method="GET")
    assert accepts("*/*", json_response=False, method="POST")
