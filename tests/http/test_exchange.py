"""What `Exchange.send` lets through to the client, message by message (ASGI messages recorded).

A plain (not SSE) head waits for its body so both go out under one bounded scope; a head whose
body never came was never seen, so the unfinished answer is a whole error, not a 200 cut short.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import Message

from actors import RequestTicket
from supervisor._http._exchange import Exchange, ExchangeState

JSON_HEAD: Message = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"application/json"), (b"content-length", b"2")],
}
SSE_HEAD: Message = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/event-stream")],
}


def exchange(sent: list[Message], request_id: Any = 7) -> Exchange:
    async def send(message: Message) -> None:
        sent.append(message)

    return Exchange(b"", send, send_timeout=5.0, retry_after=1, ticket=RequestTicket(), request_id=request_id)


async def test_a_json_head_goes_out_with_its_body() -> None:
    sent: list[Message] = []
    answer = exchange(sent)
    await answer.send(JSON_HEAD)
    assert sent == [] and answer.state is ExchangeState.HEAD_HELD
    await answer.send({"type": "http.response.body", "body": b"{}", "more_body": False})
    assert [message["type"] for message in sent] == ["http.response.start", "http.response.body"]
    assert sent[0]["status"] == 200 and answer.complete


async def test_an_sse_head_goes_out_at_once() -> None:
    sent: list[Message] = []
    answer = exchange(sent)
    await answer.send(SSE_HEAD)
    assert sent == [SSE_HEAD] and answer.state is ExchangeState.STREAMING


async def test_a_json_head_whose_body_never_came_becomes_a_whole_error_answer() -> None:
    sent: list[Message] = []
    answer = exchange(sent)
    await answer.send(JSON_HEAD)
    await answer.answer_unfinished(404, -32000, "Session terminated", 7)
    assert [message.get("status") for message in sent if message["type"] == "http.response.start"] == [404]
    body = json.loads(b"".join(message.get("body", b"") for message in sent[1:]))
    assert body["id"] == 7 and body["error"]["code"] == -32000


async def test_a_5xx_body_names_the_request_and_its_length_fits() -> None:
    sent: list[Message] = []
    answer = exchange(sent, request_id="r-1")
    body = b'{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"x"}}'
    head = {**JSON_HEAD, "status": 500, "headers": [(b"content-length", str(len(body)).encode())]}
    await answer.send(head)
    await answer.send({"type": "http.response.body", "body": body, "more_body": False})
    named = sent[1]["body"]
    assert json.loads(named)["id"] == "r-1"
    assert dict(sent[0]["headers"])[b"content-length"] == str(len(named)).encode()
