"""Postgres stopped for 10 s under a hub that trades and ticks: after it returns, every
record is written exactly once (the spool). The writer alone: tests/hub/records/test_outage.py."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import msgspec

from hub.bridge.models import Tick
from hub.config import HubConfig
from tests.hub.records.helpers import run_services_async
from tests.hubkit import RunningHub, hub_config, run_hub
from tests.timing import eventually, units


def rich_agent_1() -> HubConfig:
    """agent_1 with room for hundreds of round trips inside its daily loss limit."""
    cfg = hub_config()
    a1 = msgspec.structs.replace(cfg.agents["agent_1"], initial_balance=100_000.0)
    return msgspec.structs.replace(cfg, agents={**cfg.agents, "agent_1": a1})


async def trade_loop(
    h: RunningHub, filled: list[str], sent: list[int], stop: asyncio.Event
) -> None:
    """Open and close 0.01 lot on agent_1 until ``stop``; keeps the filled client_order_ids.

    It stops between commands, never mid-request: a trade cancelled in flight may still be
    filled and recorded by the hub without the test knowing."""
    for i in range(10_000):
        if stop.is_set():
            return
        bid = h.hub.registry.agents["agent_1"].ticks["XAUUSD"].bid
        coid = f"pg-{i}"
        body = {"symbol": "XAUUSD", "action": "buy", "lots": 0.01, "sl": round(bid - 1.5, 2)}
        r = await h.post("/api/agents/agent_1/trade", {**body, "client_order_id": coid})
        sent[0] += 1
        if r.status_code == 200:
            filled.append(coid)
            await h.post("/api/agents/agent_1/close", {"ticket": r.json()["ticket"]})
            sent[0] += 1
        await asyncio.sleep(units(2))


async def test_postgres_down_ten_seconds_every_record_written_once(
    private_pg: tuple[str, Path],
) -> None:
    url, services = private_pg
    ticks: set[str] = set()

    def observe(channel: str, key: str | None, data: Any) -> None:
        if isinstance(data, Tick):
            ticks.add(f"tick:{channel.split(':')[1]}:{data.symbol}:{data.time}")

    filled: list[str] = []
    sent = [0]
    async with run_hub(rich_agent_1(), env={"DATABASE_URL": url}) as h:
        h.hub.publisher.observers.append(observe)
        writer = h.hub.writer
        reg = h.hub.registry.agents
        await eventually(lambda: reg["agent_1"].online and "XAUUSD" in reg["agent_1"].ticks)
        stop = asyncio.Event()
        trading = asyncio.create_task(trade_loop(h, filled, sent, stop))
        try:
            await eventually(
                lambda: writer.health().written > 0 and len(filled) > 2,
                timeout=units(100),
                message="first rows",
            )
            await run_services_async("pause", services, "postgres")
            await eventually(
                lambda: writer.health().spool_records > 0,
                timeout=units(100),
                message="records to be spooled",
            )
            await asyncio.sleep(units(100))  # down for 10 s, ticking and trading on
            assert not writer.health().healthy
            during = len(filled)
            await run_services_async("start", services, "postgres")
            await eventually(
                lambda: writer.health().healthy,
                timeout=units(300),
                message="the writer to recover",
            )
            await eventually(
                lambda: len(filled) > during + 2,
                timeout=units(100),
                message="trades after the outage",
            )
        finally:
            stop.set()
            await trading  # the loop's own failure, if any, fails the test
        await eventually(
            lambda: (lambda w: w.spool_records == 0 and w.queue_depth == 0)(writer.health()),
            timeout=units(300),
            message="the spool to drain",
        )
        assert writer.health().dropped == 0 and writer.health().rejected == 0
    assert during > 3, "no trades while Postgres was down"

    conn = await asyncpg.connect(url, timeout=10)
    try:
        trades = await conn.fetch("SELECT client_order_id FROM trading.agent_trades")
        logs = await conn.fetch("SELECT record_key FROM trading.agent_logs")
        stored_ticks = await conn.fetch("SELECT record_key FROM trading.ticks")
    finally:
        await conn.close()
    by_coid = Counter(r["client_order_id"] for r in trades)
    assert set(by_coid) == set(filled), set(by_coid) ^ set(filled)
    assert set(by_coid.values()) == {1}
    assert len(logs) >= sent[0] and len({r["record_key"] for r in logs}) == len(logs)
    keys = [r["record_key"] for r in stored_ticks]
    assert len(keys) == len(set(keys)) and ticks <= set(keys), ticks - set(keys)
    # Ticks published before the observer was added are stored too; nothing else is. Per
    # symbol (a symbol's tick times only grow; across symbols they interleave: a quiet
    # symbol's first tick seen can be older than another's last tick not seen).
    first: dict[str, int] = {}
    for k in ticks:
        series, at = k.rsplit(":", 1)
        first[series] = min(first.get(series, int(at)), int(at))
    unseen = set(keys) - ticks
    late = {k for k in unseen if int(k.rsplit(":", 1)[1]) >= first.get(k.rsplit(":", 1)[0], 2**63)}
    assert late == set()
