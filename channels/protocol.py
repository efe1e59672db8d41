"""The WebSocket wire protocol (SPEC section 5): client ops and server messages.

Client ops form one tagged union on ``"op"`` (unknown fields are refused); server
messages one on ``"type"``. :func:`decode_op` turns a frame into an op or a
:class:`~channels.errors.ProtocolError` whose message names the field
(``lots: must be > 0``). :func:`encode` is the one encoder; replies omit ``id``
when the op had none.

Additions to SPEC section 5 (documented here and in the README):

- ``{"type":"heartbeat","ts":…}`` is sent on a connection idle for ``heartbeat`` seconds.
- A ``subscribed`` without ``id`` announces that a channel's epoch changed under a live
  subscription (``recovered: false``); state channels then get fresh snapshots.
- ``auth`` may carry ``"batch": true`` to opt into coalesced frames.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from channels.errors import ProtocolError

__all__ = [
    "Auth",
    "Close",
    "CloseAll",
    "Command",
    "EmergencyStop",
    "Error",
    "ErrorBody",
    "Event",
    "Heartbeat",
    "Modify",
    "Op",
    "Ping",
    "Pong",
    "Result",
    "Resume",
    "ServerMessage",
    "SignalOp",
    "Since",
    "SincePosition",
    "Snapshot",
    "Subscribe",
    "Subscribed",
    "Trade",
    "Unsubscribe",
    "Unsubscribed",
    "Welcome",
    "decode_op",
    "decode_server",
    "encode",
]

OpId = str | int | None
Positive = Annotated[float, Meta(gt=0)]
Ticket = Annotated[int, Meta(ge=0, le=2**63 - 1)]
Seq = Annotated[int, Meta(ge=0)]
Name = Annotated[str, Meta(min_length=1, max_length=200)]


class _Op(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="op"):
    id: OpId = None


class SincePosition(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    seq: Seq
    epoch: str


Since = int | SincePosition


class Auth(_Op, tag="auth", frozen=True, kw_only=True):
    token: str
    batch: bool = False


class Subscribe(_Op, tag="subscribe", frozen=True, kw_only=True):
    channels: Annotated[list[Name], Meta(min_length=1, max_length=1000)]
    since: dict[str, Annotated[int, Meta(ge=0)] | SincePosition] = msgspec.field(
        default_factory=dict
    )


class Unsubscribe(_Op, tag="unsubscribe", frozen=True, kw_only=True):
    channels: Annotated[list[Name], Meta(min_length=1, max_length=1000)]


class Ping(_Op, tag="ping", frozen=True, kw_only=True):
    pass


class Trade(_Op, tag="trade", frozen=True, kw_only=True):
    agent: Name
    symbol: Name
    action: Literal["buy", "sell"]
    lots: Positive
    sl: float | None = None
    tp: float | None = None
    comment: str | None = None
    client_order_id: Annotated[str, Meta(min_length=1, max_length=128)] | None = None


class Close(_Op, tag="close", frozen=True, kw_only=True):
    agent: Name
    ticket: Ticket
    lots: Positive | None = None


class Modify(_Op, tag="modify", frozen=True, kw_only=True):
    agent: Name
    ticket: Ticket
    sl: float | None = None
    tp: float | None = None


class CloseAll(_Op, tag="close_all", frozen=True, kw_only=True):
    agent: Name


class SignalOp(_Op, tag="signal", frozen=True, kw_only=True):
    signal_id: Name
    symbol: Name
    direction: Literal["long", "short"]
    confidence: Annotated[float, Meta(ge=0, le=1)]
    sl: float
    tp: float | None = None
    agents: list[Name] | None = None
    strategy: str | None = None
    entry: float | None = None


class EmergencyStop(_Op, tag="emergency_stop", frozen=True, kw_only=True):
    reason: str | None = None
    close_positions: bool = False


class Resume(_Op, tag="resume", frozen=True, kw_only=True):
    pass


Command = Trade | Close | Modify | CloseAll | SignalOp | EmergencyStop | Resume
Op = Auth | Subscribe | Unsubscribe | Ping | Command


class _Msg(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, tag_field="type"):
    pass


class ErrorBody(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    code: str
    message: str
    details: dict[str, Any] | None = None


class Welcome(_Msg, tag="welcome", frozen=True, kw_only=True):
    session: str
    heartbeat: float


class Subscribed(_Msg, tag="subscribed", frozen=True, kw_only=True):
    id: OpId = None
    channels: list[str]
    recovered: dict[str, bool]
    epochs: dict[str, str]


class Unsubscribed(_Msg, tag="unsubscribed", frozen=True, kw_only=True):
    id: OpId = None
    channels: list[str]


class Snapshot(_Msg, tag="snapshot", frozen=True, kw_only=True, gc=False):
    ch: str
    seq: int
    ts: int
    epoch: str
    data: msgspec.Raw


class Event(_Msg, tag="event", frozen=True, kw_only=True, gc=False):
    ch: str
    seq: int
    ts: int
    data: msgspec.Raw


class Pong(_Msg, tag="pong", frozen=True, kw_only=True):
    id: OpId = None
    ts: int


class Result(_Msg, tag="result", frozen=True, kw_only=True):
    id: OpId = None
    ok: bool
    data: Any = None
    error: ErrorBody | None = None


class Error(_Msg, tag="error", frozen=True, kw_only=True):
    id: OpId = None
    error: ErrorBody


class Heartbeat(_Msg, tag="heartbeat", frozen=True, kw_only=True):
    ts: int


ServerMessage = (
    Welcome | Subscribed | Unsubscribed | Snapshot | Event | Pong | Result | Error | Heartbeat
)

_op_decoder: msgspec.json.Decoder[Op] = msgspec.json.Decoder(Op)
_server_decoder: msgspec.json.Decoder[ServerMessage] = msgspec.json.Decoder(ServerMessage)
_any_decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder()
_fields_decoder = msgspec.json.Decoder(dict[str, msgspec.Raw])
_encoder = msgspec.json.Encoder()

_AT = re.compile(r"^(?P<what>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_BOUND = re.compile(r"^Expected `\w+` (?P<op>[<>]=?) (?P<num>-?[\d.]+)$")
_LENGTH = re.compile(r"^Expected `(?:array|str|object)` of length (?P<op>[<>]=?) (?P<num>\d+)$")
_GOT = re.compile(r"^Expected `(?P<want>[^`]+)`, got `(?P<got>[^`]+)`$")
_FIELD = re.compile(r"^Object (?P<kind>missing required|contains unknown) field `(?P<name>[^`]+)`$")
_VALUE = re.compile(r"^Invalid (?:enum )?value (?P<value>.+)$", re.DOTALL)


def encode(message: msgspec.Struct) -> bytes:
    """Encode one server message (or any struct) to JSON bytes."""
    return _encoder.encode(message)


def decode_server(frame: str | bytes) -> ServerMessage:
    """Decode one server message (used by clients and tests); raises ``msgspec`` errors."""
    return _server_decoder.decode(frame)


def decode_op(frame: str | bytes) -> Op | ProtocolError:
    """Decode one client frame, or describe why it is refused (code ``bad_request``)."""
    try:
        return _op_decoder.decode(frame)
    except msgspec.ValidationError as exc:
        return ProtocolError("bad_request", _describe(str(exc)), _read_id(frame))
    except msgspec.DecodeError as exc:
        return ProtocolError("bad_request", f"not valid JSON: {_strip_prefix(str(exc))}")
    except RecursionError:
        return ProtocolError("bad_request", "frame: nested too deeply")


def _strip_prefix(text: str) -> str:
    return text.removeprefix("JSON is malformed: ")


def _read_id(frame: str | bytes) -> OpId:
    try:
        raw = _fields_decoder.decode(frame).get("id")
        value = _any_decoder.decode(raw) if raw is not None else None
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return None  # not an object, or too broken (or too deep) to read an id from
    if isinstance(value, str | int) and not isinstance(value, bool):
        return value
    return None


def _describe(error: str) -> str:
    """Turn a msgspec ValidationError message into ``field: problem``."""
    found = _AT.match(error)
    assert found is not None  # the pattern matches any string
    what, raw_path = found["what"], found["path"] or ""
    path = raw_path.lstrip(".")
    if m := _FIELD.match(what):
        name = f"{path}.{m['name']}" if path else m["name"]
        return f"{name}: required" if m["kind"] == "missing required" else f"{name}: unknown field"
    if path == "op":
        if m := _VALUE.match(what):
            return f"unknown op {m['value']}"
        return "op: must be a string"
    if not path:
        if m := _GOT.match(what):
            return f"frame must be a JSON object, got {m['got']}"
        return what
    if m := _BOUND.match(what):
        return f"{path}: must be {m['op']} {_number(m['num'])}"
    if m := _LENGTH.match(what):
        return f"{path}: length must be {m['op']} {m['num']}"
    if m := _GOT.match(what):
        return f"{path}: expected {m['want']}, got {m['got']}"
    if m := _VALUE.match(what):
        return f"{path}: invalid value {m['value']}"
    return f"{path}: {what}"


def _number(text: str) -> str:
    value = float(text)
    return str(int(value)) if value.is_integer() else text
