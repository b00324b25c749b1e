"""How `mcp-supervisor sessions ...` shows the admin API's answers to a person.

Aligned tables, ages and durations ("4m10s", "2h3m"), local times, sentences for actions. The
API's JSON stays one flag away (`--json`) for scripts; nothing here is parsed back.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

Document = Any


def duration(seconds: float | None) -> str:
    """A duration the way `kubectl` shows ages: the two largest units (`45s`, `4m10s`, `2h3m`, `3d4h`)."""
    if seconds is None or (isinstance(seconds, float) and math.isinf(seconds)):
        return "-"
    days, left = divmod(int(max(0.0, seconds)), 86400)
    hours, left = divmod(left, 3600)
    minutes, secs = divmod(left, 60)
    for big, big_unit, small, small_unit in (
        (days, "d", hours, "h"),
        (hours, "h", minutes, "m"),
        (minutes, "m", secs, "s"),
    ):
        if big:
            return f"{big}{big_unit}{small}{small_unit}" if small else f"{big}{big_unit}"
    return f"{secs}s"


def moment(epoch: float | None, now: float | None = None) -> str:
    """A local time with how long ago it was: `2026-12-07 06:12:03 (4m10s ago)`."""
    if epoch is None:
        return "-"
    now = time.time() if now is None else now
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))
    return f"{stamp} ({duration(now - epoch)} ago)"


def principal(value: dict[str, Any] | None) -> str:
    """`client` or `client (issuer, subject)`: who a session belongs to, on one line."""
    if not value:
        return "-"
    more = [value[key] for key in ("issuer", "subject") if value.get(key)]
    return str(value["client_id"]) + (f" ({', '.join(more)})" if more else "")


def table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    """Columns padded to their widest cell, two spaces apart, no trailing blanks."""
    everything = [header, *rows]
    widths = [max(len(row[column]) for row in everything) for column in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in everything
    )


def session_rows(sessions: list[dict[str, Any]], now: float) -> str:
    header = ("SESSION", "PRINCIPAL", "STATE", "AWAKE", "IN FLIGHT", "IDLE IN", "AGE")
    rows = [
        (
            entry["id"],
            principal(entry["principal"]),
            entry["state"],
            "yes" if entry["awake"] else "no",
            str(entry["in_flight"]),
            duration(entry["idle_deadline_in"]),
            duration(now - entry["created"]),
        )
        for entry in sessions
    ]
    return table(header, rows)


def cluster_rows(sessions: list[dict[str, Any]], now: float) -> str:
    header = ("SESSION", "PRINCIPAL", "HELD BY", "PROTOCOL", "IDLE", "AGE")
    rows = [
        (
            entry["session_id"],
            principal(entry["principal"]),
            entry["held_by"] or "- (in the store)",
            entry["protocol_version"] or "-",
            duration(now - entry["last_activity"]) if entry["last_activity"] else "-",
            duration(now - entry["created"]),
        )
        for entry in sessions
    ]
    return table(header, rows)


def session_detail(entry: dict[str, Any], now: float) -> str:
    lines = [
        ("session", entry["id"]),
        ("principal", principal(entry["principal"])),
        ("state", entry["state"] + ("" if entry["awake"] else ", hibernating (no transport held)")),
        ("created", moment(entry["created"], now)),
        ("last activity", moment(entry["last_activity"], now)),
        ("in flight", str(entry["in_flight"])),
        ("open streams", str(entry["open_streams"])),
        ("queued", str(entry["queued"])),
        ("idle deadline in", duration(entry["idle_deadline_in"])),
    ]
    width = max(len(name) for name, _ in lines)
    return "\n".join(f"{name + ':':<{width + 1}} {value}" for name, value in lines)


def counts(values: dict[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(values.items())) or "none"


def stats_view(stats: dict[str, Any]) -> str:
    """The supervisor's counters as a person reads them: sessions, requests, durations, refusals."""
    lines = [
        f"sessions: {stats['live']} live ({stats['running']} running, {stats['hibernating']} of them "
        f"hibernating; {stats['draining']} draining), {stats['created']} created",
        f"closed: {counts(stats['closed'])}",
        f"requests: {stats['in_flight']} in flight; finished: {counts(stats['requests'])}",
        f"hibernations {stats['hibernations']}, wakes {stats['wakes']}",
        f"accepting new sessions: {'yes' if stats['accepting'] else 'no (draining or stopping)'}",
    ]
    refusals = [(str(row["status"]), row["cause"], str(row["count"])) for row in stats["refusals"]]
    lines.append(
        "refused: none"
        if not refusals
        else "refused:\n" + _indent(table(("STATUS", "CAUSE", "COUNT"), refusals))
    )
    durations = stats["durations"]
    if durations:
        rows = [_duration_row(method, histogram) for method, histogram in sorted(durations.items())]
        lines.append("durations:\n" + _indent(table(("METHOD", "COUNT", "MEAN", "P50 <=", "P99 <="), rows)))
    cluster = stats.get("cluster")
    if cluster:
        store = cluster["store"]
        state = store.get("state", store) if isinstance(store, dict) else store
        lines.append(
            f"cluster: node {cluster['node_id']}, store {state}, {cluster['leases']} lease(s), "
            f"moved in {cluster['moved_in']} / out {cluster['moved_out']}, woken from the store "
            f"{cluster['wakes_from_store']}, fenced {cluster['fenced']}, forwarded {cluster['forwarded']}"
        )
    return "\n".join(lines)


def _duration_row(method: str, histogram: dict[str, Any]) -> tuple[str, ...]:
    count = int(histogram["count"])
    mean = histogram["sum"] / count if count else 0.0
    return (method, str(count), _seconds(mean), _quantile(histogram, 0.5), _quantile(histogram, 0.99))


def _quantile(histogram: dict[str, Any], fraction: float) -> str:
    """The bucket bound under which `fraction` of the requests finished (cumulative buckets)."""
    count = int(histogram["count"])
    if not count:
        return "-"
    for bound, seen in histogram["buckets"].items():
        if seen >= fraction * count:
            return "+Inf" if str(bound) in ("inf", "+Inf") else _seconds(float(bound))
    return "+Inf"


def _seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def action_sentence(action: str, subject: str | None, document: Document) -> str:
    """What a close, kill, revoke or drain did, in a sentence."""
    if action == "close":
        return f"session {subject} closed (graceful: calls in flight were let finish)"
    if action == "kill":
        return f"session {subject} killed (calls in flight were cancelled)"
    if action == "revoke":
        return f"revoked {subject!r}: {document['closed']} session(s) closed"
    return f"draining: {document['live']} live session(s); new sessions are refused and /readyz answers 503"
