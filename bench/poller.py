"""Poller scale: many simulated bridges (one process, many ports) polled by one hub.

The simulators run in one process on the client core, the hub on the server core,
polling every bridge at 4 Hz for ticks and 1 Hz for account and positions. A
subscriber to ``agent:*:ticks`` measures, per agent and symbol:

- **age at publish**: the publish time ``ts`` of a tick minus the time the
  simulator's price changed (``data.time``; the simulator walks every 100 ms).

and, sampling ``GET /api/status`` every ~200 ms at random phase, **staleness**: how
old each agent's last successful poll is (now minus ``loop.last_success``). A poller
that keeps its interval stays under one interval; late or failed polls push it up.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Any

import aiohttp
import msgspec
from websockets.asyncio.client import connect

from bench._stats import summarize
from bench.configs import poller_config
from bench.rig import Rig, Scale, wait_until
from bench.serve import TOKEN
from hub.agents import now_ms

__all__ = ["PollerResult", "run_poller"]

TICK_INTERVAL = 0.25
ACCOUNT_INTERVAL = 1.0
SYMBOLS = ("XAUUSD",)


class PollerResult(msgspec.Struct, frozen=True, kw_only=True):
    bridges: int
    symbols_per_bridge: int
    tick_interval_ms: float
    seconds: float
    hub_cpu_pct: float
    polls_per_s: float
    expected_polls_per_s: float
    poll_errors: int
    ticks: int
    staleness_ms: dict[str, float | int | None]  # samples, p50, p99, max
    age_ms: dict[str, float | int | None]
    staleness_p99_intervals: float | None


async def _status(http: aiohttp.ClientSession, port: int) -> dict[str, Any]:
    async with http.get(f"http://127.0.0.1:{port}/api/status") as resp:
        resp.raise_for_status()
        body: dict[str, Any] = await resp.json()
        return body


def _loops(status: dict[str, Any]) -> tuple[int, int, int]:
    """(polls, errors, agents online) summed over agents."""
    agents = status["agents"].values()
    return (
        sum(int(a["loop"]["polls"]) for a in agents),
        sum(int(a["loop"]["errors"]) for a in agents),
        sum(a["status"]["status"] == "online" for a in agents),
    )


async def run_poller(rig: Rig, scale: Scale) -> PollerResult:
    farm = await rig.process(
        "bench.simfarm",
        "--bridges",
        str(scale.bridges),
        "--symbols",
        ",".join(SYMBOLS),
        name="simfarm",
        core=rig.client_core,
    )
    try:
        ports = [int(p) for p in farm.ready["ports"]]
        config = poller_config(
            ports, symbols=SYMBOLS, tick_interval=TICK_INTERVAL, account_interval=ACCOUNT_INTERVAL
        )
        server = await rig.server("hub", config, name="hub-poller")
        try:
            return await _measure(server.ready["port"], scale, lambda: server.cpu())
        finally:
            await rig.stop(server)
    finally:
        await rig.stop(farm)


async def _measure(port: int, scale: Scale, cpu: Any) -> PollerResult:
    staleness: list[float] = []
    ages: list[float] = []
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as http:

        async def all_online() -> bool:
            return _loops(await _status(http, port))[2] == scale.bridges

        await wait_until(all_online, f"{scale.bridges} agents online", 60, 0.2)
        url = f"ws://127.0.0.1:{port}/ws?token={TOKEN}"
        async with connect(url, compression=None, open_timeout=10, max_size=None) as ws:
            await ws.send(json.dumps({"op": "subscribe", "id": "p", "channels": ["agent:*:ticks"]}))
            await asyncio.sleep(scale.settle)  # past the snapshots
            polls0, errors0, _ = _loops(await _status(http, port))
            cpu0, t0 = cpu(), time.monotonic()

            async def collect() -> None:
                async for raw in ws:
                    msg = json.loads(raw)
                    if msg.get("type") != "event":
                        continue
                    ages.append(float(msg["ts"]) - float(msg["data"]["time"]))

            reader = asyncio.create_task(collect())
            while time.monotonic() - t0 < scale.poller_seconds:
                await asyncio.sleep(random.uniform(0.1, 0.3))
                status = await _status(http, port)
                now = now_ms()
                staleness += [
                    now - int(a["loop"]["last_success"] or 0) for a in status["agents"].values()
                ]
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            elapsed = time.monotonic() - t0
            cpu_pct = 100 * (cpu() - cpu0) / elapsed
            polls1, errors1, _ = _loops(await _status(http, port))
    stats = summarize(staleness)
    p99 = stats["p99"]
    return PollerResult(
        bridges=scale.bridges,
        symbols_per_bridge=len(SYMBOLS),
        tick_interval_ms=TICK_INTERVAL * 1000,
        seconds=round(elapsed, 2),
        hub_cpu_pct=round(cpu_pct, 1),
        polls_per_s=round((polls1 - polls0) / elapsed, 1),
        expected_polls_per_s=round(scale.bridges / TICK_INTERVAL, 1),
        poll_errors=errors1 - errors0,
        ticks=len(ages),
        staleness_ms=stats,
        age_ms=summarize(ages),
        staleness_p99_intervals=None if p99 is None else round(p99 / (TICK_INTERVAL * 1000), 2),
    )
