"""Metrics over real HTTP: on by default, one snapshot behind /metrics, /admin/stats and stats()."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import trio
import trio.testing
from prometheus_client.parser import text_string_to_metric_families

from supervisor import SupervisorConfig, open_supervisor
from supervisor.testing import TestServer, check_quiescent, serve_for_test, settle
from tests.support.helpers import mcp_headers, open_session, rpc
from tests.support.inprocess import call_app, open_in_process, post
from tests.support.servers import build_server

ROOT = Path(__file__).resolve().parent.parent.parent


async def scrape(
    http: httpx.AsyncClient, served: TestServer
) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Every sample of /metrics by name, then by its labels."""
    response = await http.get(served.base_url + "/metrics")
    assert response.status_code == 200
    return samples_of(response.text)


async def test_on_by_default_with_durations_refusals_and_process_metrics(http: httpx.AsyncClient) -> None:
    async with serve_for_test(build_server(), SupervisorConfig(max_request_body_size=1000)) as served:
        session_id = await open_session(http, served.url)
        for request_id in range(3):
            call = rpc("tools/call", request_id, {"name": "echo", "arguments": {"text": "x"}})
            assert (
                await http.post(served.url, content=call, headers=mcp_headers(session_id))
            ).status_code == 200
        unknown = await http.post(served.url, content=rpc("ping"), headers=mcp_headers("0" * 32))
        assert unknown.status_code == 404
        big = await http.post(served.url, content=b"x" * 2000, headers=mcp_headers(session_id))
        assert big.status_code == 413
        await http.post(served.url, content=rpc("made/up", 9), headers=mcp_headers(session_id))
        await settle(served.supervisor)
        samples = await scrape(http, served)
        calls = samples["mcp_request_duration_seconds_count"]
        assert calls[(("method", "tools/call"),)] == 3
        assert calls[(("method", "other"),)] == 1
        buckets = samples["mcp_request_duration_seconds_bucket"]
        assert buckets[(("le", "+Inf"), ("method", "tools/call"))] == 3
        refusals = samples["mcp_refusals_total"]
        assert refusals[(("cause", "unknown_session"), ("status", "404"))] == 1
        assert refusals[(("cause", "body_too_large"), ("status", "413"))] == 1
        for standard in ("process_cpu_seconds_total", "process_resident_memory_bytes", "python_info"):
            assert standard in samples, standard
        # No label value is a session id.
        for by_labels in samples.values():
            for labels in by_labels:
                assert not any(re.fullmatch(r"[0-9a-f]{32}", value) for _, value in labels)
        check_quiescent(served.supervisor, sessions=1)


def samples_of(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


async def test_one_snapshot_behind_metrics_admin_stats_and_stats(
    autojump_clock: trio.testing.MockClock,
) -> None:
    config = SupervisorConfig(admin_token="t", hibernate_after=10, idle_timeout=600)
    async with open_supervisor(build_server(), config) as supervisor:
        kept = await open_in_process(supervisor)
        closed = await open_in_process(supervisor)
        assert (await call_app(supervisor, "DELETE", headers=mcp_headers(closed))).status == 200
        await trio.sleep(11)
        assert supervisor.stats().hibernating == 1
        assert (await post(supervisor, rpc("ping", 4), kept)).status == 200
        stats = supervisor.stats()
        admin = await call_app(supervisor, "GET", headers={"authorization": "Bearer t"}, path="/admin/stats")
        document: dict[str, Any] = json.loads(admin.body)
        samples = samples_of((await call_app(supervisor, "GET", path="/metrics")).body.decode())
        assert stats == supervisor.stats(), "quiet: the snapshot is stable"
        assert document["created"] == stats.created == samples["mcp_sessions_created_total"][()] == 2
        assert document["closed"] == stats.closed == {"client_delete": 1}
        assert samples["mcp_sessions_closed_total"][(("reason", "client_delete"),)] == 1
        assert (
            document["hibernations"]
            == stats.hibernations
            == samples["mcp_session_hibernations_total"][()]
            == 1
        )
        assert document["wakes"] == stats.wakes == samples["mcp_session_wakes_total"][()] == 1
        assert samples["mcp_sessions"][(("state", "running"),)] == stats.running == 1
        assert samples["mcp_accepting"][()] == 1
        for outcome, count in stats.requests.items():
            assert samples["mcp_requests_total"][(("outcome", outcome),)] == count
        assert document["requests"] == stats.requests
        assert document["durations"]["ping"]["count"] == stats.durations["ping"].count == 1
        assert samples["mcp_request_duration_seconds_count"][(("method", "ping"),)] == 1


async def test_off_and_elsewhere(http: httpx.AsyncClient) -> None:
    async with serve_for_test(build_server(), SupervisorConfig(metrics_path=None)) as served:
        assert (await http.get(served.base_url + "/metrics")).status_code == 404
    async with serve_for_test(build_server(), SupervisorConfig(metrics_path="/internal/metrics")) as served:
        assert (await http.get(served.base_url + "/internal/metrics")).status_code == 200


def dashboard_metrics() -> set[str]:
    dashboard = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    alerts = (ROOT / "docs" / "alerts.yml").read_text()
    found = set(re.findall(r"\b((?:mcp|process|python)_[a-z_]+)", " ".join([*exprs, alerts])))
    return {re.sub(r"_(bucket|count|sum)$", "", name) for name in found}


async def test_every_metric_the_dashboard_and_alerts_query_exists(http: httpx.AsyncClient) -> None:
    async with serve_for_test(build_server()) as served:
        await open_session(http, served.url)
        closed = await open_session(http, served.url)
        await http.delete(served.url, headers=mcp_headers(closed))
        await http.post(served.url, content=rpc("ping"), headers=mcp_headers(closed))  # a refusal: 404
        exposed = {re.sub(r"_(bucket|count|sum|created)$", "", name) for name in await scrape(http, served)}
    wanted = dashboard_metrics()
    assert wanted, "the dashboard queries no metric"
    assert wanted <= exposed, wanted - exposed
