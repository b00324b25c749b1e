"""pytest plugin: the SDK's own Streamable HTTP tests, with the supervisor serving their sessions.

Loaded by `scripts/sdk-suite` into a run of the `mcp` release's own test files (from its source
distribution, bodies unchanged). The SDK's tests build their server as
`StreamableHTTPSessionManager(app=server, ...)` (directly, or through `server.streamable_http_app()`)
and drive it with `session_manager.run()` and `handle_request`. This plugin puts
`SupervisedSessionManager` in the manager's place: the same constructor, and inside it a real
supervisor (`open_supervisor`, actors, the SDK transport per session, our ASGI app).

- Stateless managers (`stateless=True`) stay the SDK's: the supervisor has no handshake-era
  stateless mode, so those tests are counted as not served by us.
- With `SDK_SUITE_BASELINE=1` nothing is swapped: the same files against the SDK's own manager,
  on the same trio backend, for comparison.
- `SDK_SUITE_REPORT=path` receives a JSON line per test: its outcome and whether a supervisor
  served it. `tests/sdk_suite/test_sdk_suite.py` compares the two runs.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, ClassVar

import mcp.server.lowlevel.server as sdk_lowlevel
import mcp.server.streamable_http_manager as sdk_manager
import pytest
from mcp.server.streamable_http import EventStore
from mcp.server.transport_security import DEFAULT_MAX_REQUEST_BODY_SIZE, TransportSecuritySettings
from starlette.types import Receive, Scope, Send

from supervisor import ANY_HOST, SessionSupervisor, SupervisorConfig, open_supervisor

SDKManager = sdk_manager.StreamableHTTPSessionManager
BASELINE = os.environ.get("SDK_SUITE_BASELINE") == "1"
HIBERNATE_AT_ONCE = 1e-6 if os.environ.get("SDK_SUITE_HIBERNATE") == "1" else None
"""With `SDK_SUITE_HIBERNATE=1`, every session hibernates as soon as nothing is in flight: each
request after the first wakes a fresh transport and loop from the session's record."""
PATH = "/mcp"

M = "tests/server/test_streamable_http_manager.py::"
S = "tests/server/test_streamable_http_security.py::"
H = "tests/interaction/transports/test_hosting_http.py::"
HS = "tests/interaction/transports/test_hosting_session.py::"
T = "tests/shared/test_streamable_http.py::"

_CONSTRUCTOR = (
    "pins the SDK manager constructor's error text; SupervisorConfig refuses the same values at "
    "construction with its own message (tests/core/test_config.py)"
)
_IDLE = (
    "watches the SDK's per-transport idle scope (and the manager's log line for it); the "
    "supervisor's idle clock is its actor's, tested for the same cases in tests/actors/test_idle_timeout.py"
)
_OPENING = (
    "patches or counts the transports the SDK manager creates for a request without a session; the "
    "supervisor refuses such requests before any session exists (tests/http/test_hostile.py)"
)
NOT_APPLICABLE: dict[str, str] = {
    M + "test_request_body_limit_rejects_non_positive_values": _CONSTRUCTOR,
    M + "test_session_idle_timeout_rejects_invalid_values": _CONSTRUCTOR,
    M + "test_max_sessions_rejects_non_positive_values": _CONSTRUCTOR,
    M + "test_stateful_session_cleanup_on_graceful_exit": "patches the SDK manager's own serve_loop",
    M + "test_stateful_session_cleanup_on_exception": "patches the SDK manager's own serve_loop",
    M + "test_idle_session_is_reaped": _IDLE,
    M + "test_request_in_flight_holds_the_session_open": _IDLE,
    M + "test_open_event_stream_holds_the_session_open": _IDLE,
    M + "test_request_completing_under_an_open_event_stream_does_not_start_the_countdown": _IDLE,
    M + "test_opening_request_that_fails_leaves_no_session": _OPENING,
    M + "test_opening_request_that_is_cancelled_leaves_no_session": _OPENING,
    M + "test_opening_request_whose_session_task_cannot_start_leaves_no_session": _OPENING,
    M + "test_refused_opening_request_leaves_no_session": _OPENING,
}
"""Test id (or its prefix) -> why the test cannot say anything about the supervisor."""

