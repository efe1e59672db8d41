"""The WebSocket wire protocol (docs/protocol.md): client ops and server messages.

The transport's own ops (``auth``, ``subscribe``, ``unsubscribe``, ``ping``) form one
tagged union on ``"op"`` (unknown fields are refused); every other op is declared by the
server (the hub's command table) and handed over as a :class:`CommandOp`. Server
messages form one union on ``"type"``. :func:`decode_op` turns a frame into an op or a
:class:`~channels.errors.ProtocolError` whose message names the field
(``channels: length must be >= 1``). :func:`encode` is the one encoder; replies omit
``id`` when the op had none.

Beyond the basic protocol (documented in docs/protocol.md):

- ``{"type":"heartbeat","ts":…}`` is sent on a connection idle for ``heartbeat`` seconds.
- A ``subscribed`` without ``id`` announces that a channel's epoch changed under a live
  subscription (``recovered: false``); state channels then get fresh snapshots.
- ``auth`` may carry ``"batch": true`` to opt into coalesced frames.
"""

from __future__ import annotations

import re
from collections.abc import Container
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from channels.errors import ProtocolError
from channels.validation import describe

__all__ = [
    "Auth",
    "CommandOp",
    "Error",
    "ErrorBody",
    "Event",
    "Heartbeat",
    "Op",
    "Ping",
    "Pong",
    "Result",
    "ServerMessage",
    "Since",
    "SincePosition",
    "Snapshot",
    "Subscribe",
    "Subscribed",
    "Unsubscribe",
    "Unsubscribed",
    "Welcome",
    "decode_op",
    "decode_server",
    "encode",
]

OpId = str | int | None
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


class CommandOp(msgspec.Struct, frozen=True, kw_only=True):
    """Any other op the server declared (trading commands): its name, ``id`` and the
    rest of the frame's fields, decoded and checked by the server's command table."""

    name: str
    id: OpId = None
    fields: dict[str, Any]


Op = Auth | Subscribe | Unsubscribe | Ping


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


class _Envelope(msgspec.Struct, frozen=True, kw_only=True):
    op: str
    id: OpId = None


_TRANSPORT_OPS = frozenset({"auth", "subscribe", "unsubscribe", "ping"})
_envelope_decoder = msgspec.json.Decoder(_Envelope)
_op_decoder: msgspec.json.Decoder[Op] = msgspec.json.Decoder(Op)
_server_decoder: msgspec.json.Decoder[ServerMessage] = msgspec.json.Decoder(ServerMessage)
_object_decoder = msgspec.json.Decoder(dict[str, Any])
_any_decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder()
_fields_decoder = msgspec.json.Decoder(dict[str, msgspec.Raw])
_encoder = msgspec.json.Encoder()

_OBJECT = re.compile(r"^Expected `object`, got `(?P<got>[^`]+)`$")


def encode(message: msgspec.Struct) -> bytes:
    """Encode one server message (or any struct) to JSON bytes."""
    return _encoder.encode(message)


def decode_server(frame: str | bytes) -> ServerMessage:
    """Decode one server message (used by clients and tests); raises ``msgspec`` errors."""
    return _server_decoder.decode(frame)


def decode_op(
    frame: str | bytes, commands: Container[str] = frozenset()
) -> Op | CommandOp | ProtocolError:
    """Decode one client frame, or describe why it is refused (code ``bad_request``).

    ``commands`` are the op names the server declares besides the transport's own; such
    a frame comes back as a :class:`CommandOp` for the server to decode with its struct."""
    try:
        envelope = _envelope_decoder.decode(frame)
        if envelope.op in _TRANSPORT_OPS:
            return _op_decoder.decode(frame)
        if envelope.op not in commands:
            return ProtocolError("bad_request", f"unknown op {envelope.op!r}", envelope.id)
        fields = _object_decoder.decode(frame)
    except msgspec.ValidationError as exc:
        return ProtocolError("bad_request", _describe(str(exc)), _read_id(frame))
    except msgspec.DecodeError as exc:
        return ProtocolError("bad_request", f"not valid JSON: {_strip_prefix(str(exc))}")
    except RecursionError:
        return ProtocolError("bad_request", "frame: nested too deeply")
    del fields["op"]
    fields.pop("id", None)
    return CommandOp(name=envelope.op, id=envelope.id, fields=fields)


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
    """A frame-level refusal in the shared wording, with the op and frame special cases."""
    if error.endswith(" - at `$.op`"):
        return "op: must be a string"
    if m := _OBJECT.match(error):
        return f"frame must be a JSON object, got {m['got']}"
    return describe(error)
