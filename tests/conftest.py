"""Fixtures: a test server with a gate, served by real hypercorn on an ephemeral loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from supervisor import SupervisorConfig
from supervisor.testing import TestServer, serve_for_test
from tests.support.cluster import Redis
from tests.support.servers import Gate, build_server
from tests.support.tracing import Spans, kept_spans


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
async def served(gate: Gate) -> AsyncIterator[TestServer]:
    async with serve_for_test(build_server(gate), SupervisorConfig()) as test_server:
        yield test_server


@pytest.fixture
async def redis(tmp_path: Path) -> AsyncIterator[Redis]:
    """A redis-server of the test's own (tests.support.cluster.Redis), stopped at the end."""
    server = Redis(tmp_path)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


@pytest.fixture
def spans() -> Iterator[Spans]:
    """OpenTelemetry spans finished during the test, in memory (tests/support/tracing.py)."""
    yield from kept_spans()
