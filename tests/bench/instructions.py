"""Machine instructions per tools/call, counted by valgrind: a CPU cost that noise cannot move.

`python -m tests.bench.instructions [KEYS] [--concurrency C] [--before DIR]` (KEYS from
tests/bench/servers.py, default `ours-json,sdk-json`; with `--before`, each of ours also run from the
checkout DIR, as `KEY@before`): starts each server under cachegrind (instruction counts only, no
cache simulation) twice, drives 100 and then 500 `echo` calls at C (1), stops it with SIGTERM,
and prints the instructions per call of the difference, so start-up and shutdown cancel out.
Rates and CPU times on this machine swing by a third between runs; an instruction count repeats
to within 1 %, which tells apart differences of a few per cent.

Needs valgrind (`apt-get install -y valgrind`). About 2 minutes per server.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import trio

from tests.bench import servers
from tests.bench.call_count import drive

LOADS = (100, 500)
STARTUP = 900.0
"""Seconds a server under valgrind may take to listen (imports run some fifty times slower)."""


def cachegrind(out: Path) -> list[str]:
    return ["valgrind", "--tool=cachegrind", "--cache-sim=no", f"--cachegrind-out-file={out}"]


def total(out: Path) -> int:
    found = re.search(r"^summary:\s+(\d+)", out.read_text(), re.MULTILINE)
    if found is None:
        raise RuntimeError(f"no instruction count in {out}")
    return int(found.group(1))


async def per_call(spec: servers.ServerSpec, concurrency: int) -> float:
    """Instructions per tools/call: the difference between the two loads, per call."""
    python = spec.argv(servers.HOST)[0]
    counts = []
    with tempfile.TemporaryDirectory() as folder:
        for calls in LOADS:
            out = Path(folder) / f"{calls}.out"
            await drive(spec, [*cachegrind(out), python], calls, concurrency, STARTUP)
            counts.append(total(out))
    return (counts[1] - counts[0]) / (LOADS[1] - LOADS[0])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.instructions", description=__doc__)
    parser.add_argument("keys", nargs="?", default="ours-json,sdk-json", help="comma-separated server keys")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument(
        "--before", type=Path, default=None, help="another checkout: ours from it too, as KEY@before"
    )
    options = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("tests.bench.instructions: needs valgrind (apt-get install -y valgrind)", file=sys.stderr)
        return 2
    specs = servers.chosen(options.keys.split(","), options.before)
    for spec in specs:
        key = spec.key
        count = trio.run(per_call, spec, options.concurrency)
        print(f"{key}: {count / 1e6:.3f} M instructions per tools/call at concurrency {options.concurrency}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
