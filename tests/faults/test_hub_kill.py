"""``kill -9`` of a hub in the middle of traffic, then a restart on the same data directory.

Standalone simulated bridges (``http://`` in the config) outlive the hub, as MT4 terminals
would. Records spooled while Postgres was down come back once; an order the hub sent but
never answered is found by its tag in the bridge, so resending its ``client_order_id``
does not trade twice; the emergency stop set just before the kill is still in force.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from hub.bridge.sim_server import start_sim
from hub.config import SymbolSpec
from hub.trading.reconcile import order_tag
from tests.faults.kit import HubProc
from tests.hub.records.helpers import run_services_async
from tests.timing import eventually, units

SLOW_MS = 2000  # under the poll and trade timeouts: the hub waits, nothing fails


def config(bridge: str) -> str:
    return f"""
polling: {{tick_interval: 0.1, account_interval: 0.2, history_interval: 0.5, timeout: 5.0,
          backoff_initial: 0.1, backoff_max: 0.5}}
symbols:
  XAUUSD: {{contract_size: 100, digits: 2}}
agents:
  agent_1: {{name: Atlas, strategy: amd, bridge: "{bridge}", symbols: [XAUUSD],
            initial_balance: 100000,
            risk: {{max_risk_per_trade: 1%, max_daily_loss: 5%, max_positions: 5}}}}
"""


async def trade(hub: HubProc, coid: str, price: float) -> httpx.Response:
    body = {"symbol": "XAUUSD", "action": "buy", "lots": 0.01, "sl": price - 5,
            "client_order_id": coid}  # fmt: skip
    return await hub.http.post("/api/agents/agent_1/trade", json=body)


async def tagged(bridge: httpx.AsyncClient, coid: str) -> int:
    """How many orders for ``coid`` the bridge holds, open or closed."""
    tag = order_tag(coid)
    open_ = (await bridge.get("/positions")).json()
    closed = (await bridge.get("/history", params={"since": 0})).json()
    rows: list[dict[str, Any]] = [*open_, *closed]
    return sum(1 for p in rows if p["comment"].startswith(tag))


async def test_kill_9_mid_traffic_spool_replayed_order_not_doubled_stop_kept(
    private_pg: tuple[str, Path], tmp_path: Path
) -> None:
    url, services = private_pg
    spec = {"XAUUSD": SymbolSpec(contract_size=100, digits=2)}
    sim = await start_sim("127.0.0.1", 0, symbols=spec, balance=100_000.0, seed=7)
    bridge = httpx.AsyncClient(base_url=sim.url, timeout=units(50))
    (tmp_path / "agents.yml").write_text(config(sim.url))
    (tmp_path / "data").mkdir()
    hub = HubProc(tmp_path / "agents.yml", tmp_path / "data", {"DATABASE_URL": url},
                  tmp_path / "hub.log")  # fmt: skip
    try:
        await bridge.post("/sim/price", json={"symbol": "XAUUSD", "bid": 2650.0, "ask": 2650.3})
        await hub.start()
        await hub.online("agent_1")
        assert (await trade(hub, "up-1", 2650.0)).status_code == 200

        await run_services_async("pause", services, "postgres")
        for coid in ("down-1", "down-2"):
            r = await trade(hub, coid, 2650.0)
            assert r.status_code == 200, r.text
        store = (await hub.status())["store"]
        submitted = store["queue_depth"] + store["spool_records"]

        async def spooled() -> bool:  # FIFO: all records before the mark are in the spool
            return bool((await hub.status())["store"]["spool_records"] >= submitted)

        await eventually(  # the writer spools after its retries: slow on a loaded machine
            spooled,
            timeout=units(600),
            interval=units(0.5),
            message="the down-* records to reach the spool",
        )

        # Traffic at the kill: an order the bridge fills but answers late, and a stop.
        await bridge.post("/sim/fault", json={"mode": "slow", "delay_ms": SLOW_MS})
        received = (await bridge.get("/sim/state")).json()["orders_received"]
        in_flight = asyncio.create_task(trade(hub, "inflight-1", 2650.0))
        await eventually(  # slow reads first: earlier orders, a fresh quote (2 s each)
            lambda: _state(bridge, "orders_filled", received + 1),
            timeout=units(150),
            interval=units(0.5),
            message="the order to fill",
        )
        stop = asyncio.create_task(
            hub.http.post("/api/emergency/stop-all", json={"reason": "before the kill"})
        )
        emergency = tmp_path / "data" / "emergency.json"
        await eventually(
            lambda: _stopped(emergency),
            timeout=units(100),
            message="the stop to be saved",
        )
        await hub.kill9()
        outcomes = await asyncio.gather(in_flight, stop, return_exceptions=True)
        assert all(isinstance(o, httpx.TransportError) for o in outcomes), outcomes

        await bridge.post("/sim/fault", json={"mode": "ok"})
        await run_services_async("start", services, "postgres")
        await hub.start()
        await hub.online("agent_1")
        risk = (await hub.http.get("/api/risk")).json()
        assert risk["emergency"]["stopped"] is True
        r = await trade(hub, "after-1", 2650.0)
        assert r.status_code == 423 and r.json()["error"]["code"] == "emergency_stop"

        filled_before = (await bridge.get("/sim/state")).json()["orders_filled"]
        again = await trade(hub, "inflight-1", 2650.0)  # the client resends: no second order
        assert again.status_code == 200, again.text
        assert (await bridge.get("/sim/state")).json()["orders_filled"] == filled_before
        assert await tagged(bridge, "inflight-1") == 1
        assert again.json()["client_order_id"] == "inflight-1"

        async def drained() -> bool:
            s = (await hub.status())["store"]
            return bool(s["healthy"] and s["spool_records"] == 0 and s["queue_depth"] == 0)

        await eventually(
            drained, timeout=units(300), interval=units(0.5), message="the spool to be replayed"
        )
        conn = await asyncpg.connect(url, timeout=10)
        try:
            rows = await conn.fetch("SELECT client_order_id FROM trading.agent_trades")
            keys = await conn.fetch("SELECT record_key FROM trading.agent_logs")
        finally:
            await conn.close()
        by_coid = Counter(r["client_order_id"] for r in rows)
        assert {"up-1", "down-1", "down-2"} <= set(by_coid), by_coid
        assert set(by_coid.values()) == {1}, by_coid
        assert len({k["record_key"] for k in keys}) == len(keys)
    finally:
        await hub.close()
        await bridge.aclose()
        await sim.close()


async def _state(bridge: httpx.AsyncClient, key: str, at_least: int) -> bool:
    return bool((await bridge.get("/sim/state")).json()[key] >= at_least)


def _stopped(path: Path) -> bool:
    try:
        return bool(json.loads(path.read_text())["stopped"])
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return False
