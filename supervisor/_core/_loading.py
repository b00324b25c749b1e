"""Import the server a user names on the command line, the way uvicorn and hypercorn do.

A target is `module:attribute` or `path/to/file.py:attribute`; without the attribute the first of
`server`, `mcp` and `app` that is a server is taken. The attribute may be
an `MCPServer`, a low-level `Server`, or a `Served` bundle carrying a server together with the
`SupervisorConfig` it needs (event store, retry interval, ...), so one command serves it completely.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
from mcp.server.lowlevel.server import Server
from mcp.server.mcpserver import MCPServer

from actors import lowlevel_of
from supervisor._core._config import SupervisorConfig

AnyServer = MCPServer | Server[Any]


class TargetError(Exception):
    """The target cannot be imported or does not name a server."""


@attrs.frozen
class Served:
    """A server bundled with the supervisor options it must be served with."""

    server: AnyServer
    config: SupervisorConfig = attrs.field(factory=SupervisorConfig)


def resolve_server(server: AnyServer) -> Server[Any]:
    """The low-level server behind an `MCPServer` (the same unwrap the SDK's own client does)."""
    if isinstance(server, MCPServer):
        return lowlevel_of(server)
    if isinstance(server, Server):
        return server
    raise TargetError(f"expected an MCPServer or a low-level Server, got {type(server).__name__}")


DEFAULT_ATTRIBUTES = ("server", "mcp", "app")
"""Looked for, in this order, when a target names no attribute (FastMCP's convention)."""


def load_target(target: str) -> Served:
    """Import `module[:attr]` or `path/to/file.py[:attr]`, the current directory importable.

    Without `:attr` the first of `server`, `mcp`, `app` that is a server is taken. Bare servers
    are wrapped in `Served`.
    """
    where, _, attribute = target.partition(":")
    if not where:
        raise TargetError(
            f"target {target!r} must look like 'module:attribute' or 'path/to/file.py:attribute'"
        )
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    if not where.endswith(".py") and ("/" in where or where.startswith(".")):
        raise TargetError(_not_a_module(where))
    module = _import_file(where) if where.endswith(".py") else _import_module(where)
    if attribute:
        return _as_served(_attribute(module, where, attribute), target)
    for name in DEFAULT_ATTRIBUTES:
        value = getattr(module, name, None)
        if isinstance(value, Served | MCPServer | Server):
            return _as_served(value, target)
    raise TargetError(
        f"{where!r} defines no server named {', '.join(DEFAULT_ATTRIBUTES)}: name it as {where}:attribute"
    )


def _import_module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name is not None and (name == error.name or name.startswith(error.name + ".")):
            # The target itself is not there: no frames of the user's to show.
            raise TargetError(f"cannot import {name!r}: {error}") from None
        raise TargetError(in_their_code(name, error)) from None
    except Exception as error:
        raise TargetError(in_their_code(name, error)) from None


def _not_a_module(where: str) -> str:
    """What to say for a path given where a module name or a .py file belongs (`serve ../app`)."""
    path = Path(where)
    if path.with_suffix(".py").is_file():
        return f"target {where!r} is a path without '.py': give the file, {where}.py[:attribute]"
    if path.is_dir():
        return (
            f"target {where!r} is a folder: give its server file (path/to/file.py[:attribute]), or run from "
            "the folder holding its package and name it as a module (package.module[:attribute])"
        )
    return f"target {where!r} is neither a module name (package.module) nor a .py file: no such file"


def in_their_code(name: str, error: BaseException) -> str:
    """An error raised by the user's module while it was imported: its type and message, then the
    user's own frames (file, line, code), ours and importlib's left out."""
    if isinstance(error, SyntaxError):
        code = f"\n    {error.text.strip()}" if error.text else ""
        return (
            f"cannot import {name!r}: SyntaxError: {error.msg} ({error.filename}, line {error.lineno}){code}"
        )
    frames = [frame for frame in traceback.extract_tb(error.__traceback__) if _theirs(frame.filename)]
    shown = "".join(
        f'\n  File "{frame.filename}", line {frame.lineno}, in {frame.name}'
        + (f"\n    {frame.line}" if frame.line else "")
        for frame in frames
    )
    return f"cannot import {name!r}: {type(error).__name__}: {error}{shown}"


_NOT_THEIRS = (
    str(Path(__file__).resolve().parents[1]),
    str(Path(__file__).resolve().parents[2] / "actors"),
    str(Path(importlib.__file__).resolve().parent),
)
"""Our packages and importlib's: frames from these are left out of an import error."""


def _theirs(filename: str) -> bool:
    """A frame of the user's code: not importlib's (`<frozen ...>` or its package), not ours."""
    return not filename.startswith("<") and not filename.startswith(_NOT_THEIRS)


def _import_file(path: str) -> ModuleType:
    """A server file imported by path, with its own folder importable (for its sibling modules)."""
    file = Path(path).resolve()
    if not file.is_file():
        raise TargetError(f"no such file: {path}")
    folder = str(file.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(file.stem, file)
    if spec is None or spec.loader is None:
        raise TargetError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[file.stem] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        raise TargetError(in_their_code(path, error)) from None
    return module


def _attribute(module: ModuleType, where: str, attribute: str) -> object:
    value: object = module
    for part in attribute.split("."):
        try:
            value = getattr(value, part)
        except AttributeError as error:
            raise TargetError(f"{where!r} has no attribute {attribute!r}") from error
    return value


def _as_served(value: object, target: str) -> Served:
    if isinstance(value, Served):
        return value
    if isinstance(value, MCPServer | Server):
        return Served(server=value)
    raise TargetError(
        f"{target!r} is a {type(value).__name__}, not an MCPServer, a low-level Server or a Served bundle"
    )
