"""Turn docs/bench-results.json into the ratio tables in docs/benchmarks.md and the PNG plots.

`python -m tests.bench.report [docs]` re-renders from the JSON without measuring again.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

START = "<!-- bench:results:start -->"
END = "<!-- bench:results:end -->"
LABELS = {
    "ours-sse": "A ours SSE",
    "ours-json": "B ours JSON",
    "sdk-sse": "C SDK SSE",
    "sdk-json": "D SDK JSON",
    "floor": "E floor",
    "ours-sse-hib": "F ours SSE, hibernating",
    "ours-json-hib": "G ours JSON, hibernating",
}
PAIRS = (
    ("SSE", "ours-sse", "sdk-sse"),
    ("JSON", "ours-json", "sdk-json"),
    ("SSE hib", "ours-sse-hib", "sdk-sse"),
    ("JSON hib", "ours-json-hib", "sdk-json"),
)
"""(name, ours, the SDK in the same mode): each target is judged per pair."""


def letter(server: str) -> str:
    return LABELS[server].split()[0]


def present_pairs(medians: dict[str, dict[str, float]]) -> list[tuple[str, str, str]]:
    """The pairs whose both servers were measured (older results have no hibernating servers)."""
    return [pair for pair in PAIRS if pair[1] in medians and pair[2] in medians]


@attrs.frozen
class Target:
    """One target of issue 6: a ratio ours/SDK (or an absolute value of ours) against a bound."""

    text: str
    metric: str
    bound: float
    higher_is_better: bool
    absolute: bool = False  # compare ours' own value, not ours/SDK
    against_floor: bool = False  # ours/floor, not ours/SDK

    def value(self, medians: dict[str, dict[str, float]], ours: str, sdk: str) -> float:
        mine = medians.get(ours, {}).get(self.metric, math.nan)
        if self.absolute:
            return mine
        other = "floor" if self.against_floor else sdk
        return ratio(mine, medians.get(other, {}).get(self.metric, math.nan))

    def met(self, value: float) -> bool:
        if math.isnan(value):
            return False
        return value >= self.bound if self.higher_is_better else value <= self.bound


SHUTDOWN_UNDER_1S = Target(
    "shutdown with all sessions open < 1 s (ours, seconds)", "shutdown_s", 1.0, False, absolute=True
)
"""A target of both issues (6 and 25)."""

TARGETS = (
    Target("session open rate >= 2x SDK", "open_rate", 2.0, True),
    Target("tools/call c16 throughput >= 1.3x SDK", "c16_rate", 1.3, True),
    Target("tools/call c64 throughput >= 1.3x SDK", "c64_rate", 1.3, True),
    Target("tools/call c16 p99 no worse than SDK (<= 1x)", "c16_p99_ms", 1.0, False),
    Target("tools/call c64 p99 no worse than SDK (<= 1x)", "c64_p99_ms", 1.0, False),
    Target("RSS per idle session <= 0.75x SDK", "rss_per_session_kib", 0.75, False),
    Target("DELETE rate >= 1.5x SDK", "delete_rate", 1.5, True),
    SHUTDOWN_UNDER_1S,
    Target(
        "one call's latency, many vs 10 sessions open <= 1.5x (ours)",
        "latency_growth",
        1.5,
        False,
        absolute=True,
    ),
)

TARGETS_25 = (
    Target("tools/call c16 throughput >= 1.5x SDK", "c16_rate", 1.5, True),
    Target("tools/call c64 throughput >= 1.5x SDK", "c64_rate", 1.5, True),
    Target("tools/call c1 throughput >= 1x SDK", "c1_rate", 1.0, True),
    Target("tools/call c1 p50 no worse than SDK (<= 1x)", "c1_p50_ms", 1.0, False),
    Target("RSS per idle used session <= 0.5x SDK", "rss_per_session_kib", 0.5, False),
    Target("RSS per idle session, real SDK clients <= 0.5x SDK", "real_rss_per_session_kib", 0.5, False),
    SHUTDOWN_UNDER_1S,
    Target("DELETE rate >= 0.85x the floor's", "delete_rate", 0.85, True, against_floor=True),
)
"""Issue 25's targets (default flags: A vs C and B vs D; the hibernating pairs shown alongside)."""

