import msgspec
import pytest

from channels.errors import ProtocolError
from channels.protocol import (
    Event,
    Result,
    SincePosition,
    Subscribe,
    Subscribed,
    Trade,
    decode_op,
    decode_server,
    encode,
)


def test_decodes_a_trade_with_its_id() -> None:
    op = decode_op(
        '{"op":"trade","id":"4","agent":"agent_1","symbol":"XAUUSD","action":"buy",'
        '"lots":0.01,"sl":2648.0,"tp":2660.0,"comment":"c","client_order_id":"ml-77"}'
    )
    assert op == Trade(
        id="4",
        agent="agent_1",
        symbol="XAUUSD",
        action="buy",
        lots=0.01,
        sl=2648.0,
        tp=2660.0,
        comment="c",
        client_order_id="ml-77",
    )


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
        ('{"op":"close","id":"x","agent":"a","ticket":1,"lots":0}', "lots: must be > 0", "x"),
        (
            '{"op":"trade","agent":"a","symbol":"X","action":"buy","lots":"1"}',
            "lots: expected float, got str",
            None,
        ),
        (
            '{"op":"trade","agent":"a","symbol":"X","action":"hold","lots":1}',
            "action: invalid value 'hold'",
            None,
        ),
        ('{"op":"trade","id":9,"agent":"a","action":"buy","lots":1}', "symbol: required", 9),
        ('{"op":"dance","id":"7"}', "unknown op 'dance'", "7"),
        ('{"id":"7"}', "op: required", "7"),
        ("[1,2]", "frame must be a JSON object, got array", None),
        ("not json", "not valid JSON", None),
        ('{"op":"ping","extra":1}', "extra: unknown field", None),
        ('{"op":"subscribe","channels":[]}', "channels: length must be >= 1", None),
        (
            '{"op":"signal","signal_id":"s","symbol":"X","direction":"long","confidence":1.5,"sl":1}',
            "confidence: must be <= 1",
            None,
        ),
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