_415 = "a wrong Content-Type is 415 Unsupported Media Type with a JSON-RPC body (the SDK: 400)"
_NOT_RPC = (
    "JSON that is not JSON-RPC 2.0 is -32600 Invalid Request, as JSON-RPC says (the SDK: -32602 "
    "'Validation error')"
)
_PLAIN = "a refused Host (421) or Origin (403) gets a JSON-RPC error body (the SDK: plain text)"
_ID = "an error answer names the request's id when the body says it (the SDK: null)"
_VERSION = (
    "an unknown MCP-Protocol-Version is -32022 naming the supported versions, whatever the body (the "
    "SDK: -32602 about the missing per-request _meta envelope when the body has none)"
)
DELIBERATE: dict[str, str] = {
    T + "test_server_validates_protocol_version_header": _VERSION,
    H + "test_protocol_version_header_is_validated": _VERSION,
    "tests/interaction/transports/test_hosting_http_modern.py::"
    "test_legacy_version_header_falls_through_and_unrecognised_header_routes_to_modern": _VERSION,
    T + "test_content_type_validation": _415,
    S + "test_streamable_http_security_invalid_content_type": _415,
    H + "test_non_json_content_type_is_rejected": _415,
    T + "test_json_parsing": _NOT_RPC,
    H + "test_malformed_and_batched_bodies_return_400": _NOT_RPC,
    S + "test_streamable_http_security_invalid_host_header": _PLAIN,
    S + "test_streamable_http_security_invalid_origin_header": _PLAIN,
    S + "test_streamable_http_security_get_request": _PLAIN,
    H + "test_origin_validation_rejects_disallowed_origins_when_enabled": _PLAIN,
    HS + "test_requests_with_an_unknown_session_id_return_404": _ID,
    HS + "test_delete_terminates_the_session_and_subsequent_requests_return_404": _ID,
    HS + "test_non_initialize_post_without_a_session_id_returns_400": _ID,
    M + "test_new_session_is_refused_at_max_sessions": _ID + "; a 503 carries Retry-After",
}
"""Test id (or its prefix) -> the documented difference it pins (docs/conformance.md)."""


class _Run:
    """What this run has seen: the test now running, the tests a supervisor served, outcomes."""

    current: str | None = None
    served: ClassVar[set[str]] = set()
    outcomes: ClassVar[dict[str, str]] = {}


