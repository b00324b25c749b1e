"""Principals, revocation and limits over real HTTP."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import trio

from supervisor import Principal, StaticTokenVerifier, SupervisorConfig, TokensFileError, loopback_security
from supervisor._core._ids import NODE_ID
from supervisor._http._admin import read_admin_token
from supervisor.testing import check_quiescent, serve_for_test, settle
from tests.support.cli_process import serving
from tests.support.helpers import error_of, initialize_body, mcp_headers, messages_of, rpc
from tests.support.servers import Gate, build_server

TOKENS = {"alice-1": "alice", "alice-2": "alice", "bob-1": "bob"}
ALICE = Principal(client_id="alice")
BOB = Principal(client_id="bob")


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def open_as(http: httpx.AsyncClient, url: str, token: str) -> str:
    response = await http.post(url, content=initialize_body(), headers=mcp_headers(**bearer(token)))
    assert response.status_code == 200, response.text
    session_id = response.headers["mcp-session-id"]
    done = await http.post(
        url, content=rpc("notifications/initialized", None), headers=mcp_headers(session_id, **bearer(token))
    )
    assert done.status_code == 202
    return session_id


async def call_as(
    http: httpx.AsyncClient, url: str, token: str, session_id: str, tool: str, request_id: int = 1
) -> httpx.Response:
    body = rpc("tools/call", request_id, {"name": tool, "arguments": {}})
    return await http.post(url, content=body, headers=mcp_headers(session_id, **bearer(token)))


def result_text(response: httpx.Response) -> str:
    text: str = messages_of(response)[-1]["result"]["content"][0]["text"]
    return text


def auth_config(**changes: Any) -> SupervisorConfig:
    return SupervisorConfig(token_verifier=StaticTokenVerifier(TOKENS), **changes)


async def test_no_or_wrong_token_is_401_with_a_json_rpc_body(http: httpx.AsyncClient) -> None:
    async with serve_for_test(build_server(), auth_config()) as served:
        for headers in (mcp_headers(), mcp_headers(**bearer("nope")), mcp_headers(authorization="Basic x")):
            response = await http.post(served.url, content=initialize_body(), headers=headers)
            assert response.status_code == 401
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert error_of(response)["code"] == -32600
            assert "nope" not in response.text
        assert served.supervisor.stats().created == 0


async def test_required_scope_missing_is_403(http: httpx.AsyncClient) -> None:
    async with serve_for_test(build_server(), auth_config(required_scopes=("mcp:use",))) as served:
        response = await http.post(
            served.url, content=initialize_body(), headers=mcp_headers(**bearer("bob-1"))
        )
        assert response.status_code == 403
        assert 'scope="mcp:use"' in response.headers["www-authenticate"]
        assert error_of(response)["code"] == -32600


async def test_sessions_are_bound_to_the_principal_not_the_token(http: httpx.AsyncClient) -> None:
    async with serve_for_test(build_server(), auth_config()) as served:
        session_id = await open_as(http, served.url, "alice-1")
        info = served.supervisor.get(session_id)
        assert info is not None
        assert info.principal == ALICE
        # The tool sees the caller through the SDK's auth context (contextvars reach the actor).
        assert result_text(await call_as(http, served.url, "alice-1", session_id, "whoami")) == "alice"
        # A refreshed token of the same principal keeps the session.
        assert result_text(await call_as(http, served.url, "alice-2", session_id, "whoami")) == "alice"
        # Another principal gets exactly what an unknown session id gets.
        theirs = await call_as(http, served.url, "bob-1", session_id, "whoami", request_id=9)
        unknown = await call_as(http, served.url, "bob-1", "f" * 32, "whoami", request_id=9)
        assert theirs.status_code == unknown.status_code == 404
        assert theirs.json() == unknown.json()
        for method in ("GET", "DELETE"):
            response = await http.request(
                method, served.url, headers=mcp_headers(session_id, **bearer("bob-1"))
            )
            assert response.status_code == 404
        assert served.supervisor.get(session_id) is not None


async def test_revocation_closes_only_that_principals_sessions(http: httpx.AsyncClient) -> None:
    gate = Gate()
    async with serve_for_test(build_server(gate), auth_config()) as served:
        alice_sessions = [await open_as(http, served.url, "alice-1") for _ in range(3)]
        bob_session = await open_as(http, served.url, "bob-1")
        assert {info.session_id for info in served.supervisor.sessions_for(ALICE)} == set(alice_sessions)
        responses: list[httpx.Response] = []

        async def call() -> None:
            responses.append(await call_as(http, served.url, "alice-1", alice_sessions[0], "wait", 5))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(call)
            await gate.entered.wait()
            assert await served.supervisor.close_sessions_for(ALICE, grace=0) == 3
        # The call in flight got an answer with its id.
        [answer] = [m for m in messages_of(responses[0]) if m.get("id") == 5]
        assert answer["error"]["code"] == -32000
        for session_id in alice_sessions:
            refused = await call_as(http, served.url, "alice-1", session_id, "whoami")
            assert refused.status_code == 404
        assert served.supervisor.sessions_for(ALICE) == []
        assert result_text(await call_as(http, served.url, "bob-1", bob_session, "whoami")) == "bob"
        assert served.supervisor.stats().closed == {"revoked": 3}
        assert await served.supervisor.close_sessions_for(ALICE) == 0


async def test_per_principal_cap(http: httpx.AsyncClient) -> None:
    async with serve_for_test(build_server(), auth_config(max_sessions_per_principal=2)) as served:
        await open_as(http, served.url, "alice-1")
        await open_as(http, served.url, "alice-2")
        refused = await http.post(
            served.url, content=initialize_body(4), headers=mcp_headers(**bearer("alice-1"))
        )
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        error = error_of(refused)
        assert error["id"] == 4
        assert "principal" in error["message"]
        await open_as(http, served.url, "bob-1")


async def test_per_session_request_limit_is_429(http: httpx.AsyncClient) -> None:
    gate = Gate()
    config = SupervisorConfig(max_requests_per_session=3)
    async with serve_for_test(build_server(gate), config) as served:
        from tests.support.helpers import open_session

        session_id = await open_session(http, served.url)
        other = await open_session(http, served.url)
        results: list[httpx.Response] = []

        async def call(request_id: int) -> None:
            body = rpc("tools/call", request_id, {"name": "wait", "arguments": {}})
            results.append(await http.post(served.url, content=body, headers=mcp_headers(session_id)))

        async with trio.open_nursery() as nursery:
            for request_id in range(3):
                nursery.start_soon(call, request_id)
            while gate.arrivals < 3:
                await trio.testing.wait_all_tasks_blocked()
            flood = await http.post(served.url, content=rpc("ping", 99), headers=mcp_headers(session_id))
            assert flood.status_code == 429
            assert flood.headers["retry-after"] == "1"
            assert error_of(flood)["id"] == 99
            # Other sessions are not limited by this one.
            assert (
                await http.post(served.url, content=rpc("ping", 1), headers=mcp_headers(other))
            ).status_code == 200
            gate.release.set()
        assert sorted(r.status_code for r in results) == [200, 200, 200]
        await settle(served.supervisor)
        check_quiescent(served.supervisor, sessions=2)


async def test_second_get_stream_is_409(http: httpx.AsyncClient) -> None:
    async with serve_for_test(build_server()) as served:
        from tests.support.helpers import open_session

        session_id = await open_session(http, served.url)
        headers = mcp_headers(session_id, accept="text/event-stream")
        async with http.stream("GET", served.url, headers=headers) as first:
            assert first.status_code == 200
            with trio.fail_after(10):
                while (info := served.supervisor.get(session_id)) is None or info.open_streams < 1:
                    await trio.testing.wait_all_tasks_blocked()
            second = await http.get(served.url, headers=headers)
            assert second.status_code == 409
            assert "Traceback" not in second.text


async def test_dns_rebinding_protection(http: httpx.AsyncClient) -> None:
    config = SupervisorConfig(security=loopback_security("127.0.0.1:0"))
    async with serve_for_test(build_server(), config) as served:
        wrong_host = await http.post(
            served.url, content=initialize_body(), headers=mcp_headers(host="evil.example")
        )
        assert wrong_host.status_code == 421
        assert error_of(wrong_host)["code"] == -32600
        wrong_origin = await http.post(
            served.url, content=initialize_body(), headers=mcp_headers(origin="http://evil.example")
        )
        assert wrong_origin.status_code == 403
        assert error_of(wrong_origin)["code"] == -32600
        fine = await http.post(
            served.url, content=initialize_body(), headers=mcp_headers(origin="http://localhost:3000")
        )
        assert fine.status_code == 200
        assert served.supervisor.stats().created == 1


async def test_a_wildcard_port_must_be_a_port(http: httpx.AsyncClient) -> None:
    """`127.0.0.1:*` allows `127.0.0.1:8000`, never `127.0.0.1:8000.evil.example` (the SDK's prefix match)."""
    config = SupervisorConfig(security=loopback_security("127.0.0.1:0"))
    async with serve_for_test(build_server(), config) as served:
        port = served.base_url.rsplit(":", 1)[1]
        for host in (f"127.0.0.1:{port}.evil.example", "localhost:.evil.example", "127.0.0.1:"):
            refused = await http.post(served.url, content=initialize_body(), headers=mcp_headers(host=host))
            assert refused.status_code == 421, host
            assert error_of(refused)["message"] == "Invalid Host header"
        for origin in ("http://localhost:3000.evil.example", "http://127.0.0.1:@evil.example"):
            refused = await http.post(
                served.url, content=initialize_body(), headers=mcp_headers(origin=origin)
            )
            assert refused.status_code == 403, origin
            assert error_of(refused)["message"] == "Invalid Origin header"
        fine = await http.post(
            served.url, content=initialize_body(), headers=mcp_headers(host=f"127.0.0.1:{port}")
        )
        assert fine.status_code == 200
        assert served.supervisor.stats().created == 1


def test_tokens_file(tmp_path: Any) -> None:
    good = tmp_path / "tokens"
    good.write_text("# comment\n\nsecret-1 alice\nsecret-2 bob\n")
    verifier = StaticTokenVerifier.from_file(good)
    token = trio.run(verifier.verify_token, "secret-2")
    assert token is not None
    assert token.client_id == "bob"
    assert trio.run(verifier.verify_token, "secret-3") is None
    bad = tmp_path / "bad"
    bad.write_text("only-a-token-here\n")
    with pytest.raises(TokensFileError) as caught:
        StaticTokenVerifier.from_file(bad)
    assert "only-a-token-here" not in str(caught.value)
    assert "line 1" in str(caught.value)


def test_session_ids_are_a_node_id_and_128_random_bits_in_hex() -> None:
    async def main() -> str:
        async with serve_for_test(build_server()) as served, httpx.AsyncClient() as http:
            response = await http.post(served.url, content=initialize_body(), headers=mcp_headers())
            return response.headers["mcp-session-id"]

    session_id = trio.run(main)
    node, dot, random = session_id.partition(".")
    assert dot and NODE_ID.fullmatch(node)
    assert len(random) == 32
    int(random, 16)
    assert json.dumps(session_id).isascii()


async def test_token_files_open_to_others_or_with_short_tokens_get_one_warning_each(tmp_path: Any) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("short alice\nalso-short bob\nlong-enough-random-token-0001 carol\n")
    tokens.chmod(0o644)
    assert StaticTokenVerifier.from_file(tokens).warnings == (
        f"--auth-tokens-file: {tokens} is open to other users (mode 0o644): chmod 600 it",
        "--auth-tokens-file: 2 token(s) under 16 characters (principals: alice, bob): easy to guess, "
        "use long random ones",
    )
    admin = tmp_path / "admin"
    admin.write_text("an-admin-token-of-enough-length\n")
    admin.chmod(0o640)
    async with serving("--auth-tokens-file", str(tokens), "--admin-token-file", str(admin)) as server:
        await server.url()
    said = [line for line in server.seen if "WARNING" in line]
    assert any(f"--auth-tokens-file: {tokens} is open to other users (mode 0o644)" in line for line in said)
    assert any("2 token(s) under 16 characters (principals: alice, bob)" in line for line in said)
    assert any(f"--admin-token-file: {admin} is open to other users (mode 0o640)" in line for line in said)
    assert not any("short" in line.split("(principals")[0] or "an-admin-token" in line for line in said)
    tokens.chmod(0o600)
    tokens.write_text("long-enough-random-token-0001 carol\n")
    assert StaticTokenVerifier.from_file(tokens).warnings == ()
    admin.chmod(0o600)
    assert read_admin_token(str(admin)) == "an-admin-token-of-enough-length"