# (metric, heading, unit, format)
ROWS: tuple[tuple[str, str, str, str], ...] = (
    ("open_rate", "session open (initialize + initialized), c16", "sessions/s", "{:.0f}"),
    ("c1_rate", "tools/call throughput, c1", "calls/s", "{:.0f}"),
    ("c16_rate", "tools/call throughput, c16", "calls/s", "{:.0f}"),
    ("c64_rate", "tools/call throughput, c64", "calls/s", "{:.0f}"),
    ("c1_p50_ms", "tools/call p50, c1", "ms", "{:.2f}"),
    ("c1_p99_ms", "tools/call p99, c1", "ms", "{:.2f}"),
    ("c16_p50_ms", "tools/call p50, c16", "ms", "{:.2f}"),
    ("c16_p99_ms", "tools/call p99, c16", "ms", "{:.2f}"),
    ("c64_p50_ms", "tools/call p50, c64", "ms", "{:.2f}"),
    ("c64_p99_ms", "tools/call p99, c64", "ms", "{:.2f}"),
    ("rss_per_session_kib", "RSS per idle session", "KiB", "{:.1f}"),
    ("real_rss_per_session_kib", "RSS per idle session, real SDK clients (GET stream held)", "KiB", "{:.1f}"),
    ("rss_after_kib", "RSS with all idle sessions open", "KiB", "{:.0f}"),
    ("latency_few_ms", "one call, 10 sessions open (median)", "ms", "{:.2f}"),
    ("latency_many_ms", "one call, all idle sessions open (median)", "ms", "{:.2f}"),
    ("latency_growth", "latency many / 10 sessions", "x", "{:.2f}"),
    ("bulk_open_rate", "session open while filling up, c16", "sessions/s", "{:.0f}"),
    ("delete_rate", "DELETE, c16", "sessions/s", "{:.0f}"),
    ("delete_settle_s", "server busy after the last DELETE answer", "s", "{:.2f}"),
    ("shutdown_s", "shutdown, SIGTERM to exit, all sessions open", "s", "{:.2f}"),
    ("c16_server_cpu", "server CPU during c16 calls", "cores", "{:.2f}"),
    ("c16_gen_cpu", "load generator CPU during c16 calls", "cores", "{:.2f}"),
    ("errors", "bad responses (all phases)", "count", "{:.0f}"),
)


def ratio(a: float, b: float) -> float:
    if math.isnan(a) or math.isnan(b) or b == 0:
        return math.nan
    return a / b


def fmt(value: float, pattern: str = "{:.2f}") -> str:
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "timeout"
    return pattern.format(value)


def times(value: float) -> str:
    """A ratio as '1.23x' ('n/a' when it cannot be formed)."""
    return "n/a" if math.isnan(value) else f"{value:.2f}x"


def label(value: float) -> str:
    """A bar's value label: whole numbers from 100 up, three significant digits below."""
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "timeout"
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def cpus(numbers: Sequence[int]) -> str:
    return ",".join(str(number) for number in numbers)


def target_table(
    title: str,
    targets: Sequence[Target],
    pairs: Sequence[tuple[str, str, str]],
    medians: dict[str, dict[str, float]],
) -> list[str]:
    """One table of targets, judged per pair of servers (ours and the SDK in the same mode)."""
    lines = [f"#### {title}", ""]
    heads = [f"{mode} ({letter(ours)} vs {letter(sdk)})" for mode, ours, sdk in pairs]
    lines.append("| target | " + " | ".join(heads) + " | met |")
    lines.append("| --- | " + " | ".join("---" for _ in pairs) + " | --- |")
    for target in targets:
        cells = []
        verdicts = []
        for mode, ours, sdk in pairs:
            value = target.value(medians, ours, sdk)
            cells.append(fmt(value) if target.absolute else times(value))
            verdicts.append(f"{mode} {'met' if target.met(value) else 'NOT met'}")
        lines.append(f"| {target.text} | " + " | ".join(cells) + f" | {', '.join(verdicts)} |")
    lines.append("")
    return lines


def spread(rounds: Sequence[dict[str, Any]], server: str, metric: str) -> tuple[float, float]:
    values = [float(row[metric]) for row in rounds if row["server"] == server and metric in row]
    return (min(values), max(values)) if values else (math.nan, math.nan)