class SupervisedSessionManager:
    """Stands where the SDK's `StreamableHTTPSessionManager` stood: a supervisor inside."""

    def __init__(
        self,
        app: Any,
        event_store: EventStore | None = None,
        json_response: bool = False,
        stateless: bool = False,
        security_settings: TransportSecuritySettings | None = None,
        retry_interval: int | None = None,
        session_idle_timeout: float | None = sdk_manager.DEFAULT_SESSION_IDLE_TIMEOUT,
        max_request_body_size: int = DEFAULT_MAX_REQUEST_BODY_SIZE,
        max_sessions: int | None = sdk_manager.DEFAULT_MAX_SESSIONS,
    ) -> None:
        assert not stateless
        self.app = app
        self.event_store = event_store
        self.json_response = json_response
        self.stateless = False
        self.security_settings = security_settings
        self.retry_interval = retry_interval
        self.session_idle_timeout = session_idle_timeout
        self.max_request_body_size = max_request_body_size
        self.max_sessions = max_sessions
        self.config = SupervisorConfig(
            json_response=json_response,
            event_store=event_store,
            retry_interval=retry_interval,
            # The SDK manager's None checks no Host: say so by name, as our config wants.
            security=security_settings if security_settings is not None else ANY_HOST,
            idle_timeout=session_idle_timeout,
            max_request_body_size=max_request_body_size,
            max_sessions=max_sessions,
            path=PATH,
            hibernate_after=HIBERNATE_AT_ONCE,
        )
        self._supervisor: SessionSupervisor | None = None
        self._has_started = False
        if _Run.current is not None:
            _Run.served.add(_Run.current)

    @asynccontextmanager
    async def run(self) -> AsyncIterator[None]:
        if self._has_started:
            raise RuntimeError("StreamableHTTPSessionManager .run() can only be called once per instance.")
        self._has_started = True
        async with open_supervisor(self.app, self.config) as supervisor:
            self._supervisor = supervisor
            try:
                yield
            finally:
                self._supervisor = None

    async def handle_request(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Whatever path the test mounted the manager at, it is the MCP endpoint (as for the SDK's)."""
        if self._supervisor is None:
            raise RuntimeError("Task group is not initialized. Make sure to use run().")
        await self._supervisor.asgi_app({**scope, "path": PATH, "root_path": ""}, receive, send)

    asgi_app = handle_request

    @property
    def _server_instances(self) -> dict[str, Any]:
        """What the SDK's manager keeps under this name, read through the supervisor's public face:
        the sessions that take requests, each with its transport (None while one is dormant)."""
        supervisor = self._supervisor
        if supervisor is None:
            return {}
        routable = ((info.session_id, supervisor.route(info.session_id)) for info in supervisor.sessions())
        return {session_id: actor.transport for session_id, actor in routable if actor is not None}

    @property
    def _session_owners(self) -> dict[str, Any]:
        """The SDK manager's session -> principal table, read from the supervisor's sessions."""
        supervisor = self._supervisor
        if supervisor is None:
            return {}
        return {
            info.session_id: {
                "client_id": info.principal.client_id,
                "issuer": info.principal.issuer,
                "subject": info.principal.subject,
            }
            for info in supervisor.sessions()
            if info.principal is not None and supervisor.route(info.session_id) is not None
        }


def make_manager(app: Any, *args: Any, **kwargs: Any) -> Any:
    """The SDK's manager for stateless mode, ours for everything else."""
    stateless = kwargs.get("stateless", args[2] if len(args) > 2 else False)
    if stateless:
        return SDKManager(app, *args, **kwargs)
    return SupervisedSessionManager(app, *args, **kwargs)


if not BASELINE:
    sdk_manager.StreamableHTTPSessionManager = make_manager  # type: ignore[misc,assignment]
    sdk_lowlevel.StreamableHTTPSessionManager = make_manager  # type: ignore[attr-defined,assignment]


def _listed(nodeid: str, table: dict[str, str]) -> str | None:
    for key, reason in table.items():
        if nodeid == key or nodeid.startswith(key):
            return reason
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if BASELINE:
        return
    for item in items:
        reason = _listed(item.nodeid, NOT_APPLICABLE)
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=f"not applicable: {reason}"))
            continue
        reason = _listed(item.nodeid, DELIBERATE)
        if reason is not None:
            item.add_marker(pytest.mark.xfail(strict=True, reason=f"deliberate: {reason}"))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    _Run.current = item.nodeid


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" or report.outcome != "passed":
        if report.outcome == "skipped" and hasattr(report, "wasxfail"):
            outcome = "xfailed"
        elif report.outcome == "passed" and hasattr(report, "wasxfail"):
            outcome = "xpassed"
        else:
            outcome = report.outcome
        if _Run.outcomes.get(report.nodeid) in (None, "passed"):
            _Run.outcomes[report.nodeid] = outcome


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = os.environ.get("SDK_SUITE_REPORT")
    if not path:
        return
    with open(path, "w", encoding="utf-8") as report:
        for nodeid, outcome in sorted(_Run.outcomes.items()):
            record = {"test": nodeid, "outcome": outcome, "served": nodeid in _Run.served}
            report.write(json.dumps(record) + "\n")
