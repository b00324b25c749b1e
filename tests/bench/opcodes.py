"""Python bytecodes per tools/call, by module: the CPU cost of each layer, counted, not timed.

`python -m tests.bench.opcodes [KEYS] [--concurrency C] [--before DIR]` (KEYS from
tests/bench/servers.py, default `ours-json,sdk-json`; `--before`: each of ours also run from the
checkout DIR, as `KEY@before`): starts each server under `tests/bench/opcode_tracer.py` twice,
drives 100 and then 400 `echo` calls at C (1), stops it with SIGTERM, and prints per call, from
the difference of the two runs: the bytecodes run and the Python calls made, and by module where
each server's bytecodes go, next to the first server's. A count repeats to within a few
bytecodes per call, where rates on this machine swing by a third; unlike
`tests.bench.instructions` it needs no valgrind, but sees no work done in C (validation, JSON,
the interpreter's own).
"""

from __future__ import annotations

import argparse
import json
import sys
import sysconfig
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import trio

from tests.bench import servers
from tests.bench.call_count import drive

LOADS = (100, 400)
TRACER = Path(__file__).with_name("opcode_tracer.py")
SHOWN = 25


def module_of(filename: str, root: Path) -> str:
    """A short name for where code lives: a package's top two levels, or our own module's path."""
    paths = sysconfig.get_paths()
    for prefix in (paths["purelib"] + "/", str(root) + "/", paths["stdlib"] + "/"):
        if filename.startswith(prefix):
            parts = filename[len(prefix) :].split("/")
            return "/".join(parts[:2]) if len(parts) > 1 else parts[0]
    return filename


async def per_call(spec: servers.ServerSpec, concurrency: int) -> tuple[dict[str, float], float]:
    """Bytecodes per tools/call by module, and Python calls per tools/call."""
    python = spec.argv(servers.HOST)[0]
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        for calls in LOADS:
            out = Path(folder) / f"{calls}.json"
            await drive(spec, [python, str(TRACER), str(out)], calls, concurrency, 120.0)
            runs.append(json.loads(out.read_text()))
    calls = LOADS[1] - LOADS[0]
    bytecodes: defaultdict[str, float] = defaultdict(float)
    python_calls = 0.0
    for sign, rows in ((-1, runs[0]), (1, runs[1])):
        for filename, _, _, count, called in rows:
            bytecodes[module_of(filename, spec.root)] += sign * count / calls
            python_calls += sign * called / calls
    return bytecodes, python_calls


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.opcodes", description=__doc__)
    parser.add_argument("keys", nargs="?", default="ours-json,sdk-json", help="comma-separated server keys")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--before", type=Path, default=None, help="another checkout: ours from it too")
    options = parser.parse_args(argv)
    specs = servers.chosen(options.keys.split(","), options.before)
    measured = {spec.key: trio.run(per_call, spec, options.concurrency) for spec in specs}
    first = specs[0].key
    for key, (bytecodes, python_calls) in measured.items():
        total = sum(bytecodes.values())
        print(f"{key}: {total:,.0f} bytecodes and {python_calls:,.0f} Python calls per tools/call")
    for key, (bytecodes, _) in list(measured.items())[1:]:
        base = measured[first][0]
        print(f"\nby module, {first} against {key} (bytecodes per call):")
        names = base.keys() | bytecodes.keys()
        rows = [(base.get(name, 0.0), bytecodes.get(name, 0.0), name) for name in names]
        rows.sort(key=lambda row: -abs(row[0] - row[1]))
        for mine, theirs, name in rows[:SHOWN]:
            print(f"  {mine:8.0f} {theirs:8.0f} {mine - theirs:+8.0f}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
