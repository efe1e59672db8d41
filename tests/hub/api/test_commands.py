"""The one command path: WS ops and REST routes derive from one table and answer alike."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import websockets

from hub.api.commands import OPS, op_table
from hub.errors import STATUS
from tests.hubkit import RunningHub, hub_config, run_hub
from tests.timing import eventually

TOKENS = """
auth:
  tokens:
    - {name: viewer, role: read, secret_env: T_READ}
    - {name: scoped, role: trade, secret_env: T_SCOPED, agents: [agent_1]}
    - {name: scoped-admin, role: admin, secret_env: T_SCOPED_ADMIN, agents: [agent_1]}
"""
ENV = {"T_READ": "read-secret", "T_SCOPED": "scoped-secret", "T_SCOPED_ADMIN": "sa-secret"}
ADMIN = "admin"
TRADE = {"symbol": "XAUUSD", "action": "buy", "lots": 0.01, "sl": 2600.0}
SIGNAL = {"signal_id": "s-1", "symbol": "XAUUSD", "direction": "long", "confidence": 0.9, "sl": 1}

# (token, op, agent or None, fields, expected code)
BAD_INPUTS: list[tuple[str, str, str | None, dict[str, Any], str]] = [
    (ADMIN, "trade", "agent_1", {**TRADE, "lots": -1}, "bad_request"),
    (ADMIN, "trade", "agent_1", {**TRADE, "lots": "1"}, "bad_request"),
    (ADMIN, "trade", "agent_1", {**TRADE, "lots": 20_000}, "bad_request"),
    (ADMIN, "trade", "agent_1", {**TRADE, "action": "hold"}, "bad_request"),
    (ADMIN, "trade", "agent_1", {"action": "buy", "lots": 0.01}, "bad_request"),
    (ADMIN, "trade", "agent_1", {**TRADE, "bogus": 1}, "bad_request"),
    (ADMIN, "trade", "agent_1", {**TRADE, "client_order_id": "x" * 65}, "bad_request"),
    (ADMIN, "trade", "agent_9", TRADE, "not_found"),
    (ADMIN, "close", "agent_1", {"ticket": -1}, "bad_request"),
    (ADMIN, "close", "agent_1", {"ticket": 1, "lots": 0}, "bad_request"),
    (ADMIN, "modify", "agent_1", {"ticket": 1, "sl": "x"}, "bad_request"),
    (ADMIN, "close_all", "agent_1", {"extra": True}, "bad_request"),
    (ADMIN, "signal", None, {**SIGNAL, "confidence": 1.5}, "bad_request"),
    (ADMIN, "signal", None, {**SIGNAL, "direction": "up"}, "bad_request"),
    (ADMIN, "emergency_stop", None, {"reason": 5}, "bad_request"),
    (ADMIN, "resume", None, {"why": "x"}, "bad_request"),
    ("read-secret", "trade", "agent_1", TRADE, "forbidden"),
    ("scoped-secret", "trade", "agent_2", TRADE, "forbidden"),
    ("scoped-secret", "close_all", "agent_3", {}, "forbidden"),
    ("scoped-secret", "signal", None, {**SIGNAL, "agents": ["agent_3"]}, "forbidden"),
    ("scoped-secret", "emergency_stop", None, {}, "forbidden"),
    ("sa-secret", "emergency_stop", None, {"close_positions": True}, "forbidden"),
    ("sa-secret", "resume", None, {}, "forbidden"),
]


def _token(h: RunningHub, token: str) -> str:
    return h.token if token == ADMIN else token


async def _over_rest(h: RunningHub, token: str, op: str, agent: str | None, fields: Any) -> Any:
    path = next(o.path for o in OPS if o.name == op).replace("{agent_id}", agent or "")
    r = await h.post(path, json=fields, headers={"Authorization": f"Bearer {_token(h, token)}"})
    return r.status_code, r.json()


async def _over_ws(h: RunningHub, token: str, op: str, agent: str | None, fields: Any) -> Any:
    async with websockets.connect(f"{h.ws_url}?token={_token(h, token)}") as ws:
        assert json.loads(await ws.recv())["type"] == "welcome"
        frame = {"op": op, "id": "q", **({"agent": agent} if agent else {}), **fields}
        await ws.send(json.dumps(frame))
        return json.loads(await ws.recv())


async def test_ws_and_rest_give_byte_identical_errors_for_the_same_bad_input() -> None:
    async with run_hub(hub_config(TOKENS), env=ENV) as h:
        for token, op, agent, fields, code in BAD_INPUTS:
            status, rest = await _over_rest(h, token, op, agent, fields)
            ws = await _over_ws(h, token, op, agent, fields)
            case = f"{op} {fields} as {token}"
            assert rest["error"]["code"] == code, (case, rest)
            assert status == STATUS[code], (case, status)
            assert ws["id"] == "q" and ws["error"] == rest["error"], (case, ws, rest)
            assert json.dumps(ws["error"]) == json.dumps(rest["error"]), case


async def test_a_bad_field_is_named_in_the_message() -> None:
    async with run_hub() as h:
        _, body = await _over_rest(h, ADMIN, "trade", "agent_1", {**TRADE, "lots": -1})
        assert body["error"]["message"] == "lots: must be > 0"
        _, body = await _over_rest(h, ADMIN, "trade", "agent_1", {**TRADE, "bogus": 1})
        assert body["error"]["message"] == "bogus: unknown field"
        _, body = await _over_rest(h, ADMIN, "trade", "agent_1", {"lots": 0.01})
        assert body["error"]["message"].startswith("symbol: required field missing")


async def test_a_limited_token_signal_reaches_only_its_agents() -> None:
    async with run_hub(hub_config(TOKENS), env=ENV) as h:
        await eventually(lambda: h.hub.registry.agents["agent_3"].online, message="agent_3 online")
        r = await h.post(
            "/api/signals",
            json={**SIGNAL, "sl": 1.0},
            headers={"Authorization": "Bearer scoped-secret"},
        )
        assert r.status_code == 200, r.text
        assert {route["agent"] for route in r.json()["routes"]} <= {"agent_1"}


def test_every_op_has_a_rest_route_and_an_openapi_entry() -> None:
    from hub.api.openapi import build_openapi

    spec = build_openapi()
    for op in OPS:
        entry = spec["paths"][op.path]["post"]
        schema = entry["requestBody"]["content"]["application/json"]["schema"]
        assert schema == {"$ref": f"#/components/schemas/{op.request.__name__}"}
        assert op.role in entry["description"]


def test_readme_op_table_is_the_generated_one() -> None:
    readme = (Path(__file__).parents[3] / "README.md").read_text()
    stale = "README's op table is stale: paste the output of python -m hub.api.commands"
    assert op_table() in readme, stale


@pytest.mark.parametrize("op", [op.name for op in OPS])
def test_every_op_is_documented_in_docs_protocol(op: str) -> None:
    docs = (Path(__file__).parents[3] / "docs" / "protocol.md").read_text()
    assert f'"op":"{op}"' in docs.replace(" ", "")


async def test_dry_run_over_rest_and_ws_answers_the_decision_and_sends_nothing() -> None:
    async with run_hub() as h:
        await eventually(lambda: h.hub.registry.agents["agent_1"].online, message="agent_1")
        await h.http.post(h.sim_url("agent_1") + "/sim/price", json={
            "symbol": "XAUUSD", "bid": 2650.0, "ask": 2650.3})  # fmt: skip
        await eventually(lambda: h.hub.registry.agents["agent_1"].ticks["XAUUSD"].ask == 2650.3)
        r = await h.post("/api/agents/agent_1/trade?dry_run=true", json={**TRADE, "sl": 2640.0})
        assert r.status_code == 422
        assert r.json()["error"]["details"] == {
            "check": "max_risk_per_trade",
            "limit": 2.0,
            "value": 10.3,
        }
        r = await h.post("/api/agents/agent_1/trade?dry_run=true", json={**TRADE, "sl": 2648.5})
        assert r.status_code == 200 and r.json()["dry_run"] is True
        ws = await _over_ws(h, ADMIN, "trade", "agent_1", {**TRADE, "sl": 2648.5, "dry_run": True})
        assert ws["type"] == "result" and ws["ok"] and ws["data"]["dry_run"] is True
        r = await h.post("/api/agents/agent_1/trade?dry_run=maybe", json=TRADE)
        assert r.json()["error"]["message"] == "dry_run: expected true or false, got 'maybe'"
        state = (await h.http.get(h.sim_url("agent_1") + "/sim/state")).json()
        assert state["orders_filled"] == 0
