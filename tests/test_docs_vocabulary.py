"""The docs name every close reason, request outcome, residence and refusal cause the code has.

A new member of any of these fails here until docs/ says what it means (issue 24: one home for
each policy, and the docs that follow it)."""

from __future__ import annotations

import re

import pytest

from actors import CLOSE_POLICY, CloseReason, RequestOutcome, Residence
from actors._frames import STATUS_CAUSES
from supervisor._core import OpenRefusal
from tests.support.layout import ROOT

DOCS = "\n".join(path.read_text() for path in sorted((ROOT / "docs").glob("*.md")))


def _literals(path: str, pattern: str) -> set[str]:
    return set(re.findall(pattern, (ROOT / path).read_text()))


def refusal_causes() -> set[str]:
    """Every `mcp_refusals_total{cause}` label the code can give."""
    return (
        _literals("supervisor/_http/_refusals.py", r'cause="(\w+)"')
        | _literals("supervisor/_http/_auth_trace.py", r'"(\w+_token|insufficient_scope)"')
        | set(STATUS_CAUSES.values())
        | {refusal.name.lower() for refusal in OpenRefusal}
    )


def test_every_close_reason_has_a_policy() -> None:
    assert set(CLOSE_POLICY) == set(CloseReason)


@pytest.mark.parametrize("reason", [reason.value for reason in CloseReason])
def test_the_architecture_names_every_close_reason_in_its_table(reason: str) -> None:
    table = (ROOT / "docs" / "architecture.md").read_text()
    assert f"| `{reason}` |" in table


@pytest.mark.parametrize("name", [outcome.value for outcome in RequestOutcome])
def test_the_docs_name_every_request_outcome(name: str) -> None:
    assert f"`{name}`" in DOCS


@pytest.mark.parametrize("name", [residence.value for residence in Residence])
def test_the_docs_name_every_residence(name: str) -> None:
    assert f"`{name}`" in DOCS


@pytest.mark.parametrize("cause", sorted(refusal_causes()))
def test_the_docs_name_every_refusal_cause(cause: str) -> None:
    assert f"`{cause}`" in DOCS
