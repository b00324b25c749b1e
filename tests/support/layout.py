"""The shape of the code, read from its own source: module sizes, imports, layers.

`tests/test_layout.py` holds the code to the limits in DEVELOPERS.md (modules under 400 lines,
classes under 300, functions under 60, no import cycles, imports only downward), and
`python -m tests.support.layout --svg docs/layers.svg` draws the layer map in docs/architecture.md.
"""

from __future__ import annotations

import argparse
import ast
import html
from collections.abc import Iterator
from pathlib import Path

import attrs

ROOT = Path(__file__).resolve().parent.parent.parent
PACKAGES = ("actors", "supervisor")

LAYERS: tuple[tuple[str, str], ...] = (
    ("actors", "the session actor: values, rules, parts, incarnation, actor"),
    ("supervisor._cluster", "the cluster: Redis, leases, records, claims"),
    ("supervisor._core", "the supervisor core: the nursery, config, counts"),
    ("supervisor._http", "HTTP: front, endpoint, routes, exchange, refusals"),
    ("supervisor._serve", "serving: open_supervisor, hypercorn"),
    ("supervisor", "the public face"),
    ("supervisor.testing", "the fault toolkit"),
    ("supervisor._cli", "the command line and the operator's tools"),
    ("supervisor.__main__", "python -m supervisor"),
)
"""The packages, bottom to top: a module's layer is its package's. A module may import any module of
its own package, and of a package below only the package itself (its `__init__.py`, the layer's
interface), never a module behind it; nothing imports from above."""


@attrs.frozen
class Module:
    name: str
    path: Path
    lines: int
    imports: frozenset[str]
    """Project modules imported (TYPE_CHECKING and function-level imports included)."""
    long_classes: tuple[tuple[str, int], ...]
    long_functions: tuple[tuple[str, int], ...]
    wide_constructors: tuple[tuple[str, int], ...]
    """Classes whose constructor takes more than `MAX_POSITIONAL` arguments by position."""
    private_reads: tuple[str, ...]
    """`other._name` anywhere but on `self` or `cls`: code reading another object's private fields."""


MAX_POSITIONAL = 4
"""Constructors with more fields than this take the rest by keyword (`ServeRequest(scope=...)`)."""


def _positional_fields(node: ast.ClassDef) -> int | None:
    """How many arguments an attrs class (or a class's `__init__`) takes by position."""
    decorators = [ast.unparse(decorator) for decorator in node.decorator_list]
    if any(text.startswith(("attrs.define", "attrs.frozen", "attrs.mutable")) for text in decorators):
        if any("kw_only=True" in text for text in decorators):
            return 0
        return sum(
            1
            for statement in node.body
            if isinstance(statement, ast.AnnAssign)
            and isinstance(statement.target, ast.Name)
            and not any(word in ast.unparse(statement) for word in ("ClassVar", "init=False", "kw_only=True"))
        )
    for statement in node.body:
        if isinstance(statement, ast.FunctionDef) and statement.name == "__init__":
            return len(statement.args.args) - 1
    return None


ARGPARSE_PRIVATE = frozenset({"_actions", "_AppendAction"})
"""argparse offers no public way to list a parser's actions or to tell an append action."""


def _private_reads(tree: ast.Module) -> tuple[str, ...]:
    return tuple(
        f"{ast.unparse(node.value)}.{node.attr} (line {node.lineno})"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
        and ast.unparse(node.value) not in ("self", "cls")
        and node.attr not in ARGPARSE_PRIVATE
    )


def _wide_constructors(tree: ast.Module) -> tuple[tuple[str, int], ...]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            count = _positional_fields(node)
            if count is not None and count > MAX_POSITIONAL:
                found.append((node.name, count))
    return tuple(found)


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
            wide_constructors=_wide_constructors(tree),
            private_reads=_private_reads(tree),
        )
    return modules


def package_of(name: str) -> str:
    """The layer package a module belongs to: the longest package of LAYERS that contains it."""
    found = [package for package, _ in LAYERS if name == package or name.startswith(package + ".")]
    if not found:
        raise KeyError(f"{name} is in no package of tests/support/layout.py's LAYERS")
    return max(found, key=len)


def layer_of(name: str) -> int:
    packages = [package for package, _ in LAYERS]
    return packages.index(package_of(name))


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


def behind_interfaces(modules: dict[str, Module]) -> list[str]:
    """Imports that reach past another layer's interface into a private module behind it."""
    return [
        f"{module.name} imports {target}: import it from {package_of(target)}"
        for module in modules.values()
        for target in sorted(module.imports)
        if package_of(target) != package_of(module.name)
        and target != package_of(target)
        and not _is_package_init(module, target)
    ]


def _is_package_init(module: Module, target: str) -> bool:
    """A layer's own `__init__.py` re-exports its modules (`supervisor/_core/__init__.py`)."""
    return module.path.name == "__init__.py" and target.startswith(module.name + ".")


_BOX_W, _BOX_H, _GAP, _LEFT, _TITLE, _WIDTH = 178, 34, 8, 10, 24, 1500


def _members(package: str, modules: dict[str, Module]) -> tuple[str, ...]:
    return tuple(sorted(name for name in modules if package_of(name) == package))


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
    bands = [
        (f"{package}: {title}", _rows_of(_members(package, modules), modules)) for package, title in LAYERS
    ]
    heights = [_TITLE + len(rows) * (_BOX_H + _GAP) + 12 for _, rows in bands]
    total = sum(heights) + 10
    parts = []
    y = total
    for (title, rows), height in zip(bands, heights, strict=True):
        y -= height
        band = 'fill="#f3f6fa" stroke="#c9d3df"'
        parts.append(f'<rect x="0" y="{y}" width="{_WIDTH}" height="{height - 4}" {band}/>')
        parts.append(
            f'<text x="8" y="{y + 18}" font-size="13" font-weight="bold">{html.escape(title)}</text>'
        )
        for index, row in enumerate(rows):
            for column, module in enumerate(row):
                x = _LEFT + column * (_BOX_W + _GAP)
                parts.extend(_box(module, x, y + _TITLE + index * (_BOX_H + _GAP)))
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
    for reach in behind_interfaces(modules):
        print("behind an interface:", reach)
    if options.svg is not None:
        options.svg.write_text(svg(modules))


if __name__ == "__main__":
    main()
