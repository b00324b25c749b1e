"""A change before and after, from one batch: `python -m tests.bench.before_after RESULTS.json`.

`scripts/bench --before DIR` runs each of ours once more from another checkout, as `KEY@before`,
in the same batch as everything else. This prints, for each such pair, its medians before and
after, and each one's ratio to the SDK's manager in the same mode (or to the floor for DELETE),
as a markdown table: the ratios carry the comparison, since both sides ran minutes apart on the
same machine and against the same SDK server.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.bench.report import LABELS, ROWS, fmt, ratio, times

SHOWN = (
    "open_rate",
    "c1_rate",
    "c16_rate",
    "c64_rate",
    "c1_p50_ms",
    "c16_p99_ms",
    "rss_per_session_kib",
    "real_rss_per_session_kib",
    "delete_rate",
    "shutdown_s",
)
"""The figures issue 25's targets are read from, in the order of its table."""


def reference(server: str, metric: str) -> str:
    """What a figure of ours is set against: the floor for DELETE, else the SDK in the same mode."""
    if metric == "delete_rate":
        return "floor"
    return "sdk-json" if "json" in server else "sdk-sse"


def table(medians: dict[str, dict[str, float]], server: str) -> list[str]:
    """Rows for one of ours: before, after, and each against its reference."""
    before, after = medians[f"{server}@before"], medians[server]
    headings = {metric: (heading, unit, pattern) for metric, heading, unit, pattern in ROWS}
    lines = [
        f"**{LABELS[server]}**",
        "",
        "| metric | unit | before | after | before / reference | after / reference | reference |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for metric in SHOWN:
        heading, unit, pattern = headings[metric]
        other = reference(server, metric)
        against = medians.get(other, {}).get(metric, math.nan)
        old, new = before.get(metric, math.nan), after.get(metric, math.nan)
        lines.append(
            f"| {heading} | {unit} | {fmt(old, pattern)} | {fmt(new, pattern)} | "
            f"{times(ratio(old, against))} | {times(ratio(new, against))} | {LABELS[other]} |"
        )
    lines.append("")
    return lines


def render(results: dict[str, Any]) -> str:
    medians: dict[str, dict[str, float]] = results["medians"]
    lines: list[str] = []
    for server in LABELS:
        if server in medians and f"{server}@before" in medians:
            lines += table(medians, server)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    path = Path(args[0] if args else "docs/bench-results.json")
    print(render(json.loads(path.read_text())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
