"""Prometheus metrics, read from `SessionSupervisor.stats()` at scrape time.

Nothing is counted on the request path for this: a scrape takes one stats snapshot. Each
supervisor has its own registry (no process-global state).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from prometheus_client import (
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from supervisor._cluster import ClusterStats
from supervisor._core._snapshots import SupervisorStats

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class StatsSource(Protocol):
    """What metrics are read from (the supervisor): one snapshot per scrape."""

    def stats(self) -> SupervisorStats: ...


class SupervisorCollector(Collector):
    """Exposes one supervisor's stats as Prometheus metric families."""

    def __init__(self, supervisor: StatsSource) -> None:
        self._supervisor = supervisor

    def collect(self) -> Iterator[Metric]:
        stats = self._supervisor.stats()
        sessions = GaugeMetricFamily("mcp_sessions", "Live MCP sessions by state", labels=["state"])
        sessions.add_metric(["running"], stats.running)
        sessions.add_metric(["draining"], stats.draining)
        yield sessions
        yield GaugeMetricFamily(
            "mcp_sessions_hibernating", "Running sessions without a transport now", value=stats.hibernating
        )
        in_flight = GaugeMetricFamily("mcp_requests_in_flight", "Requests being served", labels=["lane"])
        in_flight.add_metric(["session"], stats.in_flight - stats.stateless_in_flight)
        in_flight.add_metric(["stateless"], stats.stateless_in_flight)
        yield in_flight
        yield CounterMetricFamily("mcp_sessions_created", "Sessions opened", value=stats.created)
        closed = CounterMetricFamily("mcp_sessions_closed", "Sessions closed, by reason", labels=["reason"])
        for reason, count in sorted(stats.closed.items()):
            closed.add_metric([reason], count)
        yield closed
        requests = CounterMetricFamily("mcp_requests", "Finished requests, by outcome", labels=["outcome"])
        for outcome, count in sorted(stats.requests.items()):
            requests.add_metric([outcome], count)
        yield requests
        yield GaugeMetricFamily(
            "mcp_accepting", "1 while new sessions are accepted", value=int(stats.accepting)
        )
        yield CounterMetricFamily(
            "mcp_session_hibernations", "Times a session dropped its incarnation", value=stats.hibernations
        )
        yield CounterMetricFamily(
            "mcp_session_wakes", "Times a session was woken from its record", value=stats.wakes
        )
        yield _durations(stats)
        refusals = CounterMetricFamily(
            "mcp_refusals", "Requests refused, by HTTP status and cause", labels=["status", "cause"]
        )
        for (status, cause), count in stats.refusals.items():
            refusals.add_metric([str(status), cause], count)
        yield refusals
        if stats.cluster is not None:
            yield from _cluster_metrics(stats.cluster)


def _cluster_metrics(cluster: ClusterStats) -> Iterator[Metric]:
    """The node's part in a cluster: its store's health, its leases and the sessions that moved."""
    store = cluster.store
    yield GaugeMetricFamily("mcp_store_up", "1 while the session store answers", value=int(store.up))
    operations = CounterMetricFamily("mcp_store_operations", "Session store calls, by kind", labels=["op"])
    for op, count in sorted(store.operations.items()):
        operations.add_metric([op], count)
    yield operations
    yield CounterMetricFamily(
        "mcp_store_errors", "Session store calls that failed or timed out", value=store.errors
    )
    refused = CounterMetricFamily(
        "mcp_store_refused",
        "Records, shared client params and messages that failed their check, by kind",
        labels=["kind"],
    )
    for kind in ("record", "params", "message"):
        refused.add_metric([kind], store.refused.get(kind, 0))
    yield refused
    yield GaugeMetricFamily("mcp_leases_held", "Sessions this node holds the lease of", value=cluster.leases)
    yield GaugeMetricFamily(
        "mcp_store_pending_writes", "Record writes waiting for the store", value=cluster.pending_writes
    )
    yield CounterMetricFamily(
        "mcp_session_wakes_from_store",
        "Sessions woken here from their stored record",
        value=cluster.wakes_from_store,
    )
    moves = CounterMetricFamily("mcp_session_moves", "Sessions moved between nodes", labels=["direction"])
    moves.add_metric(["in"], cluster.moved_in)
    moves.add_metric(["out"], cluster.moved_out)
    yield moves
    yield CounterMetricFamily(
        "mcp_requests_forwarded",
        "Requests forwarded to the live node holding their session, instead of moving it",
        value=cluster.forwarded,
    )
    yield CounterMetricFamily(
        "mcp_sessions_fenced", "Sessions dropped because another node took their lease", value=cluster.fenced
    )


def _durations(stats: SupervisorStats) -> HistogramMetricFamily:
    family = HistogramMetricFamily(
        "mcp_request_duration_seconds",
        "POSTed session requests, hand-over to the end of the answer, by JSON-RPC method",
        labels=["method"],
    )
    for method, histogram in stats.durations.items():
        family.add_metric([method], buckets=histogram.cumulative(), sum_value=histogram.total)
    return family


def metrics_registry(supervisor: StatsSource) -> CollectorRegistry:
    """A fresh registry: this supervisor's collector and the standard process, GC and platform ones."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(SupervisorCollector(supervisor))
    ProcessCollector(registry=registry)
    GCCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The text exposition format of everything in `registry`."""
    return generate_latest(registry)
