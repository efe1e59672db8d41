"""/asyncapi.json: valid AsyncAPI 3.0 (the official JSON Schema), and complete: every op the
hub accepts and every message it sends is described, and real frames match their schemas."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, get_args

import jsonschema
import pytest
import websockets

from channels import protocol
from hub.api.commands import BY_NAME
from hub.config import parse_config
from tests.hubkit import RunningHub, one_agent_yaml, run_hub
from tests.timing import eventually, units

ROOT = Path(__file__).resolve().parents[3]
SPECS = ROOT / ".venv" / "share" / "asyncapi-specs-6.11.1" / "3.0.0.json"


def _official_validator() -> jsonschema.Draft7Validator:
    assert SPECS.exists(), f"{SPECS} missing: scripts/setup fetches it from npm @asyncapi/specs"
    schema = json.loads(SPECS.read_text())
    return jsonschema.Draft7Validator(schema)


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _resolves(doc: dict[str, Any], ref: str) -> bool:
    node: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return ref.startswith("#/")


def _tags(union: Any) -> set[str]:
    return {s.__struct_config__.tag for s in get_args(union)}


def _payload_validator(doc: dict[str, Any], message: str) -> jsonschema.Draft202012Validator:
    ref = doc["components"]["messages"][message]["payload"]["$ref"]
    return jsonschema.Draft202012Validator({"components": doc["components"], "$ref": ref})


async def _document(h: RunningHub) -> dict[str, Any]:
    r = await h.http.get("/asyncapi.json")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    doc: dict[str, Any] = r.json()
    return doc


@pytest.fixture
async def hub() -> Any:
    async with run_hub(parse_config(one_agent_yaml(), "test-config")) as h:
        yield h


async def test_the_document_validates_against_the_official_asyncapi_schema(
    hub: RunningHub,
) -> None:
    doc = await _document(hub)
    assert doc["asyncapi"] == "3.0.0"
    assert doc["servers"]["hub"] == {**doc["servers"]["hub"], "host": f"127.0.0.1:{hub.port}",
                                     "protocol": "ws", "pathname": "/ws"}  # fmt: skip
    validator = _official_validator()
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)
    ]
    assert errors == []
    unresolved = [ref for ref in _refs(doc) if not _resolves(doc, ref)]
    assert unresolved == []  # the JSON Schema does not follow references: this does
    # The schema is strict enough to catch a wrong document.
    broken = {**doc, "operations": {**doc["operations"], "x": {"action": "publish"}}}
    assert not validator.is_valid(broken)


async def test_every_op_and_message_type_is_described(hub: RunningHub) -> None:
    doc = await _document(hub)
    accepted = _tags(protocol.Op) | set(BY_NAME)
    sent = _tags(protocol.ServerMessage)
    messages = doc["channels"]["ws"]["messages"]
    assert {m.removeprefix("op.") for m in messages if m.startswith("op.")} == accepted
    assert {m.removeprefix("message.") for m in messages if m.startswith("message.")} == sent
    received = {o["messages"][0]["$ref"].rsplit("/", 1)[1] for o in doc["operations"].values()
                if o["action"] == "receive"}  # fmt: skip
    assert received == {f"op.{name}" for name in accepted}
    answered = {
        ref["$ref"].rsplit("/", 1)[1]
        for o in doc["operations"].values()
        for ref in o.get("reply", {}).get("messages", [])
        + (o["messages"] * (o["action"] == "send"))
    }
    assert answered == {f"message.{name}" for name in sent}
    trade = doc["components"]["schemas"]["TradeRequestOp"]
    assert {"op", "agent", "symbol", "action", "lots"} <= set(trade["required"])
    assert trade["properties"]["lots"]["exclusiveMinimum"] == 0


async def test_frames_on_a_real_socket_match_the_described_schemas(hub: RunningHub) -> None:
    doc = await _document(hub)
    await eventually(lambda: hub.hub.registry.agents["agent_1"].online)
    sent = [
        {"op": "subscribe", "id": "1", "channels": ["agent:agent_1:ticks", "agent:agent_1:orders"]},
        {"op": "ping", "id": "2"},
        {"op": "trade", "id": "3", "agent": "agent_1", "symbol": "XAUUSD", "action": "buy",
         "lots": 0.01, "sl": 1.0, "dry_run": True},
        {"op": "close", "id": "4", "agent": "agent_1", "ticket": 999999},
        {"op": "trade", "id": "5", "agent": "agent_1", "lots": "many"},
        {"op": "unsubscribe", "id": "6", "channels": ["agent:agent_1:ticks"]},
    ]  # fmt: skip
    for frame in sent:
        valid = _payload_validator(doc, f"op.{frame['op']}").is_valid(frame)
        assert valid == (frame["id"] != "5"), frame  # "lots": "many" is refused by both
    frames: list[dict[str, Any]] = []
    async with websockets.connect(f"{hub.ws_url}?token={hub.token}") as ws:
        for frame in sent:
            await ws.send(json.dumps(frame))
        loop = asyncio.get_running_loop()
        end = loop.time() + units(20)
        while loop.time() < end and not {"unsubscribed", "result", "error", "pong"} <= {
            f["type"] for f in frames
        }:
            try:
                frames.append(json.loads(await asyncio.wait_for(ws.recv(), end - loop.time())))
            except TimeoutError:
                break
    types = {f["type"] for f in frames}
    assert {"welcome", "subscribed", "snapshot", "pong", "result", "error", "unsubscribed"} <= types
    for frame in frames:
        _payload_validator(doc, f"message.{frame['type']}").validate(frame)
