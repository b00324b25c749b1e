"""A bad configuration fails when it is made, with a message naming the field."""

from __future__ import annotations

import math

import pytest

from supervisor import RedisMode, StoreSettings, SupervisorConfig


@pytest.mark.parametrize("field", ["idle_timeout", "max_request_body_size", "max_sessions", "mailbox_size"])
@pytest.mark.parametrize("value", [0, -1, math.inf, math.nan])
def test_non_positive_or_non_finite_values_are_refused(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=f"{field} must be a positive, finite number"):
        SupervisorConfig(**{field: value})  # type: ignore[arg-type]


def test_a_path_must_start_with_a_slash() -> None:
    with pytest.raises(ValueError, match="path must start with '/'"):
        SupervisorConfig(path="mcp")


@pytest.mark.parametrize(
    "field", ["retry_after", "send_timeout", "open_timeout", "mailbox_size", "drain_grace"]
)
def test_a_required_value_cannot_be_none(field: str) -> None:
    with pytest.raises(ValueError, match=f"{field} must be a"):
        SupervisorConfig(**{field: None})  # type: ignore[arg-type]


def test_a_count_must_be_whole_and_a_flag_a_bool() -> None:
    with pytest.raises(ValueError, match="mailbox_size must be a positive, finite number and whole"):
        SupervisorConfig(mailbox_size=2.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="json_response"):
        SupervisorConfig(json_response="yes")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("settings", "said"),
    [
        ({"mode": RedisMode.SENTINEL}, "the sentinel mode needs the service's name"),
        (
            {"mode": RedisMode.SENTINEL, "sentinel_master": "m", "redis_url": "unix:///run/redis.sock"},
            "the sentinel mode takes a redis:// or rediss:// URL",
        ),
        (
            {"mode": RedisMode.CLUSTER, "redis_url": "unix:///run/redis.sock"},
            "the cluster mode takes a redis:// or rediss:// URL",
        ),
        ({"sentinel_master": "m"}, "sentinel_master names a service of the sentinel mode"),
    ],
)
def test_store_settings_that_cannot_work_are_refused_when_made(
    settings: dict[str, object], said: str
) -> None:
    with pytest.raises(ValueError, match=said):
        StoreSettings(**{"redis_url": "redis://x:26379", **settings})  # type: ignore[arg-type]
