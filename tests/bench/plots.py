"""The PNG plots of a benchmark run (bench-ratios.png, bench-throughput.png, bench-memory.png).

Drawn with matplotlib when it is installed (`scripts/bench` installs it); the tables are in
`tests.bench.report`, whose names and pairs these share.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from tests.bench.report import LABELS, TARGETS, label, present_pairs, spread, times

COLORS = {
    "ours-sse": "#1f5fa8",
    "ours-json": "#6fa8dc",
    "sdk-sse": "#c55a11",
    "sdk-json": "#f4b183",
    "floor": "#9e9e9e",
    "ours-sse-hib": "#2e7d32",
    "ours-json-hib": "#81c784",
}


@attrs.frozen
class Figures:
    """What every figure of one run reads, and matplotlib's pyplot to draw them with."""

    plt: Any
    medians: dict[str, dict[str, float]]
    rounds: list[dict[str, Any]]
    note: str
    """Said in each title of a quick run: its numbers are provisional."""
    sessions: int

    @property
    def servers(self) -> list[str]:
        return [key for key in LABELS if key in self.medians]

    def bars(
        self,
        axis: Any,
        shown: Sequence[str],
        groups: Sequence[str],
        metrics: Sequence[str],
        title: str,
        unit: str,
    ) -> None:
        """Grouped bars: one group per metric, one bar per server; median with min-max whiskers."""
        width = 0.8 / len(shown)
        for index, server in enumerate(shown):
            xs = [g + (index - (len(shown) - 1) / 2) * width for g in range(len(groups))]
            values = [self.medians[server].get(metric, math.nan) for metric in metrics]
            lows, highs = [], []
            for metric, value in zip(metrics, values, strict=True):
                low, high = spread(self.rounds, server, metric)
                finite = math.isfinite(value) and math.isfinite(low) and math.isfinite(high)
                lows.append(max(0.0, value - low) if finite else 0.0)
                highs.append(max(0.0, high - value) if finite else 0.0)
            heights = [value if math.isfinite(value) else 0.0 for value in values]
            drawn = axis.bar(
                xs, heights, width, label=LABELS[server], color=COLORS[server], yerr=[lows, highs], capsize=2
            )
            axis.bar_label(drawn, labels=[label(value) for value in values], fontsize=7, padding=2)
        axis.set_xticks(range(len(groups)), list(groups))
        axis.set_title(title, fontsize=10)
        axis.set_ylabel(unit)
        axis.margins(y=0.15)
        axis.grid(axis="y", alpha=0.3)

    def ratios(self) -> Any:
        """ours/SDK against each target, both modes: the whole verdict in one picture."""
        rows = [target for target in TARGETS if not target.absolute or target.metric == "latency_growth"]
        pairs = present_pairs(self.medians)
        figure, axis = self.plt.subplots(figsize=(10, 0.32 * len(rows) * max(2, len(pairs)) + 1.4))
        ticks, names = [], []
        extent = [0.5, 2.0]
        for row, target in enumerate(reversed(rows)):
            extent += self._target_row(axis, row, target, pairs)
            ticks.append(row)
            direction = ">=" if target.higher_is_better else "<="
            what = target.text.split(" >=")[0].split(" <=")[0].split(" no worse")[0]
            names.append(f"{what}\n(target {direction} {target.bound:g}x)")
        axis.set_xscale("log")
        axis.axvline(1.0, color="gray", linewidth=0.8)
        axis.set_yticks(ticks, names, fontsize=8)
        axis.set_xlabel(
            "ours / SDK, same mode (latency growth: many / 10 sessions, ours); black tick: target"
        )
        left, right = min(extent) / 1.5, max(extent) * 2.2
        axis.set_xlim(left, right)
        marks = [
            m for m in (0.1, 0.25, 0.5, 0.75, 1.0, 1.3, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0) if left <= m <= right
        ]
        axis.set_xticks(marks, [f"{m:g}x" for m in marks])
        axis.minorticks_off()
        axis.set_title(
            f"Targets of issue 6, ours / SDK per pair: green met, red not (dark SSE, light JSON){self.note}",
            fontsize=10,
        )
        axis.grid(axis="x", alpha=0.3, which="both")
        figure.tight_layout()
        return figure

    def _target_row(self, axis: Any, row: int, target: Any, pairs: list[tuple[str, str, str]]) -> list[float]:
        """One target's bars, a pair each, and its bound's tick; the values the x axis must show."""
        band = 0.8 / max(1, len(pairs))
        offsets = [0.4 - band * (index + 0.5) for index in range(len(pairs))]
        extent: list[float] = []
        for offset, (mode, ours, sdk) in zip(offsets, pairs, strict=True):
            value = target.value(self.medians, ours, sdk)
            y = row + offset
            shown_value = value if math.isfinite(value) and value > 0 else 1.0
            extent += [shown_value, target.bound]
            color = "#2e7d32" if target.met(value) else "#c62828"
            alpha = 0.85 if mode.startswith("SSE") else 0.5
            axis.barh(y, shown_value - 1.0, left=1.0, height=band * 0.9, color=color, alpha=alpha)
            axis.text(
                max(shown_value, 1.0, target.bound) * 1.04,
                y,
                f"{mode} {times(value)}",
                va="center",
                fontsize=8,
            )
        axis.plot([target.bound, target.bound], [row - 0.45, row + 0.45], color="black", linewidth=1.5)
        return extent

    def throughput(self, concurrencies: Sequence[str]) -> Any:
        """Rates and latencies, the floor included (it shows the HTTP stack's own ceiling)."""
        servers, sessions = self.servers, self.sessions
        figure, axes = self.plt.subplots(2, 2, figsize=(12, 8.5))
        rates = [f"{c}_rate" for c in concurrencies]
        self.bars(
            axes[0][0], servers, concurrencies, rates, "tools/call throughput (higher is better)", "calls/s"
        )
        p99s = [f"{c}_p99_ms" for c in concurrencies]
        self.bars(axes[0][1], servers, concurrencies, p99s, "tools/call p99 latency (lower is better)", "ms")
        axes[0][1].set_yscale("log")
        self.bars(
            axes[1][0],
            servers,
            ["c16"],
            ["open_rate"],
            "session open: initialize + initialized",
            "sessions/s",
        )
        self.bars(
            axes[1][1], servers, ["c16"], ["delete_rate"], f"DELETE of {sessions:,} sessions", "sessions/s"
        )
        figure.legend(*axes[0][0].get_legend_handles_labels(), loc="lower center", ncol=4, fontsize=9)
        figure.suptitle(f"Rates and latency, median of rounds (whiskers: min-max){self.note}", fontsize=11)
        figure.tight_layout(rect=(0, 0.07, 1, 1))
        return figure

    def memory(self) -> Any:
        """Sessions at scale (the floor keeps no sessions, so it is left out)."""
        mcp, sessions = [key for key in self.servers if key != "floor"], self.sessions
        figure, axes = self.plt.subplots(1, 3, figsize=(13, 4.8))
        rss = f"RSS per idle session ({sessions:,} open)"
        self.bars(axes[0], mcp, ["idle session"], ["rss_per_session_kib"], rss, "KiB")
        groups, latencies = ["10 open", f"{sessions:,} open"], ["latency_few_ms", "latency_many_ms"]
        self.bars(axes[1], mcp, groups, latencies, "one tools/call, median latency", "ms")
        shutdown = f"shutdown with {sessions:,} sessions open"
        self.bars(axes[2], mcp, ["SIGTERM to exit"], ["shutdown_s"], shutdown, "s")
        axes[2].axhline(1.0, color="black", linestyle="--", linewidth=0.8)
        axes[2].annotate(
            "target < 1 s", (0.02, 1.0), xycoords=("axes fraction", "data"), fontsize=7, va="bottom"
        )
        figure.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=4, fontsize=9)
        figure.suptitle(f"Sessions at scale: lower is better{self.note}", fontsize=11)
        figure.tight_layout(rect=(0, 0.07, 1, 1))
        return figure


def plots(results: dict[str, Any], out: Path) -> list[Path]:
    """bench-ratios.png, bench-throughput.png and bench-memory.png; none (and a note) without matplotlib."""
    try:
        import matplotlib  # type: ignore[import-not-found,unused-ignore]

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        print("matplotlib is not installed: no plots (pip install 'matplotlib>=3.8')", file=sys.stderr)
        return []
    medians: dict[str, dict[str, float]] = results["medians"]
    servers = [key for key in LABELS if key in medians]
    note = "\n[quick mode: provisional, noisy numbers]" if results["meta"]["mode"] == "quick" else ""
    sessions = int(medians[servers[0]].get("sessions_open", 0)) if servers else 0
    figures = Figures(plt, medians, results["rounds"], note, sessions)
    concurrencies = [f"c{c}" for c in results["meta"]["settings"]["concurrencies"]]
    written: list[Path] = []
    for name, make in (
        ("bench-ratios.png", figures.ratios),
        ("bench-throughput.png", lambda: figures.throughput(concurrencies)),
        ("bench-memory.png", figures.memory),
    ):
        figure = make()
        path = out / name
        figure.savefig(path, dpi=110)
        plt.close(figure)
        written.append(path)
    return written
