"""A session as a value: everything that makes it what it is, beyond its live objects.

A live session is a transport, a server loop and their tasks; all of that can be rebuilt. What
cannot be rebuilt is what the client told it: who it is, the `initialize` it sent, whether it
sent `initialized`, the log level it chose and the resources it subscribed to. `SessionRecord`
holds exactly that, frozen. Hibernation dumps it and a wake rebuilds the session from it alone;
it round-trips through JSON, so it can live outside the process.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

HANDSHAKE_METHODS = frozenset(
    {
        "initialize",
        "notifications/initialized",
        "logging/setLevel",
        "resources/subscribe",
        "resources/unsubscribe",
    }
)
"""The messages whose effect outlives their request: each one changes the record."""

RECORD_FORMAT = 1

_str = attrs.validators.instance_of(str)
_optional_str = attrs.validators.optional(_str)
_time = attrs.validators.instance_of(float)


def _uris(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen
class Principal:
    """The identity behind a credential; a refreshed token of the same identity keeps its sessions."""

    client_id: str = attrs.field(validator=attrs.validators.instance_of(str))
    issuer: str | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.instance_of(str))
    )
    subject: str | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.instance_of(str))
    )


REPLAYED_INITIALIZE_KEYS = ("protocolVersion", "capabilities", "clientInfo")
"""What a record keeps of the client's `initialize` params: what a fresh loop needs to be the same
session. Anything else a client sends there (its `_meta`, padding) is served once and not kept."""


def replayed_part(params: Mapping[str, Any]) -> dict[str, Any]:
    """The part of `initialize` params that a record keeps."""
    return {key: params[key] for key in REPLAYED_INITIALIZE_KEYS if key in params}


def _params_text(value: Mapping[str, Any] | str | None) -> str | None:
    """The params as compact JSON text: a session keeps them for its whole life, and the text is a
    fraction of the size of the parsed objects."""
    if value is None:
        return None
    if isinstance(value, str):
        if not isinstance(json.loads(value), dict):
            raise TypeError("client_params must be a JSON object")
        return value
    return json.dumps(dict(value), separators=(",", ":"), sort_keys=True)


@attrs.frozen(kw_only=True)
class SessionRecord:
    """One session's state as a value; a new record for every change, never one mutated."""

    session_id: str = attrs.field(validator=_str)
    principal: Principal | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.instance_of(Principal))
    )
    client_params: str | None = attrs.field(default=None, converter=_params_text)
    """What a wake replays of the client's `initialize` params (version, capabilities, client info:
    `REPLAYED_INITIALIZE_KEYS`), as JSON text; `initialize_params` parses them."""
    initialized: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    """The client sent `notifications/initialized`."""
    log_level: str | None = attrs.field(default=None, validator=_optional_str)
    """The latest `logging/setLevel`."""
    subscriptions: tuple[str, ...] = attrs.field(default=(), converter=_uris)
    """Resource URIs subscribed to and not unsubscribed, in the order they were subscribed."""
    created_at: float = attrs.field(default=0.0, converter=float, validator=_time)
    """Seconds since the epoch."""
    last_active_at: float = attrs.field(default=0.0, converter=float, validator=_time)
    """Seconds since the epoch: when its last request finished (as of the dump)."""

    @property
    def initialize_params(self) -> dict[str, Any] | None:
        parsed: dict[str, Any] | None = None if self.client_params is None else json.loads(self.client_params)
        return parsed

    @property
    def protocol_version(self) -> str | None:
        """The protocol version the client asked for (the server's negotiation of it is deterministic)."""
        version = (self.initialize_params or {}).get("protocolVersion")
        return version if isinstance(version, str) else None

    @property
    def opened(self) -> bool:
        """Whether the client's `initialize` is known: only then can a session be rebuilt."""
        return self.client_params is not None

    def after(self, method: str | None, params: object) -> SessionRecord:
        """The record once the message `method` with `params` has been served (unchanged if no effect)."""
        if method not in HANDSHAKE_METHODS:
            return self
        fields = params if isinstance(params, Mapping) else {}
        if method == "initialize":
            return attrs.evolve(
                self, client_params=replayed_part(fields), initialized=False, log_level=None, subscriptions=()
            )
        if method == "notifications/initialized":
            return self if self.initialized else attrs.evolve(self, initialized=True)
        if method == "logging/setLevel":
            level = fields.get("level")
            return attrs.evolve(self, log_level=level) if isinstance(level, str) else self
        uri = fields.get("uri")
        if not isinstance(uri, str):
            return self
        kept = tuple(known for known in self.subscriptions if known != uri)
        if method == "resources/subscribe":
            kept += (uri,)
        return attrs.evolve(self, subscriptions=kept)

    def replay(self, *, handshake: bool = True) -> list[bytes]:
        """The messages that bring a fresh server loop to where this session was, in order
        (`handshake` False: the loop's connection was given the handshake already)."""
        params = self.initialize_params
        if params is None:
            return []
        bodies = []
        if handshake:
            bodies.append(_message("initialize", params, "wake:initialize"))
            if self.initialized:
                bodies.append(_message("notifications/initialized", None, None))
        if self.log_level is not None:
            bodies.append(_message("logging/setLevel", {"level": self.log_level}, "wake:level"))
        for number, uri in enumerate(self.subscriptions):
            bodies.append(_message("resources/subscribe", {"uri": uri}, f"wake:subscribe:{number}"))
        return bodies

    def to_json(self, params_ref: str | None = None) -> str:
        """Compact: fields at their default are left out, and the client's params are nested as
        JSON rather than quoted in a string (a record lives in Redis for every session: issue
        26.3). Readers of either shape take both (`from_json` fills defaults, the params converter
        takes an object or its text). `params_ref`: the params are stored apart under that name."""
        data = attrs.asdict(self, recurse=True, filter=_not_default)
        if params_ref is not None:
            data.pop("client_params", None)
            data["client_params_ref"] = params_ref
        elif self.client_params is not None:
            data["client_params"] = json.loads(self.client_params)
        data["format"] = RECORD_FORMAT
        return json.dumps(data, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes, params: Callable[[str], str | None] | None = None) -> SessionRecord:
        """The record a `to_json` wrote; ValueError (with what is wrong) for anything else.
        `params` gives the text of params stored apart; UnreadParams if it has none."""
        try:
            data = json.loads(text)
        except ValueError as error:
            raise ValueError(f"not a session record: {error}") from None
        if not isinstance(data, dict) or data.pop("format", None) != RECORD_FORMAT:
            raise ValueError(f"not a session record of format {RECORD_FORMAT}")
        ref = data.pop("client_params_ref", None)
        if ref is not None:
            if not isinstance(ref, str):
                raise ValueError("not a session record: client_params_ref is not text")
            data["client_params"] = params(ref) if params is not None else None
            if data["client_params"] is None:
                raise UnreadParams(ref)
        try:
            principal = data.pop("principal", None)
            return cls(**data, principal=Principal(**principal) if principal is not None else None)
        except (TypeError, AttributeError, ValueError) as error:
            raise ValueError(f"not a session record: {error}") from None


class UnreadParams(Exception):
    """A record names params stored apart (`client_params_ref`) that its reader has not read."""

    def __init__(self, ref: str) -> None:
        super().__init__(ref)
        self.ref = ref


def _not_default(attribute: attrs.Attribute[Any], value: object) -> bool:
    return attribute.default is attrs.NOTHING or value != attribute.default


def _message(method: str, params: Mapping[str, Any] | None, request_id: str | None) -> bytes:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if request_id is not None:
        message["id"] = request_id
    if params is not None:
        message["params"] = dict(params)
    return json.dumps(message, separators=(",", ":")).encode()


def new_record(
    session_id: str, principal: Principal | None, initialize: Mapping[str, Any] | None
) -> SessionRecord:
    """The record of a session opened now (with its `initialize` params, when already answered)."""
    now = time.time()
    record = SessionRecord(session_id=session_id, principal=principal, created_at=now, last_active_at=now)
    return record.after("initialize", initialize) if initialize is not None else record
