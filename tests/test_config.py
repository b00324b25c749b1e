"""A bad configuration fails when it is made, with a message naming the field."""

from __future__ import annotations

import math

import pytest

from supervisor._config import SupervisorConfig


@pytest.mark.parametrize("field", ["idle_timeout", "max_request_body_size", "max_sessions", "mailbox_size"])
@pytest.mark.parametrize("value", [0, -1, math.inf, math.nan])
def test_non_positive_or_non_finite_values_are_refused(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=f"{field} must be a positive, finite number"):
        SupervisorConfig(**{field: value})  # type: ignore[arg-type]


def test_a_path_must_start_with_a_slash() -> None:
    with pytest.raises(ValueError, match="path must start with '/'"):
        SupervisorConfig(path="mcp")
