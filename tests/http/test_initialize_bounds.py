"""`initialize` params are bounded: what a session keeps of them for its life is small and capped.

A client's `initialize` can carry anything in its params; a session's record keeps only what a
wake replays (version, capabilities, client info), and params over `max_initialize_bytes` are
refused before any session exists, with 400 and -32602 naming the request.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from supervisor import SupervisorConfig
from supervisor._cli._flags import apply_options, build_parser
from supervisor._cluster._store_settings import StoreSettings
from supervisor._core._loading import Served
from supervisor.testing import serve_for_test, settle
from tests.support.cluster import Redis, have_cluster_tools
from tests.support.helpers import PROTOCOL, error_of, mcp_headers, messages_of, open_session, rpc
from tests.support.servers import build_server


def initialize(request_id: int = 1, **extra: Any) -> bytes:
    params = {"protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}
    return rpc("initialize", request_id, {**params, **extra})


async def echo(http: httpx.AsyncClient, url: str, session_id: str) -> str:
    call = rpc("tools/call", 9, {"name": "echo", "arguments": {"text": "still here"}})
    answer = await http.post(url, content=call, headers=mcp_headers(session_id))
    assert answer.status_code == 200, answer.text
    text: str = messages_of(answer)[-1]["result"]["content"][0]["text"]
    return text


async def test_initialize_params_over_the_limit_are_refused_and_open_nothing(http: httpx.AsyncClient) -> None:
    async with serve_for_test(build_server()) as served:
        bystander = await open_session(http, served.url)
        before = served.supervisor.stats().created
        for number in range(60):
            body = initialize(number, pad="x" * (4 * 1024 * 1024 - 200))
            answer = await http.post(served.url, content=body, headers=mcp_headers())
            assert answer.status_code == 400
            error = error_of(answer)
            assert error["code"] == -32602
            assert error["id"] == number
            assert "at most 16384" in error["message"]
            assert "mcp-session-id" not in answer.headers
        # The same params sent again on a live session are refused the same way.
        again = await http.post(
            served.url, content=initialize(77, pad="x" * 20_000), headers=mcp_headers(bystander)
        )
        assert again.status_code == 400
        assert error_of(again)["code"] == -32602
        assert served.supervisor.stats().created == before
        assert "still here" in await echo(http, served.url, bystander)
        refused = served.supervisor.stats().refusals
        assert refused.get((400, "initialize_too_large")) == 61, refused
        await settle(served.supervisor)


async def test_a_record_keeps_only_what_a_wake_replays(http: httpx.AsyncClient) -> None:
    async with serve_for_test(build_server()) as served:
        body = initialize(pad="x" * 12_000, _meta={"note": "y" * 1000}, extra=[1, 2, 3])
        answer = await http.post(served.url, content=body, headers=mcp_headers())
        assert answer.status_code == 200, answer.text
        session_id = answer.headers["mcp-session-id"]
        actor = served.supervisor.actor_of(session_id)
        assert actor is not None
        kept = json.loads(actor.record.client_params or "{}")
        assert set(kept) == {"protocolVersion", "capabilities", "clientInfo"}
        assert len(actor.record.to_json()) < 1024


async def test_the_limit_is_configurable_in_the_config_and_by_flag(http: httpx.AsyncClient) -> None:
    async with serve_for_test(build_server(), SupervisorConfig(max_initialize_bytes=300)) as served:
        small = await http.post(served.url, content=initialize(), headers=mcp_headers())
        assert small.status_code == 200
        large = initialize(2, clientInfo={"name": "n" * 400, "version": "1"})
        answer = await http.post(served.url, content=large, headers=mcp_headers())
        assert answer.status_code == 400
        assert error_of(answer) == {
            "code": -32602,
            "message": "Invalid params: initialize params are 489 bytes; this server takes at most 300",
            "id": 2,
        }
    options = build_parser().parse_args(["serve", "--max-initialize-bytes", "2048"])
    assert apply_options(Served(build_server()), options).max_initialize_bytes == 2048
    with pytest.raises(ValueError, match="max_initialize_bytes"):
        SupervisorConfig(max_initialize_bytes=0)


@pytest.mark.skipif(not have_cluster_tools() and not os.environ.get("CI"), reason="needs redis-server")
async def test_records_in_redis_stay_small_whatever_initialize_carries(
    http: httpx.AsyncClient, tmp_path: Path
) -> None:
    redis = Redis(tmp_path)
    await redis.start()
    try:
        config = SupervisorConfig(store=StoreSettings(redis_url=redis.url), node_id="n1")
        async with serve_for_test(build_server(), config) as served:
            for number in range(20):
                body = initialize(number, pad="x" * 15_000)
                answer = await http.post(served.url, content=body, headers=mcp_headers())
                assert answer.status_code == 200, answer.text
            keys = (await redis.command("--scan", "--pattern", "mcp-supervisor:rec:*")).split()
            assert len(keys) == 20
            for key in keys:
                assert int(await redis.command("STRLEN", key)) < 1024
    finally:
        await redis.stop()