def tables(results: dict[str, Any]) -> str:
    """The markdown that goes between the markers: header, targets, ratios, medians, headroom."""
    meta = results["meta"]
    medians: dict[str, dict[str, float]] = results["medians"]
    settings = meta["settings"]
    machine = meta["machine"]
    servers = [key for key in LABELS if key in medians]
    get: Callable[[str, str], float] = lambda server, metric: medians.get(server, {}).get(metric, math.nan)  # noqa: E731
    lines: list[str] = []
    if meta["mode"] == "quick":
        lines.append(
            "> **Provisional: quick mode on a busy machine.** Small counts, short runs, other jobs "
            "running on the same cores: these numbers are noisy and only show that the harness works. "
            "The recorded numbers come from a full run (`scripts/bench`) on a quiet machine."
        )
        lines.append("")
    opened = get(servers[0], "sessions_open") if servers else math.nan
    sessions = 0 if math.isnan(opened) else int(opened)
    lines.append(
        f"Run: `{meta['command']}` ({meta['mode']} mode, {settings['rounds']} round(s), median shown), "
        f"{meta['date']}, {meta['wall_seconds']:.0f} s wall. Idle sessions: {sessions:,}; "
        f"tools/call windows {settings['call_duration']:g} s after {settings['call_warmup']:g} s warm-up; "
        f"{settings['open_count']} sessions for the open rate."
    )
    lines.append(
        f"Machine: {machine['cpu']}, {machine['cpus']} CPUs, {machine['memory_gib']} GiB, Linux "
        f"{machine['kernel']}, Python {machine['python']}; "
        + ", ".join(f"{name} {version}" for name, version in machine["versions"].items())
        + f". Servers pinned to CPU {cpus(machine['server_cpus'])}, load generator to CPU "
        f"{cpus(machine['generator_cpus'])}; load average at start {' '.join(machine['loadavg_at_start'])}."
    )
    lines.append("")

    pairs = present_pairs(medians)
    lines += target_table("Targets (issue 25)", TARGETS_25, pairs, medians)
    lines += target_table("Targets (issue 6)", TARGETS, pairs, medians)
    if sessions and sessions < 10_000:
        lines.append(
            f"(The 10,000-session targets were measured with {sessions:,} sessions in this run. Shutdown "
            "time grows with the session count, so its verdict here says little about 10,000.)"
        )
        lines.append("")

    lines.append("#### Ratios")
    lines.append("")
    to_sdk = [f"{letter(ours)}/{letter(sdk)} ours/SDK {mode}" for mode, ours, sdk in pairs]
    to_floor = [f"{letter(ours)}/E ours {mode}/floor" for mode, ours, _sdk in pairs]
    lines.append("| metric | " + " | ".join(to_sdk + to_floor) + " |")
    lines.append("| --- | " + " | ".join("---" for _ in to_sdk + to_floor) + " |")
    for metric, heading, _unit, _pattern in ROWS[:-3]:
        if metric in ("rss_after_kib", "delete_settle_s"):
            continue
        values = [ratio(get(ours, metric), get(sdk, metric)) for _mode, ours, sdk in pairs]
        sessionless = metric in (
            "rss_per_session_kib",
            "real_rss_per_session_kib",
            "latency_growth",
            "shutdown_s",
        )
        # the floor keeps no sessions: no meaningful ratio for the per-session metrics
        values += [
            math.nan if sessionless else ratio(get(ours, metric), get("floor", metric))
            for _, ours, _ in pairs
        ]
        lines.append(f"| {heading} | " + " | ".join(times(value) for value in values) + " |")
    lines.append("")

    lines.append("#### Medians")
    lines.append("")
    lines.append("| metric | unit | " + " | ".join(LABELS[key] for key in servers) + " |")
    lines.append("| --- | --- | " + " | ".join("---" for _ in servers) + " |")
    for metric, heading, unit, pattern in ROWS:
        lines.append(
            f"| {heading} | {unit} | " + " | ".join(fmt(get(key, metric), pattern) for key in servers) + " |"
        )
    lines.append("")

    mcp_best = max((get(key, "c16_rate") for key in servers if key != "floor"), default=math.nan)
    mcp_best64 = max((get(key, "c64_rate") for key in servers if key != "floor"), default=math.nan)
    floor_rate, floor_gen = get("floor", "c16_rate"), get("floor", "c16_gen_cpu")
    capacity = ratio(floor_rate, floor_gen)
    lines.append(
        "Load generator headroom: the floor's tools/call rate is "
        f"{times(ratio(floor_rate, mcp_best))} the fastest MCP server's at c16 and "
        f"{times(ratio(get('floor', 'c64_rate'), mcp_best64))} at c64, with the floor's server using "
        f"{fmt(get('floor', 'c16_server_cpu'))} of its core (hypercorn's own ceiling) and the load "
        f"generator {fmt(floor_gen)} of its own. At that cost per call the load generator alone could "
        f"drive about {fmt(capacity, '{:,.0f}')} calls/s, {times(ratio(capacity, mcp_best))} the fastest "
        "MCP server's rate: the MCP servers' rates are the servers' limits, not the client's."
    )
    lines.append("")
    lines.append("![ours / SDK against each target](bench-ratios.png)")
    lines.append("")
    lines.append("![throughput, latency, open and DELETE rates](bench-throughput.png)")
    lines.append("")
    lines.append("![memory per idle session, latency as sessions grow, shutdown](bench-memory.png)")
    return "\n".join(lines)


def update_markdown(path: Path, body: str) -> None:
    """Replace what lies between the markers in `path` (append the markers if they are missing)."""
    text = path.read_text() if path.exists() else ""
    block = f"{START}\n{body}\n{END}"
    if START in text and END in text:
        head, _, rest = text.partition(START)
        _, _, tail = rest.partition(END)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


def render(results: dict[str, Any], out: Path, *, write_docs: bool = True) -> str:
    """The markdown tables; with `write_docs`, also into out/benchmarks.md and the plots into out/."""
    body = tables(results)
    if write_docs:
        update_markdown(out / "benchmarks.md", body)
        # Here, not at the top: plots.py draws with this module's labels and targets.
        from tests.bench.plots import plots

        for path in plots(results, out):
            print(f"wrote {path}")
        print(f"updated {out / 'benchmarks.md'}")
    return body


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    out = Path(args[0]) if args else Path(__file__).resolve().parents[2] / "docs"
    results = json.loads((out / "bench-results.json").read_text())
    print(render(results, out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
