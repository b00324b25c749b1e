"""Import the server a user names on the command line, the way uvicorn and hypercorn do.

A target is `module:attribute` (or `module` alone, meaning `module:server`). The attribute may be
an `MCPServer`, a low-level `Server`, or a `Served` bundle carrying a server together with the
`SupervisorConfig` it needs (event store, retry interval, ...), so one command serves it completely.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import attrs
from mcp.server.lowlevel.server import Server
from mcp.server.mcpserver import MCPServer

from supervisor.config import SupervisorConfig

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
        return server._lowlevel_server
    if isinstance(server, Server):
        return server
    raise TargetError(f"expected an MCPServer or a low-level Server, got {type(server).__name__}")


def load_target(target: str) -> Served:
    """Import `module:attr` with the current directory importable; wrap bare servers in `Served`."""
    module_name, _, attribute = target.partition(":")
    attribute = attribute or "server"
    if not module_name:
        raise TargetError(f"target {target!r} must look like 'module:attribute'")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise TargetError(f"cannot import {module_name!r}: {error}") from error
    value: object = module
    for part in attribute.split("."):
        try:
            value = getattr(value, part)
        except AttributeError as error:
            raise TargetError(f"module {module_name!r} has no attribute {attribute!r}") from error
    if isinstance(value, Served):
        return value
    if isinstance(value, MCPServer | Server):
        return Served(server=value)
    raise TargetError(
        f"{target!r} is a {type(value).__name__}, not an MCPServer, a low-level Server or a Served bundle"
    )
