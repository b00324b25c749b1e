"""The session actor and its parts: what the supervisor may use of them.

An actor is one MCP session as a trio task with a mailbox (`SessionActor`); while awake it holds an
`Incarnation` (the SDK transport and server loop). The values (`SessionRecord`, `CloseReason`,
`ActorState`) and the pure rules over them (`_state.py`) sit below the parts that do I/O. The layers
above import from here only, never from a module behind it.
"""

from actors._actor import SessionActor
from actors._asyncio import BRIDGE, SDK_TOOL_LOGGER, AsyncioBridge, AsyncioHint, asyncio_tool, open_bridge
from actors._direct_answers import answers_directly
from actors._faults import FaultPoint, FaultSink, FaultTarget, InjectedCrash
from actors._frames import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    PARSE_ERROR,
    SESSION_ENDED,
    SSE_HEADERS,
    Refusal,
    chunk,
    error_body,
    json_bytes,
    json_headers,
    notification_body,
    result_body,
    send_error,
    send_json,
    send_refusal,
    send_whole,
    session_header,
    sse_error_event,
    sse_event,
    start,
)
from actors._log import SERVING, SessionLog, quiet_closing_races
from actors._messages import Admission, RequestTicket, ServeRequest
from actors._reasons import (
    CLOSE_POLICY,
    ClosePolicy,
    CloseReason,
    CloseStep,
    RecordFate,
    RequestOutcome,
    tells_retry,
)
from actors._record import Principal, SessionRecord, UnreadParams, new_record
from actors._sdk import lowlevel_of, session_manager_kept, sharing_lifespan
from actors._settings import CLEANUP_TIMEOUT, ActorHooks, ActorSettings, OwnedActor, TransportOptions
from actors._state import ActorState, Residence, ResidenceEvent, next_residence
from actors._statistics import ActorStatistics
from actors._tracing import SESSION_ID, context_of, session_span, started_span, tracer_of

__all__ = [
    "BRIDGE",
    "CLEANUP_TIMEOUT",
    "CLOSE_POLICY",
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "PARSE_ERROR",
    "SDK_TOOL_LOGGER",
    "SERVING",
    "SESSION_ENDED",
    "SESSION_ID",
    "SSE_HEADERS",
    "ActorHooks",
    "ActorSettings",
    "ActorState",
    "ActorStatistics",
    "Admission",
    "AsyncioBridge",
    "AsyncioHint",
    "ClosePolicy",
    "CloseReason",
    "CloseStep",
    "FaultPoint",
    "FaultSink",
    "FaultTarget",
    "InjectedCrash",
    "OwnedActor",
    "Principal",
    "RecordFate",
    "Refusal",
    "RequestOutcome",
    "RequestTicket",
    "Residence",
    "ResidenceEvent",
    "ServeRequest",
    "SessionActor",
    "SessionLog",
    "SessionRecord",
    "TransportOptions",
    "UnreadParams",
    "answers_directly",
    "asyncio_tool",
    "chunk",
    "context_of",
    "error_body",
    "json_bytes",
    "json_headers",
    "lowlevel_of",
    "new_record",
    "next_residence",
    "notification_body",
    "open_bridge",
    "quiet_closing_races",
    "result_body",
    "send_error",
    "send_json",
    "send_refusal",
    "send_whole",
    "session_header",
    "session_manager_kept",
    "session_span",
    "sharing_lifespan",
    "sse_error_event",
    "sse_event",
    "start",
    "started_span",
    "tells_retry",
    "tracer_of",
]
