"""The public face (issue 27.8): typed for embedders' checkers, and every public name reports
`supervisor` as its module, as trio's do."""

from __future__ import annotations

import inspect
from pathlib import Path

import supervisor
from tests.support.layout import ROOT


def test_the_packages_say_they_are_typed() -> None:
    for package in ("supervisor", "actors"):
        assert (Path(ROOT) / package / "py.typed").is_file()


def test_every_public_class_and_function_reports_the_public_module() -> None:
    for name in supervisor.__all__:
        value = getattr(supervisor, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            if value.__module__.startswith(("mcp", "mcp_types")):
                continue  # re-exported from the SDK, not ours
            assert value.__module__ == "supervisor", name
    assert repr(supervisor.CloseReason.IDLE) == "<CloseReason.IDLE: 'idle'>"
