"""hypothesis-generated frames against ``/ws`` on a real hub.

Every bad frame (random JSON, wrong types for each op's fields, huge numbers, NaN and
Infinity literals, deep nesting, binary garbage, oversized frames, unknown ops) gets an
``error`` with ``bad_request`` naming what is wrong; no message carries a traceback; the
connection stays open (each probe ends with a ``ping`` that must be answered); and a
second, well-behaved client keeps getting its live ticks, gap-free, throughout.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from channels import names
from channels.errors import InvalidChannel
from tests.fuzz._threaded import ThreadedHub, threaded_hub
from tests.fuzz._wsprobe import Prober, Watcher

FUZZ = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
REFUSALS = {"bad_request", "forbidden", "rate_limited"}

# A valid, harmless frame per op, and the JSON kind of each field (for wrong types).
# Only ever sent with one field broken, so none of these trades.
OPS: dict[str, tuple[dict[str, Any], dict[str, str]]] = {
    "subscribe": ({"channels": ["summary"]}, {"channels": "str_list", "since": "object"}),
    "unsubscribe": ({"channels": ["summary"]}, {"channels": "str_list"}),
    "ping": ({}, {}),
    "trade": (
        {"agent": "agent_1", "symbol": "XAUUSD", "action": "buy", "lots": 0.01, "sl": 2640.0},
        {
            "agent": "str",
            "symbol": "str",
            "action": "enum",
            "lots": "float",
            "sl": "float?",
            "tp": "float?",
            "comment": "str?",
            "client_order_id": "str?",
        },
    ),
    "close": (
        {"agent": "agent_1", "ticket": 1},
        {"agent": "str", "ticket": "int", "lots": "float?"},
    ),
    "modify": (
        {"agent": "agent_1", "ticket": 1},
        {"agent": "str", "ticket": "int", "sl": "float?", "tp": "float?"},
    ),
    "close_all": ({"agent": "agent_1"}, {"agent": "str"}),
    "signal": (
        {"signal_id": "s", "symbol": "XAUUSD", "direction": "long", "confidence": 0.5, "sl": 1.0},
        {
            "signal_id": "str",
            "symbol": "str",
            "direction": "enum",
            "confidence": "float",
            "sl": "float",
            "tp": "float?",
            "agents": "str_list?",
            "strategy": "str?",
            "entry": "float?",
        },
    ),
    "emergency_stop": ({}, {"reason": "str?", "close_positions": "bool"}),
    "resume": ({}, {}),
}
for _base, _fields in OPS.values():
    _fields["id"] = "id"

_text = st.text(max_size=20)
_ints = st.integers(min_value=-(2**53), max_value=2**53)
_floats = st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer())
_json: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | _ints | _floats | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=12,
)
_lists = st.lists(_json, max_size=3)
_objects = st.dictionaries(_text, _json, max_size=3)

# Values of a JSON type the field does not accept.
WRONG: dict[str, st.SearchStrategy[Any]] = {
    "str": _ints | _floats | st.booleans() | _lists | _objects | st.none(),
    "float": _text | st.booleans() | _lists | _objects | st.none(),
    "int": _text | _floats | st.booleans() | _lists | _objects | st.none(),
    "bool": _text | _ints | _floats | _lists | _objects | st.none(),
    "enum": _ints | st.booleans() | _lists | _objects | st.none() | st.just("hold"),
    "str_list": _text | _ints | _objects | st.none() | st.lists(_ints, min_size=1, max_size=3),
    "object": _text | _ints | _lists | st.booleans(),
    "id": _floats | st.booleans() | _lists | _objects,
}
for _kind in ("str", "float", "str_list"):  # optional: null is fine, the rest is not
    WRONG[f"{_kind}?"] = WRONG[_kind].filter(lambda v: v is not None)


@pytest.fixture(scope="module")
def hub() -> Iterator[ThreadedHub]:
    with threaded_hub() as running:
        yield running


@pytest.fixture(scope="module")
def watcher(hub: ThreadedHub) -> Iterator[Watcher]:
    w = Watcher(hub.ws_url, hub.token, "agent:agent_1:ticks")
    yield w
    w.close()


@pytest.fixture
def prober(hub: ThreadedHub, watcher: Watcher) -> Iterator[Prober]:
    p = Prober(hub.ws_url, hub.token)
    seen = watcher.count()
    yield p
    p.close()
    watcher.assert_live_since(seen)


def is_op(value: Any) -> bool:
    """A JSON object naming a real op (it might happen to be valid)."""
    return isinstance(value, dict) and isinstance(value.get("op"), str) and value["op"] in OPS


def is_channel(text: str) -> bool:
    try:
        names.validate(text)
    except InvalidChannel:
        return False
    return True


def only_error(replies: list[dict[str, Any]], frame: Any) -> dict[str, Any]:
    """The single ``error`` reply with ``bad_request``; its message."""
    assert len(replies) == 1, f"{frame!r:.300} got {replies}"
    reply = replies[0]
    assert reply["type"] == "error", f"{frame!r:.300} got {reply}"
    assert reply["error"]["code"] == "bad_request", f"{frame!r:.300} got {reply}"
    message: str = reply["error"]["message"]
    assert message, reply
    return reply


@FUZZ
@given(value=_json)
def test_random_json_values_answer_bad_request(prober: Prober, value: Any) -> None:
    assume(not is_op(value))
    frame = json.dumps(value)
    only_error(prober.probe(frame), frame)


@FUZZ
@given(data=st.data())
def test_wrong_type_for_each_field_names_the_field(prober: Prober, data: st.DataObject) -> None:
    op = data.draw(st.sampled_from(sorted(OPS)), label="op")
    base, fields = OPS[op]
    field = data.draw(st.sampled_from(sorted(fields)), label="field")
    value = data.draw(WRONG[fields[field]], label="value")
    frame = json.dumps({"op": op, **base, field: value})
    reply = only_error(prober.probe(frame), frame)
    assert field in reply["error"]["message"], f"{frame} got {reply}"


@FUZZ
@given(data=st.data())
def test_unknown_fields_are_named(prober: Prober, data: st.DataObject) -> None:
    op = data.draw(st.sampled_from(sorted(OPS)), label="op")
    base, fields = OPS[op]
    name = data.draw(st.text(min_size=1, max_size=20), label="name")
    assume(name not in fields and name != "op")
    frame = json.dumps({"op": op, **base, name: data.draw(_json, label="value")})
    reply = only_error(prober.probe(frame), frame)
    assert "unknown field" in reply["error"]["message"], reply
    assert name in reply["error"]["message"], reply


NUMBERS = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1e999999", "-0e99999999"]


@FUZZ
@given(data=st.data())
def test_nan_infinity_and_out_of_range_numbers_answer_bad_request(
    prober: Prober, data: st.DataObject
) -> None:
    op = data.draw(st.sampled_from(["trade", "close", "modify", "signal"]), label="op")
    base, fields = OPS[op]
    numeric = sorted(f for f, kind in fields.items() if kind.startswith(("float", "int")))
    field = data.draw(st.sampled_from(numeric), label="field")
    literal = data.draw(st.sampled_from(NUMBERS), label="literal")
    assume(not (literal.startswith("-0") and fields[field] != "int"))  # -0.0 is a float
    head = json.dumps({"op": op, "id": "n", **{k: v for k, v in base.items() if k != field}})
    frame = f'{head[:-1]}, "{field}": {literal}}}'
    reply = only_error(prober.probe(frame), frame)
    if literal not in ("NaN", "Infinity", "-Infinity"):  # not JSON at all: no id to echo
        assert reply.get("id") == "n", reply


@FUZZ
@given(data=st.data())
def test_huge_integers_never_fail_on_the_server(prober: Prober, data: st.DataObject) -> None:
    op = data.draw(st.sampled_from(["close", "modify", "subscribe"]), label="op")
    big = data.draw(st.integers(min_value=2**63, max_value=10**300), label="big")
    if op == "subscribe":
        frame = json.dumps({"op": op, "id": "h", "channels": ["system"], "since": {"system": big}})
    else:
        frame = json.dumps({"op": op, "id": "h", "agent": "agent_1", "ticket": big})
    replies = prober.probe(frame, wait_for_id="h")
    [reply] = [r for r in replies if r.get("id") == "h"]
    if reply["type"] == "result":
        assert not reply["ok"], reply
        assert reply["error"]["code"] in REFUSALS | {"not_found"}, reply
    elif reply["type"] == "error":
        assert reply["error"]["code"] in REFUSALS, reply
    else:
        assert reply["type"] == "subscribed", reply


@FUZZ
@given(
    depth=st.integers(min_value=1, max_value=30_000),
    where=st.sampled_from(["top", "id", "unknown", "channels", "since"]),
    kind=st.sampled_from(["array", "object"]),
)
def test_deep_nesting_answers_bad_request(
    prober: Prober, depth: int, where: str, kind: str
) -> None:
    if kind == "array":
        nested = "[" * depth + "0" + "]" * depth
    else:
        nested = '{"a":' * depth + "0" + "}" * depth
    frames = {
        "top": nested,
        "id": f'{{"op":"ping","id":{nested}}}',
        "unknown": f'{{"op":"ping","deep":{nested}}}',
        "channels": f'{{"op":"subscribe","channels":{nested}}}',
        "since": f'{{"op":"subscribe","channels":["summary"],"since":{{"summary":{nested}}}}}',
    }
    frame = frames[where]
    assume(len(frame) <= 65536)
    only_error(prober.probe(frame), f"{kind} nested {depth} deep in {where}")


@FUZZ
@given(payload=st.binary(max_size=512))
def test_binary_garbage_answers_bad_request(prober: Prober, payload: bytes) -> None:
    try:
        value = json.loads(payload)
    except ValueError:
        value = None
    assume(not is_op(value))
    only_error(prober.probe(payload), payload)


@settings(FUZZ, max_examples=8)
@given(size=st.integers(min_value=65537, max_value=4 * 65536 - 1024), binary=st.booleans())
def test_oversized_frames_answer_bad_request(prober: Prober, size: int, binary: bool) -> None:
    head = '{"op":"ping","id":"'
    text = head + "x" * (size - len(head) - 2) + '"}'
    reply = only_error(prober.probe(text.encode() if binary else text), f"{size} bytes")
    assert "frame" in reply["error"]["message"], reply


@FUZZ
@given(op=st.text(max_size=30) | _ints | st.booleans() | st.none() | _lists)
def test_unknown_ops_answer_bad_request(prober: Prober, op: Any) -> None:
    assume(not (isinstance(op, str) and (op in OPS or op == "auth")))
    frame = json.dumps({"op": op, "id": "u"})
    reply = only_error(prober.probe(frame), frame)
    assert "op" in reply["error"]["message"], reply
    assert reply.get("id") == "u", reply


@FUZZ
@given(text=st.text(min_size=1, max_size=60))
def test_unicode_is_echoed_intact_and_refused_cleanly(prober: Prober, text: str) -> None:
    [pong] = prober.probe(json.dumps({"op": "ping", "id": text}, ensure_ascii=False))
    assert pong == {"type": "pong", "id": text, "ts": pong["ts"]}

    assume(not is_channel(text))
    frame = json.dumps({"op": "subscribe", "id": "s", "channels": [text]}, ensure_ascii=False)
    reply = only_error(prober.probe(frame), frame)
    assert "channels[0]" in reply["error"]["message"], reply

    assume(text not in {"agent_1", "agent_2", "agent_3"})
    trade = {"op": "trade", "id": "t", "agent": text, "symbol": text, "action": "buy"}
    frame = json.dumps({**trade, "lots": 0.01, "sl": 1.0, "comment": text}, ensure_ascii=False)
    replies = prober.probe(frame, wait_for_id="t")
    [result] = [r for r in replies if r.get("id") == "t"]
    assert result["type"] in ("result", "error"), result
    assert result.get("ok") is not True, result
    assert result["error"]["code"] in REFUSALS | {"not_found"}, result
