import msgspec
import pytest

from channels.errors import ProtocolError
from channels.protocol import (
    CommandOp,
    Event,
    Result,
    SincePosition,
    Subscribe,
    Subscribed,
    decode_op,
    decode_server,
    encode,
)


def test_a_declared_op_comes_back_with_its_fields() -> None:
    frame = '{"op":"trade","id":"4","agent":"agent_1","lots":0.01,"sl":null}'
    op = decode_op(frame, commands={"trade"})
    assert op == CommandOp(
        name="trade", id="4", fields={"agent": "agent_1", "lots": 0.01, "sl": None}
    )


def test_an_op_nobody_declared_is_unknown() -> None:
    error = decode_op('{"op":"trade","id":"4","agent":"agent_1"}')
    assert isinstance(error, ProtocolError)
    assert (error.message, error.id) == ("unknown op 'trade'", "4")


def test_since_accepts_a_seq_or_a_position() -> None:
    op = decode_op(
        b'{"op":"subscribe","id":1,"channels":["a","b"],"since":{"a":41,"b":{"seq":7,"epoch":"e"}}}'
    )
    assert op == Subscribe(
        id=1, channels=["a", "b"], since={"a": 41, "b": SincePosition(seq=7, epoch="e")}
    )


@pytest.mark.parametrize(
    ("frame", "message", "id"),
    [
        ('{"op":"dance","id":"7"}', "unknown op 'dance'", "7"),
        ('{"id":"7"}', "op: required field missing", "7"),
        ('{"op":7,"id":"7"}', "op: must be a string", "7"),
        ('{"op":"subscribe","id":"s","channels":"x"}', "channels: expected array, got str", "s"),
        ("[1,2]", "frame must be a JSON object, got array", None),
        ("not json", "not valid JSON", None),
        ('{"op":"ping","extra":1}', "extra: unknown field", None),
        ('{"op":"subscribe","channels":[]}', "channels: length must be >= 1", None),
        ('{"op":"ping","id":true}', "id: expected int | str | null, got bool", None),
    ],
)
def test_bad_frames_name_the_field(frame: str, message: str, id: object) -> None:
    error = decode_op(frame)
    assert isinstance(error, ProtocolError)
    assert error.code == "bad_request"
    assert error.message.startswith(message)
    assert error.id == id


def test_replies_omit_a_missing_id_and_echo_a_given_one() -> None:
    assert (
        encode(Result(ok=True, data={"ticket": 1}))
        == b'{"type":"result","ok":true,"data":{"ticket":1}}'
    )
    assert encode(Result(id=4, ok=True)) == b'{"type":"result","id":4,"ok":true}'


def test_server_messages_round_trip() -> None:
    sub = Subscribed(
        id="1", channels=["summary"], recovered={"summary": False}, epochs={"summary": "e"}
    )
    assert decode_server(encode(sub)) == sub
    event = encode(Event(ch="summary", seq=3, ts=5, data=msgspec.Raw(b'{"x":1}')))
    assert event == b'{"type":"event","ch":"summary","seq":3,"ts":5,"data":{"x":1}}'
