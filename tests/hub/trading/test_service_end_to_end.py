"""Trading end to end: risk over REST and WS, serialisation, idempotency, reconciliation,
emergency stop, signals — a real hub against real simulated bridges."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import msgspec
import pytest
import websockets

from hub.bridge.profile import builtin_names
from hub.config import HubConfig
from tests.hubkit import RunningHub, hub_config, run_hub
from tests.timing import eventually, units

READ_TOKEN = "read-token-xyz"
TRADE_TOKEN = "trade-token-xyz"
TOKENS = """
auth:
  tokens:
    - {name: viewer, role: read, secret_env: T_READ}
    - {name: ml, role: trade, secret_env: T_TRADE, agents: [agent_1]}
"""
ENV = {"T_READ": READ_TOKEN, "T_TRADE": TRADE_TOKEN}
# The trading paths run against a simulator in each built-in bridge profile's dialect.
each_profile = pytest.mark.parametrize("profile", builtin_names())


async def ready(h: RunningHub, *agents: str) -> None:
    reg = h.hub.registry.agents
    await eventually(lambda: all(reg[a].online and reg[a].account is not None for a in agents))


async def pin(h: RunningHub, agent: str, symbol: str, bid: float, ask: float) -> None:
    await h.sim(agent, "/sim/price", {"symbol": symbol, "bid": bid, "ask": ask})
    ticks = h.hub.registry.agents[agent].ticks
    await eventually(lambda: (t := ticks.get(symbol)) is not None and (t.bid, t.ask) == (bid, ask))


async def sim_state(h: RunningHub, agent: str) -> dict[str, Any]:
    r = await h.http.get(h.sim_url(agent) + "/sim/state")
    state: dict[str, Any] = r.json()
    return state


def buy(sl: float | None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"symbol": "XAUUSD", "action": "buy", "lots": 0.01, **extra}
    if sl is not None:
        body["sl"] = sl
    return body


@each_profile
async def test_worked_example_rejects_then_accepts(profile: str) -> None:
    async with run_hub(hub_config(profile=profile)) as h:
        await ready(h, "agent_1")
        await pin(h, "agent_1", "XAUUSD", 2650.00, 2650.30)
        r = await h.post("/api/agents/agent_1/trade", buy(2640.00))
        assert r.status_code == 422
        err = r.json()["error"]
        assert err["code"] == "risk_rejected"
        assert err["details"] == {"check": "max_risk_per_trade", "limit": 2.0, "value": 10.3}
        r = await h.post("/api/agents/agent_1/trade", buy(2648.50, tp=2660.0))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["agent_id"] == "agent_1" and body["symbol"] == "XAUUSD"
        assert body["open_price"] == 2650.30 and body["sl"] == 2648.50 and body["tp"] == 2660.0
        assert body["risk"]["risk"] == 1.8
        assert {"ticket", "action", "lots", "client_order_id", "risk"} <= body.keys()
        positions = (await h.get("/api/agents/agent_1/positions")).json()["positions"]
        assert [p["ticket"] for p in positions] == [body["ticket"]]


@each_profile
async def test_twenty_concurrent_trades_fill_exactly_one(profile: str) -> None:
    async with run_hub(hub_config(profile=profile)) as h:
        await ready(h, "agent_1")
        await pin(h, "agent_1", "XAUUSD", 2650.00, 2650.30)
        results = await asyncio.gather(
            *(h.post("/api/agents/agent_1/trade", buy(2648.50)) for _ in range(20))
        )
        ok = [r for r in results if r.status_code == 200]
        rejected = [r.json()["error"] for r in results if r.status_code == 422]
        assert len(ok) == 1 and len(rejected) == 19
        assert {e["details"]["check"] for e in rejected} == {"max_positions"}
        assert (await sim_state(h, "agent_1"))["orders_filled"] == 1


@each_profile
async def test_repeated_client_order_id_trades_once_and_other_payload_is_duplicate(
    profile: str,
) -> None:
    async with run_hub(hub_config(profile=profile)) as h:
        await ready(h, "agent_1")
        await pin(h, "agent_1", "XAUUSD", 2650.00, 2650.30)
        first, again = await asyncio.gather(
            h.post("/api/agents/agent_1/trade", buy(2648.50, client_order_id="ml-77")),
            h.post("/api/agents/agent_1/trade", buy(2648.50, client_order_id="ml-77")),
        )
        assert first.status_code == again.status_code == 200
        assert first.json() == again.json()
        by_header = await h.post(
            "/api/agents/agent_1/trade",
            buy(2648.50),
            headers={**h.headers, "Idempotency-Key": "ml-77"},
        )
        assert by_header.json() == first.json()
        other = await h.post("/api/agents/agent_1/trade", buy(2648.00, client_order_id="ml-77"))
        assert other.status_code == 409 and other.json()["error"]["code"] == "duplicate"
        assert (await sim_state(h, "agent_1"))["orders_received"] == 1


@each_profile
async def test_timeout_after_fill_is_reconciled_without_a_second_order(profile: str) -> None:
    cfg = hub_config(profile=profile)
    cfg = msgspec.structs.replace(
        cfg, polling=msgspec.structs.replace(cfg.polling, trade_timeout=units(5))
    )
    async with run_hub(cfg) as h:
        await ready(h, "agent_1")
        await pin(h, "agent_1", "XAUUSD", 2650.00, 2650.30)
        slow_trade = {"mode": "slow", "delay_ms": int(units(40) * 1000), "paths": ["/trade"]}
        await h.sim("agent_1", "/sim/fault", slow_trade)  # the order fills, its answer is late
        trade = asyncio.create_task(h.post("/api/agents/agent_1/trade", buy(2648.50)))

        async def filled() -> bool:
            return bool((await sim_state(h, "agent_1"))["orders_filled"] >= 1)

        await eventually(filled, timeout=units(30), interval=units(0.2), message="the fill")
        await h.sim("agent_1", "/sim/fault", {"mode": "ok"})  # the bridge recovers, answer lost
        r = await trade
        assert r.status_code == 200, r.text
        assert r.json()["ticket"] >= 1001
        state = await sim_state(h, "agent_1")
        assert state["orders_received"] == 1 and state["orders_filled"] == 1


async def test_timeout_with_unreadable_bridge_says_outcome_unknown() -> None:
    cfg = hub_config()
    cfg = msgspec.structs.replace(
        cfg, polling=msgspec.structs.replace(cfg.polling, trade_timeout=units(3))
    )
    async with run_hub(cfg) as h:
        await ready(h, "agent_1")
        await pin(h, "agent_1", "XAUUSD", 2650.00, 2650.30)
        await h.sim(
            "agent_1", "/sim/fault", {"mode": "slow", "delay_ms": 60_000, "paths": ["/trade"]}
        )
        trade = asyncio.create_task(h.post("/api/agents/agent_1/trade", buy(2648.50)))

        async def received() -> bool:
            return bool((await sim_state(h, "agent_1"))["orders_received"] >= 1)

        await eventually(received, timeout=units(30), interval=units(0.1), message="the order")
        await h.sim("agent_1", "/sim/fault", {"mode": "down"})  # sent; now nothing answers
        r = await trade
        assert r.status_code == 504
        err = r.json()["error"]
        assert err["code"] == "bridge_timeout" and "unknown" in err["message"]
        assert err["details"]["outcome"] == "unknown"


@pytest.mark.parametrize("profile", [p for p in builtin_names() if p != "minimal"])
async def test_close_and_modify_round_trip_over_the_socket(profile: str) -> None:
    async with run_hub(hub_config(profile=profile)) as h:
        await ready(h, "agent_1")
        await pin(h, "agent_1", "XAUUSD", 2650.00, 2650.30)
        async with websockets.connect(f"{h.ws_url}?token={h.token}") as ws:
            await ws.recv()  # welcome

            async def op(body: dict[str, Any]) -> dict[str, Any]:
                await ws.send(json.dumps(body))
                while True:
                    msg = json.loads(await ws.recv())
                    if msg.get("id") == body["id"]:
                        return dict(msg)

            opened = await op({"op": "trade", "id": "1", "agent": "agent_1", **buy(2648.50)})
            assert opened["type"] == "result" and opened["ok"] is True
            ticket = opened["data"]["ticket"]
            widened = await op(
                {"op": "modify", "id": "2", "agent": "agent_1", "ticket": ticket, "sl": 2640.0}
            )
            assert widened["ok"] is False
            assert widened["error"]["details"]["check"] == "max_risk_per_trade"
            tightened = await op(
                {"op": "modify", "id": "3", "agent": "agent_1", "ticket": ticket, "sl": 2649.0}
            )
            assert tightened["ok"] is True and tightened["data"]["sl"] == 2649.0
            closed = await op({"op": "close", "id": "4", "agent": "agent_1", "ticket": ticket})
            assert closed["ok"] is True and closed["data"]["ticket"] == ticket
            assert "profit" in closed["data"]
        assert (await h.get("/api/agents/agent_1/positions")).json() == {"positions": []}
        history = (await h.get("/api/agents/agent_1/history")).json()["trades"]
        assert [t["ticket"] for t in history] == [ticket]


async def test_minimal_bridge_trades_with_a_token_and_an_sl_and_refuses_close_and_modify() -> None:
    """The original design's five endpoints: a trade with a token and an SL passes; close,
    modify and close-all are ``not_supported`` (422) and nothing reaches the bridge."""
    cfg = hub_config(TOKENS, profile="minimal")
    async with run_hub(cfg, env=ENV) as h:
        await ready(h, "agent_1")
        await pin(h, "agent_1", "XAUUSD", 2650.00, 2650.30)
        trader = {"Authorization": f"Bearer {TRADE_TOKEN}"}
        r = await h.post("/api/agents/agent_1/trade", buy(2648.50), headers=trader)
        assert r.status_code == 200, r.text
        ticket = r.json()["ticket"]
        assert r.json()["sl"] == 2648.50
        positions = (await h.get("/api/agents/agent_1/positions")).json()["positions"]
        assert [(p["ticket"], p["sl"]) for p in positions] == [(ticket, 2648.50)]
        refused = [
            await h.post("/api/agents/agent_1/close", {"ticket": ticket}, headers=trader),
            await h.post(
                "/api/agents/agent_1/modify", {"ticket": ticket, "sl": 2649.0}, headers=trader
            ),
            await h.post("/api/agents/agent_1/close-all", {}),
        ]
        for resp in refused:
            assert resp.status_code == 422, resp.text
            assert resp.json()["error"]["code"] == "not_supported", resp.text
            assert "minimal" in resp.json()["error"]["message"]
        stop = await h.post("/api/emergency/stop-all", {"reason": "t", "close_positions": True})
        assert stop.status_code == 200, stop.text
        assert stop.json()["closed"]["agent_1"]["error"]["code"] == "not_supported"
        state = await sim_state(h, "agent_1")
        assert state["positions"] == 1 and state["orders_received"] == 1


async def test_roles_and_agent_scopes() -> None:
    async with run_hub(hub_config(TOKENS), env=ENV) as h:
        await ready(h, "agent_1", "agent_3")
        read = {"Authorization": f"Bearer {READ_TOKEN}"}
        trade = {"Authorization": f"Bearer {TRADE_TOKEN}"}
        assert (await h.get("/api/agents", headers=read)).status_code == 200
        r = await h.post("/api/agents/agent_1/trade", buy(2648.5), headers=read)
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
        r = await h.post("/api/agents/agent_3/trade", buy(2648.5), headers=trade)
        assert r.status_code == 403
        r = await h.post("/api/emergency/stop-all", {}, headers=trade)
        assert r.status_code == 403
        r = await h.get("/api/agents/agent_3", headers=trade)
        assert r.status_code == 403


async def test_disabled_and_offline_agents_are_refused() -> None:
    async with run_hub(hub_config(enabled=(True, False, True))) as h:
        await ready(h, "agent_1", "agent_2")
        r = await h.post(
            "/api/agents/agent_2/trade",
            {"symbol": "EURUSD", "action": "buy", "lots": 0.01, "sl": 1.0},
        )
        assert r.status_code == 422 and r.json()["error"]["code"] == "agent_disabled"
        await h.sim("agent_1", "/sim/fault", {"mode": "down"})
        await eventually(lambda: not h.hub.registry.agents["agent_1"].online)
        r = await h.post("/api/agents/agent_1/trade", buy(2600.0))
        assert r.status_code == 503 and r.json()["error"]["code"] == "agent_offline"


async def test_bad_trade_bodies_name_the_field() -> None:
    async with run_hub() as h:
        r = await h.post(
            "/api/agents/agent_1/trade", {"symbol": "XAUUSD", "action": "hold", "lots": 1}
        )
        assert r.status_code == 400 and "action" in r.json()["error"]["message"]
        r = await h.post(
            "/api/agents/agent_1/trade", {"symbol": "XAUUSD", "action": "buy", "lots": -1}
        )
        assert r.status_code == 400 and "lots" in r.json()["error"]["message"]
        r = await h.post("/api/agents/agent_1/trade", buy(1.0, extra_field=1))
        assert r.status_code == 400 and "extra_field" in r.json()["error"]["message"]


async def test_emergency_stop_rejects_at_once_survives_restart_and_only_admin_resumes(
    tmp_path: Any,
) -> None:
    data = str(tmp_path)
    cfg = hub_config(TOKENS)
    async with run_hub(cfg, env=ENV, data_dir=data) as h:
        await ready(h, "agent_1")
        await pin(h, "agent_1", "XAUUSD", 2650.00, 2650.30)
        opened = await h.post("/api/agents/agent_1/trade", buy(2648.50))
        assert opened.status_code == 200
        r = await h.post("/api/emergency/stop-all", {"reason": "test", "close_positions": True})
        assert r.status_code == 200, r.text
        assert r.json()["closed"]["agent_1"]["closed"] == 1
        r = await h.post("/api/agents/agent_1/trade", buy(2648.50))
        assert r.status_code == 423 and r.json()["error"]["code"] == "emergency_stop"
        assert (await h.get("/api/risk")).json()["emergency"]["stopped"] is True
    async with run_hub(cfg, env=ENV, data_dir=data) as h:
        await ready(h, "agent_1")
        r = await h.post("/api/agents/agent_1/trade", buy(2648.50))
        assert r.status_code == 423
        trade = {"Authorization": f"Bearer {TRADE_TOKEN}"}
        assert (await h.post("/api/emergency/resume", headers=trade)).status_code == 403
        assert (await h.post("/api/emergency/resume")).status_code == 200
        await pin(h, "agent_1", "XAUUSD", 2650.00, 2650.30)
        r = await h.post("/api/agents/agent_1/trade", buy(2648.50))
        assert r.status_code == 200, r.text


async def test_config_emergency_stop_all_starts_stopped() -> None:
    cfg = hub_config()
    cfg = msgspec.structs.replace(
        cfg, global_risk=msgspec.structs.replace(cfg.global_risk, emergency_stop_all=True)
    )
    async with run_hub(cfg) as h:
        await ready(h, "agent_1")
        r = await h.post("/api/agents/agent_1/trade", buy(2648.50))
        assert r.status_code == 423


async def test_trade_in_flight_when_stop_lands_completes_before_the_stop_reply() -> None:
    async with run_hub() as h:
        await ready(h, "agent_1")
        await pin(h, "agent_1", "XAUUSD", 2650.00, 2650.30)
        # Only the fill's answer is slow: the reads before it (fresh account, positions and
        # quote) must not push the order's arrival past the wait below on a loaded machine.
        slow = {"mode": "slow", "delay_ms": int(units(3) * 1000), "paths": ["/trade"]}
        await h.sim("agent_1", "/sim/fault", slow)
        done: dict[str, float] = {}

        async def timed(name: str, coro: Any) -> Any:
            r = await coro
            done[name] = asyncio.get_running_loop().time()
            return r

        trade = asyncio.create_task(
            timed("trade", h.post("/api/agents/agent_1/trade", buy(2648.50)))
        )

        async def received() -> bool:
            return bool((await sim_state(h, "agent_1"))["orders_received"] >= 1)

        await eventually(received, message="the order at the bridge")
        stop = await timed("stop", h.post("/api/emergency/stop-all", {"reason": "race"}))
        traded = await trade
        assert stop.status_code == 200
        assert traded.status_code == 200 and done["trade"] <= done["stop"]
        await h.sim("agent_1", "/sim/fault", {"mode": "ok"})
        after = await h.post("/api/agents/agent_1/trade", buy(2648.50))
        assert after.status_code == 423


def all_enabled(min_confidence_3: float = 0.0) -> HubConfig:
    cfg = hub_config()
    a3 = cfg.agents["agent_3"]
    a3 = msgspec.structs.replace(
        a3, risk=msgspec.structs.replace(a3.risk, min_confidence=min_confidence_3)
    )
    return msgspec.structs.replace(cfg, agents={**cfg.agents, "agent_3": a3})


async def test_signal_routed_and_sized_across_agents() -> None:
    async with run_hub(all_enabled()) as h:
        await ready(h, "agent_1", "agent_2", "agent_3")
        await pin(h, "agent_1", "XAUUSD", 2650.00, 2650.30)
        await pin(h, "agent_3", "XAUUSD", 2650.00, 2650.30)
        sig = {
            "signal_id": "sig-1",
            "symbol": "XAUUSD",
            "direction": "long",
            "confidence": 0.78,
            "sl": 2648.30,
            "tp": 2660.0,
        }
        r = await h.post("/api/signals", sig)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["signal_id"] == "sig-1"
        routes = {x["agent"]: x for x in body["routes"]}
        assert set(routes) == {"agent_1", "agent_3"}  # agent_2 does not trade XAUUSD
        # budgets: 2.00 and 20.00 USD; one lot risks 100 x 2.00 = 200 USD at this SL
        assert routes["agent_1"] == {
            "agent": "agent_1",
            "outcome": "executed",
            "ticket": routes["agent_1"]["ticket"],
            "lots": 0.01,
        }
        assert routes["agent_3"]["outcome"] == "executed" and routes["agent_3"]["lots"] == 0.1
        again = await h.post("/api/signals", sig)
        assert [x["ticket"] for x in again.json()["routes"]] == [
            x["ticket"] for x in body["routes"]
        ]
        assert (await sim_state(h, "agent_1"))["orders_received"] == 1


async def test_signal_skips_low_confidence_and_rejects_too_small() -> None:
    async with run_hub(all_enabled(min_confidence_3=0.9)) as h:
        await ready(h, "agent_1", "agent_3")
        await pin(h, "agent_1", "XAUUSD", 2650.00, 2650.30)
        sig = {
            "signal_id": "sig-2",
            "symbol": "XAUUSD",
            "direction": "long",
            "confidence": 0.5,
            "sl": 2640.00,
        }
        body = (await h.post("/api/signals", sig)).json()
        routes = {x["agent"]: x for x in body["routes"]}
        assert routes["agent_3"]["outcome"] == "skipped"
        assert routes["agent_1"]["outcome"] == "rejected"
        assert routes["agent_1"]["error"]["details"]["check"] == "too_small"


async def test_every_refusal_is_an_order_event() -> None:
    async with run_hub() as h:
        await ready(h, "agent_1")
        async with websockets.connect(f"{h.ws_url}?token={h.token}") as ws:
            await ws.recv()
            await ws.send(
                json.dumps({"op": "subscribe", "id": "s", "channels": ["agent:agent_1:orders"]})
            )
            assert json.loads(await ws.recv())["type"] == "subscribed"
            await ws.send(json.dumps({"op": "close", "id": "c", "agent": "agent_1", "ticket": 999}))
            await h.sim("agent_1", "/sim/fault", {"mode": "error"})
            await ws.send(
                json.dumps(
                    {
                        "op": "trade",
                        "id": "t",
                        "agent": "agent_1",
                        **buy(2600.0, client_order_id="x"),
                    }
                )
            )
            seen: dict[str, Any] = {}
            while len(seen) < 4:
                msg = json.loads(await asyncio.wait_for(ws.recv(), units(50)))
                key = msg.get("id") or f"{msg['data']['command']}:{msg['data']['event']}"
                seen[key] = msg
        assert seen["c"]["error"]["code"] == "not_found"
        assert seen["close:rejected"]["data"]["reason"] == "not_found"
        # The failing bridge answers the trade's pre-check with a 500 (bridge_error), unless
        # the poller has already marked the agent offline (agent_offline): either way the
        # refusal is an order event with the same reason.
        code = seen["t"]["error"]["code"]
        assert code in ("bridge_error", "agent_offline")
        assert seen["trade:rejected"]["data"]["reason"] == code
