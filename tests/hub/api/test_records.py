"""The demo's records end to end, on SQLite and Postgres: trades, logs, ticks, equity."""

from __future__ import annotations

from typing import Any

from tests.hubkit import RunningHub, run_hub
from tests.timing import eventually, units


async def ready(h: RunningHub) -> None:
    reg = h.hub.registry.agents
    await eventually(lambda: reg["agent_1"].online and reg["agent_1"].account is not None)


async def body_when(h: RunningHub, path: str, check: Any, **params: Any) -> Any:
    """The JSON body of ``GET path`` once ``check(body)`` holds."""

    async def passing() -> Any:
        body = (await h.get(path, params=params)).json()
        return body if check(body) else None

    return await eventually(
        passing, timeout=units(100), interval=units(0.5), message=f"GET {path} {params}"
    )


async def test_trading_leaves_matching_records(store_url: str) -> None:
    async with run_hub(env={"DATABASE_URL": store_url}) as h:
        await ready(h)
        await h.sim("agent_1", "/sim/price", {"symbol": "XAUUSD", "bid": 2650.0, "ask": 2650.3})
        ticks = h.hub.registry.agents["agent_1"].ticks
        await eventually(lambda: ticks["XAUUSD"].ask == 2650.3)
        body = {"symbol": "XAUUSD", "action": "buy", "lots": 0.01, "sl": 2648.5}
        opened = await h.post("/api/agents/agent_1/trade", {**body, "client_order_id": "rec-1"})
        assert opened.status_code == 200, opened.text
        rejected = await h.post("/api/agents/agent_1/trade", {**body, "sl": 2600.0})
        assert rejected.status_code == 422
        ticket = opened.json()["ticket"]
        await h.sim("agent_1", "/sim/price", {"symbol": "XAUUSD", "bid": 2651.0, "ask": 2651.3})
        await eventually(lambda: ticks["XAUUSD"].bid == 2651.0)
        closed = await h.post("/api/agents/agent_1/close", {"ticket": ticket})
        assert closed.status_code == 200
        trades = await body_when(
            h,
            "/api/trades",
            lambda b: b["trades"] and b["trades"][0]["status"] == "closed",
            agent="agent_1",
        )
        row = trades["trades"][0]
        assert row["client_order_id"] == "rec-1" and row["ticket"] == ticket
        assert row["open_price"] == 2650.3 and row["close_price"] == 2651.0
        assert row["profit"] == closed.json()["profit"] == 0.7
        logs = await body_when(
            h,
            "/api/logs",
            lambda b: (
                {"order_accepted", "order_rejected", "order_filled", "position_closed"}
                <= {r["event_type"] for r in b["logs"]}
            ),
            agent="agent_1",
            limit=200,
        )
        assert any(r["event_type"] == "status_changed" for r in logs["logs"])
        points = await body_when(h, "/api/agents/agent_1/equity", lambda b: len(b["points"]) >= 1)
        assert {"time", "balance", "equity"} <= points["points"][0].keys()
        await eventually(lambda: h.hub.writer.health().written > 20)
        assert await h.hub.store.count("ticks") > 0
        status = (await h.http.get("/api/status")).json()["store"]
        assert status["healthy"] is True and status["engine"] in ("sqlite", "postgres")


async def test_logs_paginate_newest_first_with_before(store_url: str) -> None:
    async with run_hub(env={"DATABASE_URL": store_url}) as h:
        await ready(h)
        for _ in range(3):
            await h.post(
                "/api/agents/agent_1/trade", {"symbol": "XAUUSD", "action": "buy", "lots": 0.01}
            )
        first = await body_when(h, "/api/logs", lambda b: len(b["logs"]) == 2, limit=2)
        ids = [r["id"] for r in first["logs"]]
        assert ids == sorted(ids, reverse=True) and first["next_before"] == ids[-1]
        second = (await h.get("/api/logs", params={"limit": 2, "before": ids[-1]})).json()
        assert all(r["id"] < ids[-1] for r in second["logs"])
        r = await h.get("/api/logs", params={"limit": "x"})
        assert r.status_code == 400 and "limit" in r.json()["error"]["message"]


async def test_trades_filter_by_status_and_logs_by_event(store_url: str) -> None:
    async with run_hub(env={"DATABASE_URL": store_url}) as h:
        await ready(h)
        await h.sim("agent_1", "/sim/price", {"symbol": "XAUUSD", "bid": 2650.0, "ask": 2650.3})
        ticks = h.hub.registry.agents["agent_1"].ticks
        await eventually(lambda: ticks["XAUUSD"].ask == 2650.3)
        body = {"symbol": "XAUUSD", "action": "buy", "lots": 0.01, "sl": 2648.5}
        opened = await h.post("/api/agents/agent_1/trade", body)
        assert opened.status_code == 200, opened.text
        refused = await h.post("/api/agents/agent_1/trade", {**body, "sl": 2600.0})
        assert refused.status_code == 422
        closed = await h.post("/api/agents/agent_1/close", {"ticket": opened.json()["ticket"]})
        assert closed.status_code == 200, closed.text
        rows = await body_when(
            h, "/api/trades", lambda b: len(b["trades"]) == 1, agent="agent_1", status="closed"
        )
        assert rows["trades"][0]["profit"] == closed.json()["profit"]
        rejected = await body_when(
            h, "/api/logs", lambda b: len(b["logs"]) == 1, agent="agent_1", event="order_rejected"
        )
        assert rejected["logs"][0]["event_type"] == "order_rejected"
        for path, params, field in [
            ("/api/trades", {"status": "gone"}, "status"),
            ("/api/logs", {"event": "no spaces"}, "event"),
        ]:
            r = await h.get(path, params=params)
            assert r.status_code == 400 and r.json()["error"]["message"].startswith(f"{field}:")
