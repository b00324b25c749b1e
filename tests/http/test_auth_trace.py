"""Refused authentication leaves a trace (issue 22.10): counted by cause, logged at a bounded rate
with who asked from where (never the token), and a cross-principal refusal names the asker."""

from __future__ import annotations

import logging

import httpx
import pytest

from supervisor import StaticTokenVerifier, SupervisorConfig
from supervisor.testing import serve_for_test
from tests.support.helpers import mcp_headers, open_session, rpc
from tests.support.servers import build_server, sdk_auth

TOKENS = {"tok-alice-0123456789": "alice", "tok-bob-0123456789ab": "bob"}


def auth_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "supervisor.auth"]


async def test_our_verifier_counts_each_refusal_and_logs_one_line_per_cause_a_while(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    config = SupervisorConfig(token_verifier=StaticTokenVerifier(TOKENS), required_scopes=())
    async with serve_for_test(build_server(), config) as served, httpx.AsyncClient(timeout=30) as http:
        for _ in range(30):
            bad = await http.post(
                served.url, content=rpc("ping"), headers=mcp_headers(authorization="Bearer not-a-token-xyz")
            )
            assert bad.status_code == 401
        for _ in range(5):
            missing = await http.post(served.url, content=rpc("ping"), headers=mcp_headers())
            assert missing.status_code == 401
        refusals = served.supervisor.stats().refusals
        assert refusals.get((401, "invalid_token")) == 30
        assert refusals.get((401, "missing_token")) == 5
        metrics = await http.get(
            served.base_url + "/metrics", headers={"authorization": "Bearer tok-alice-0123456789"}
        )
        assert 'mcp_refusals_total{cause="invalid_token",status="401"} 30.0' in metrics.text
    lines = auth_lines(caplog)
    assert lines == [
        "authentication refused (invalid_token): POST /mcp from 127.0.0.1",
        "authentication refused (missing_token): POST /mcp from 127.0.0.1",
    ]
    everything = "\n".join(r.getMessage() for r in caplog.records)
    assert "not-a-token-xyz" not in everything


async def test_the_sdks_own_auth_is_traced_too(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with serve_for_test(build_server(**sdk_auth())) as served, httpx.AsyncClient(timeout=30) as http:
        scopeless = await http.post(
            served.url, content=rpc("ping"), headers=mcp_headers(authorization="Bearer noscope-token")
        )
        assert scopeless.status_code == 403
        refused = await http.post(served.url, content=rpc("ping"), headers=mcp_headers())
        assert refused.status_code == 401
        refusals = served.supervisor.stats().refusals
        assert refusals.get((403, "insufficient_scope")) == 1
        assert refusals.get((401, "missing_token")) == 1
    assert len(auth_lines(caplog)) == 2


async def test_a_cross_principal_request_is_logged_with_the_asker(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    config = SupervisorConfig(token_verifier=StaticTokenVerifier(TOKENS))
    async with serve_for_test(build_server(), config) as served:
        async with httpx.AsyncClient(
            timeout=30, headers={"authorization": "Bearer tok-alice-0123456789"}
        ) as a:
            alices = await open_session(a, served.url)
        async with httpx.AsyncClient(
            timeout=30, headers={"authorization": "Bearer tok-bob-0123456789ab"}
        ) as b:
            answer = await b.post(served.url, content=rpc("ping"), headers=mcp_headers(alices))
            assert answer.status_code == 404
    [line] = [r for r in caplog.records if "another principal" in r.getMessage()]
    expected = "refused a request from another principal (client id 'bob')"
    assert line.getMessage() == f"[session {alices}] {expected}"
    assert "tok-bob" not in "\n".join(r.getMessage() for r in caplog.records)
