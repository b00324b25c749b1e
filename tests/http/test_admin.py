"""The admin API over real HTTP: its own token, sessions listed, shown, closed, killed, revoked, drain."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from supervisor import StaticTokenVerifier, SupervisorConfig
from supervisor.testing import TestServer, serve_for_test, settle
from tests.support.helpers import error_of, mcp_headers, open_session, rpc
from tests.support.servers import build_server

ADMIN = "admin-secret-token"
AUTH = {"authorization": f"Bearer {ADMIN}"}


def admin_config(**changes: Any) -> SupervisorConfig:
    return SupervisorConfig(admin_token=ADMIN, **changes)


async def admin(http: httpx.AsyncClient, served: TestServer, method: str, path: str, **kwargs: Any) -> Any:
    response = await http.request(method, served.base_url + "/admin" + path, headers=AUTH, **kwargs)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    return response.json()


async def test_off_without_a_token(http: httpx.AsyncClient) -> None:
    async with serve_for_test(build_server()) as served:
        response = await http.get(served.base_url + "/admin/sessions", headers=AUTH)
        assert response.status_code == 404
        assert error_of(response)["code"] == -32600


@pytest.mark.parametrize("given", [None, "Bearer wrong", f"Basic {ADMIN}", "Bearer", ""])
async def test_a_missing_or_wrong_token_is_401(http: httpx.AsyncClient, given: str | None) -> None:
    async with serve_for_test(build_server(), admin_config()) as served:
        headers = {} if given is None else {"authorization": given}
        response = await http.get(served.base_url + "/admin/sessions", headers=headers)
        assert response.status_code == 401
        assert response.json() == {"error": "a valid admin bearer token is required"}
        assert response.headers["www-authenticate"].startswith("Bearer")


async def test_list_filter_page_and_show(http: httpx.AsyncClient) -> None:
    async with serve_for_test(build_server(), admin_config()) as served:
        ids = [await open_session(http, served.url) for _ in range(3)]
        listed = await admin(http, served, "GET", "/sessions")
        assert [entry["id"] for entry in listed["sessions"]] == ids
        assert listed["total"] == 3 and listed["next_cursor"] is None
        first = listed["sessions"][0]
        assert first["state"] == "running" and first["awake"] is True and first["principal"] is None
        assert (
            first["in_flight"] >= 0 and first["created"] > 1e9 and first["last_activity"] >= first["created"]
        )
        assert first["idle_deadline_in"] > 0
        page = await admin(http, served, "GET", "/sessions", params={"limit": "2"})
        assert [entry["id"] for entry in page["sessions"]] == ids[:2] and page["next_cursor"] == "2"
        rest = await admin(http, served, "GET", "/sessions", params={"limit": "2", "cursor": "2"})
        assert [entry["id"] for entry in rest["sessions"]] == ids[2:] and rest["next_cursor"] is None
        assert (await admin(http, served, "GET", "/sessions", params={"state": "draining"}))["total"] == 0
        shown = await admin(http, served, "GET", f"/sessions/{ids[1]}")
        assert shown["id"] == ids[1]
        for path, status in [("/sessions/" + "0" * 32, 404), ("/nothing", 404)]:
            assert (await http.get(served.base_url + "/admin" + path, headers=AUTH)).status_code == status
        for params in [{"limit": "0"}, {"limit": "x"}, {"state": "asleep"}, {"cursor": "-1"}]:
            refused = await http.get(served.base_url + "/admin/sessions", headers=AUTH, params=params)
            assert refused.status_code == 400 and "error" in refused.json()
        wrong = await http.post(served.base_url + "/admin/sessions", headers=AUTH)
        assert wrong.status_code == 405


async def test_close_gracefully_and_kill(http: httpx.AsyncClient) -> None:
    async with serve_for_test(build_server(), admin_config()) as served:
        closed, killed = await open_session(http, served.url), await open_session(http, served.url)
        assert await admin(http, served, "DELETE", f"/sessions/{closed}") == {
            "closed": True,
            "mode": "graceful",
        }
        answer = await admin(http, served, "DELETE", f"/sessions/{killed}", params={"mode": "kill"})
        assert answer == {"closed": True, "mode": "kill"}
        for session_id in (closed, killed):
            gone = await http.post(served.url, content=rpc("ping"), headers=mcp_headers(session_id))
            assert gone.status_code == 404
        bad = await http.delete(served.base_url + f"/admin/sessions/{closed}", headers=AUTH)
        assert bad.status_code == 404
        mode = await http.delete(served.base_url + "/admin/sessions/x", headers=AUTH, params={"mode": "soft"})
        assert mode.status_code == 400
        stats = await admin(http, served, "GET", "/stats")
        assert stats["closed"] == {"closed": 1, "killed": 1}
        assert stats == _document(served)


def _document(served: TestServer) -> dict[str, Any]:
    from supervisor._core._snapshots import stats_document

    return stats_document(served.supervisor.stats())


async def test_revoke_a_principal_everywhere_and_bad_bodies(http: httpx.AsyncClient) -> None:
    verifier = StaticTokenVerifier({"alice-token": "alice", "bob-token": "bob"})
    async with serve_for_test(build_server(), admin_config(token_verifier=verifier)) as served:

        async def open_as(token: str) -> str:
            headers = {"authorization": f"Bearer {token}"}
            async with httpx.AsyncClient(headers=headers, timeout=10) as client:
                return await open_session(client, served.url)

        await open_as("alice-token")
        await open_as("alice-token")
        bob = await open_as("bob-token")
        assert await admin(http, served, "POST", "/revoke", json={"principal": "alice"}) == {"closed": 2}
        assert [entry["id"] for entry in (await admin(http, served, "GET", "/sessions"))["sessions"]] == [bob]
        for body in [b"{", b"[]", b'{"principal": 3}', b'{"principal": {"client_id": "x", "nope": 1}}']:
            refused = await http.post(served.base_url + "/admin/revoke", headers=AUTH, content=body)
            assert refused.status_code == 400, body
            assert "error" in refused.json()


async def test_drain_stops_new_sessions_and_keeps_the_live_ones(http: httpx.AsyncClient) -> None:
    async with serve_for_test(build_server(), admin_config()) as served:
        session_id = await open_session(http, served.url)
        assert await admin(http, served, "POST", "/drain") == {"draining": True, "live": 1}
        assert (await http.get(served.base_url + "/readyz")).status_code == 503
        with pytest.raises(AssertionError):
            await open_session(http, served.url)
        alive = await http.post(served.url, content=rpc("ping", 5), headers=mcp_headers(session_id))
        assert alive.status_code == 200


async def test_close_kill_and_revoke_show_in_metrics_and_logs(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    verifier = StaticTokenVerifier({"alice-token": "alice"})
    async with serve_for_test(build_server(), admin_config(token_verifier=verifier)) as served:
        alice = httpx.AsyncClient(headers={"authorization": "Bearer alice-token"}, timeout=10)
        async with alice:
            closed, killed, revoked = [await open_session(alice, served.url) for _ in range(3)]
        await admin(http, served, "DELETE", f"/sessions/{closed}")
        await admin(http, served, "DELETE", f"/sessions/{killed}", params={"mode": "kill"})
        await http.post(served.base_url + "/admin/revoke", headers=AUTH, json={"principal": "alice"})
        await settle(served.supervisor)
        metrics = (
            await http.get(served.base_url + "/metrics", headers={"authorization": "Bearer alice-token"})
        ).text
    for reason in ("closed", "killed", "revoked"):
        assert f'mcp_sessions_closed_total{{reason="{reason}"}} 1.0' in metrics
    lines = [record.getMessage() for record in caplog.records]
    for session_id, reason in [(closed, "closed"), (killed, "killed"), (revoked, "revoked")]:
        assert any(line.startswith(f"[session {session_id}] closed ({reason}) after") for line in lines), (
            reason
        )


async def test_a_body_over_the_limit_is_413_and_a_wrong_method_405_with_json_errors(
    http: httpx.AsyncClient,
) -> None:
    async with serve_for_test(build_server(), admin_config()) as served:
        big = await http.post(served.base_url + "/admin/revoke", headers=AUTH, content=b"x" * (64 * 1024 + 1))
        assert big.status_code == 413
        assert big.json() == {"error": "the body is larger than 65536 bytes"}
        wrong = await http.put(served.base_url + "/admin/stats", headers=AUTH)
        assert wrong.status_code == 405
        assert wrong.json() == {"error": "PUT is not allowed here; use GET"}


async def test_cluster_only_admin_requests_without_a_store_are_400(http: httpx.AsyncClient) -> None:
    async with serve_for_test(build_server(), admin_config()) as served:
        session_id = await open_session(http, served.url)
        base = served.base_url + "/admin"
        listed = await http.get(base + "/sessions", params={"scope": "cluster"}, headers=AUTH)
        assert listed.status_code == 400
        assert listed.json() == {"error": "scope=cluster needs a session store (--redis-url)"}
        evicted = await http.delete(f"{base}/sessions/{session_id}", params={"mode": "evict"}, headers=AUTH)
        assert evicted.status_code == 400
        assert evicted.json() == {"error": "mode=evict needs a session store (--redis-url)"}
        wrong = await http.delete(f"{base}/sessions/{session_id}", params={"mode": "nap"}, headers=AUTH)
        assert wrong.status_code == 400
        assert wrong.json() == {"error": "mode must be graceful, kill or evict"}
        assert served.supervisor.get(session_id) is not None  # none of them touched it


async def test_metrics_on_the_admin_api_need_the_token_and_match_the_public_ones(
    http: httpx.AsyncClient,
) -> None:
    async with serve_for_test(build_server(), admin_config()) as served:
        await open_session(http, served.url)
        refused = await http.get(served.base_url + "/admin/metrics")
        assert refused.status_code == 401
        assert refused.json() == {"error": "a valid admin bearer token is required"}
        wrong_method = await http.post(served.base_url + "/admin/metrics", headers=AUTH)
        assert wrong_method.status_code == 405
        metrics = await http.get(served.base_url + "/admin/metrics", headers=AUTH)
        assert metrics.status_code == 200
        assert metrics.headers["content-type"].startswith("text/plain")
        assert metrics.headers["cache-control"] == "no-store"
        public = (await http.get(served.base_url + "/metrics")).text
        for line in ("mcp_sessions_created_total 1.0", "mcp_sessions_hibernating 0.0"):
            assert line in metrics.text and line in public
