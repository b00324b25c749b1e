"""The shape of the code, read from its own source: module sizes, imports, layers.

`tests/test_layout.py` holds the code to the limits in DEVELOPERS.md (modules under 400 lines,
classes under 300, functions under 60, no import cycles, imports only downward), and
`python -m tests.layout --svg docs/layers.svg` draws the layer map in docs/architecture.md.
"""

from __future__ import annotations

import argparse
import ast
import html
from collections.abc import Iterator
from pathlib import Path

import attrs

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("actors", "supervisor")

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "values and rules",
        (
            "actors._reasons",
            "actors._state",
            "actors._record",
            "actors._frames",
            "actors._log",
            "actors._sdk",
            "actors._messages",
            "actors._statistics",
            "actors._idle",
        ),
    ),
    (
        "parts",
        (
            "actors._mailbox",
            "actors._faults",
            "actors._polling",
            "actors._answer_watch",
            "actors._direct_answers",
            "actors._inject",
            "actors._settings",
        ),
    ),
    ("incarnation", ("actors._incarnation", "actors._request_task")),
    ("actor", ("actors._actor", "actors")),
    (
        "store",
        (
            "supervisor._node",
            "supervisor._store_urls",
            "supervisor._cluster_secret",
            "supervisor._store_settings",
            "supervisor._redis_scripts",
            "supervisor._redis_store",
            "supervisor._redis_events",
            "supervisor._cluster_terms",
            "supervisor._lease_clock",
            "supervisor._directory",
            "supervisor._claims",
            "supervisor._cluster",
        ),
    ),
    (
        "configuration",
        (
            "supervisor._hosts",
            "supervisor._config",
            "supervisor._gc_tuning",
            "supervisor._startup",
            "supervisor._principal",
            "supervisor._envelope",
            "supervisor._loading",
            "supervisor._tally",
            "supervisor._logs",
            "supervisor._snapshots",
            "supervisor._sdk_surface",
            "supervisor.demo",
        ),
    ),
    (
        "supervisor",
        (
            "supervisor._stateless",
            "supervisor._registry",
            "supervisor._admission",
            "supervisor._core",
            "supervisor._membership",
            "supervisor._metrics",
        ),
    ),
    (
        "HTTP",
        (
            "supervisor._request",
            "supervisor._intake",
            "supervisor._exchange",
            "supervisor._quick_open",
            "supervisor._dispatch",
            "supervisor._session_routes",
            "supervisor._stateless_route",
            "supervisor._endpoint",
            "supervisor._auth",
            "supervisor._health",
            "supervisor._admin",
            "supervisor._proxy",
            "supervisor._auth_trace",
            "supervisor._forward",
            "supervisor._front",
        ),
    ),
    ("serving", ("supervisor._open", "supervisor._serving")),
    (
        "faces",
        (
            "supervisor",
            "supervisor.testing._fault_plan",
            "supervisor.testing._checks",
            "supervisor.testing._serve",
            "supervisor.testing",
            "supervisor._operator",
            "supervisor._haproxy",
            "supervisor._cluster_flags",
            "supervisor._flags",
            "supervisor._cli",
            "supervisor.__main__",
        ),
    ),
)
"""Bottom to top. A module may import from its own layer or any below it, never from above."""


@attrs.frozen
class Module:
    name: str
    path: Path
    lines: int
    imports: frozenset[str]
    """Project modules imported (TYPE_CHECKING and function-level imports included)."""
    long_classes: tuple[tuple[str, int], ...]
    long_functions: tuple[tuple[str, int], ...]


def _name_of(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _project_imports(tree: ast.Module, known: set[str]) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name in known:
                yield name


def _spans(tree: ast.Module, kind: type | tuple[type, ...], limit: int) -> tuple[tuple[str, int], ...]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, kind):
            assert isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > limit:
                found.append((node.name, length))
    return tuple(found)


