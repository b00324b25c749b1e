"""Run a module with every Python bytecode counted: `python opcode_tracer.py OUT -m MODULE ARGS...`.

At exit (a SIGTERM the module handles included) it writes OUT, a JSON list of
`[file, first line, function, bytecodes run, calls]`, one per function, every thread counted.
`tests.bench.opcodes` runs the servers under it. Some fifty times slower than the plain run.
"""

from __future__ import annotations

import atexit
import json
import os
import runpy
import sys
import threading
from types import CodeType, FrameType
from typing import Any

_bytecodes: dict[CodeType, int] = {}
_calls: dict[CodeType, int] = {}


def _trace(frame: FrameType, event: str, _: Any) -> Any:
    code = frame.f_code
    if event == "opcode":
        _bytecodes[code] = _bytecodes.get(code, 0) + 1
    elif event == "call":
        frame.f_trace_opcodes = True
        _calls[code] = _calls.get(code, 0) + 1
    return _trace


def _write(out: str) -> None:
    sys.settrace(None)
    rows: dict[tuple[str, int, str], list[int]] = {}
    for code in _bytecodes.keys() | _calls.keys():
        row = rows.setdefault((code.co_filename, code.co_firstlineno, code.co_name), [0, 0])
        row[0] += _bytecodes.get(code, 0)
        row[1] += _calls.get(code, 0)
    with open(out, "w") as file:
        json.dump([[*key, *counts] for key, counts in rows.items()], file)


def main() -> None:
    out, flag, module, *rest = sys.argv[1:]
    if flag != "-m":
        raise SystemExit("usage: opcode_tracer.py OUT -m MODULE [ARGS...]")
    atexit.register(_write, out)
    sys.argv = [module, *rest]
    # As `python -m` does: the checkout it runs in comes first, not this script's folder.
    sys.path[0] = os.getcwd()
    threading.settrace(_trace)
    sys.settrace(_trace)
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