def read_modules() -> dict[str, Module]:
    paths = [path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))]
    known = {_name_of(path) for path in paths}
    modules = {}
    for path in paths:
        text = path.read_text()
        tree = ast.parse(text)
        name = _name_of(path)
        modules[name] = Module(
            name=name,
            path=path,
            lines=len(text.splitlines()),
            imports=frozenset(target for target in _project_imports(tree, known) if target != name),
            long_classes=_spans(tree, ast.ClassDef, 300),
            long_functions=_spans(tree, (ast.FunctionDef, ast.AsyncFunctionDef), 60),
        )
    return modules


def layer_of(name: str) -> int:
    for index, (_, members) in enumerate(LAYERS):
        if name in members:
            return index
    raise KeyError(f"{name} is in no layer of tests/layout.py: add it to LAYERS")


def cycles(modules: dict[str, Module]) -> list[list[str]]:
    """Every import cycle, each as the list of modules around it (found by depth-first search)."""
    found: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        stack.append(name)
        for target in sorted(modules[name].imports):
            if state.get(target) == 1:
                found.append([*stack[stack.index(target) :], target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[name] = 2

    for name in sorted(modules):
        if name not in state:
            visit(name)
    return found


def upward_imports(modules: dict[str, Module]) -> list[str]:
    return [
        f"{module.name} (layer {layer_of(module.name)}) imports {target} (layer {layer_of(target)})"
        for module in modules.values()
        for target in sorted(module.imports)
        if layer_of(target) > layer_of(module.name)
    ]


_BOX_W, _BOX_H, _GAP, _LEFT, _WIDTH = 178, 34, 8, 130, 1500


def _rows_of(members: tuple[str, ...], modules: dict[str, Module]) -> list[list[Module]]:
    """The modules of one layer, in rows that fit the picture's width."""
    per_row = (_WIDTH - _LEFT) // (_BOX_W + _GAP)
    present = [modules[name] for name in members if name in modules]
    return [present[start : start + per_row] for start in range(0, len(present), per_row)] or [[]]


def _box(module: Module, x: int, y: int) -> list[str]:
    name = module.name
    label = html.escape(name)
    frame = 'rx="4" fill="#fff" stroke="#56708f"'
    return [
        f'<rect x="{x}" y="{y}" width="{_BOX_W}" height="{_BOX_H}" {frame}/>',
        f'<text x="{x + 6}" y="{y + 15}" font-size="10">{label}</text>',
        f'<text x="{x + 6}" y="{y + 28}" font-size="9" fill="#667">{module.lines} lines</text>',
    ]


def svg(modules: dict[str, Module]) -> str:
    """The layer map: one band per layer, the bottom layer at the bottom, a box per module."""
    bands = [(title, _rows_of(members, modules)) for title, members in LAYERS]
    heights = [len(rows) * (_BOX_H + _GAP) + 16 for _, rows in bands]
    total = sum(heights) + 10
    parts = []
    y = total
    for (title, rows), height in zip(bands, heights, strict=True):
        y -= height
        band = 'fill="#f3f6fa" stroke="#c9d3df"'
        parts.append(f'<rect x="0" y="{y}" width="{_WIDTH}" height="{height - 4}" {band}/>')
        parts.append(
            f'<text x="8" y="{y + 22}" font-size="13" font-weight="bold">{html.escape(title)}</text>'
        )
        for index, row in enumerate(rows):
            for column, module in enumerate(row):
                x = _LEFT + column * (_BOX_W + _GAP)
                parts.extend(_box(module, x, y + 8 + index * (_BOX_H + _GAP)))
    size = f'width="{_WIDTH}" height="{total}"'
    head = f'<svg xmlns="http://www.w3.org/2000/svg" {size} font-family="sans-serif">'
    return "\n".join([head, *parts, "</svg>"]) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--svg", type=Path, help="write the layer map here")
    options = parser.parse_args()
    modules = read_modules()
    for module in sorted(modules.values(), key=lambda m: (layer_of(m.name), m.name)):
        imports = ", ".join(sorted(module.imports))
        print(f"{layer_of(module.name)}  {module.name:34} {module.lines:4}  -> {imports}")
    for cycle in cycles(modules):
        print("cycle:", " -> ".join(cycle))
    for upward in upward_imports(modules):
        print("upward:", upward)
    if options.svg is not None:
        options.svg.write_text(svg(modules))


if __name__ == "__main__":
    main()
