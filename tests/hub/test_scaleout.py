"""Two real hub processes on one real Redis: shared channels, one poller per bridge,
failover, cross-instance trading guarantees and emergency stop."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from hub.bridge.sim_server import SimServer, start_sim
from hub.config import SymbolSpec
from tests.hubkit import free_port, kill_process, stop_process
from tests.rediskit import redis_prefix
from tests.timing import eventually, units

TOKEN = "scaleout-admin-token"
LEASE_TTL = 3.0  # the supervisor's lease TTL (hub/app.py): a dead poller's agents move in 2 x TTL
HEADERS = {"Authorization": f"Bearer {TOKEN}"}
SPECS = {
    "XAUUSD": SymbolSpec(contract_size=100, digits=2),
    "EURUSD": SymbolSpec(contract_size=100000, digits=5),
}


def write_config(path: Path, bridges: list[str]) -> None:
    path.write_text(
        f"""
polling: {{tick_interval: 0.1, account_interval: 0.2, timeout: 0.5,
          backoff_initial: 0.1, backoff_max: 0.5}}
symbols:
  XAUUSD: {{contract_size: 100, digits: 2}}
  EURUSD: {{contract_size: 100000, digits: 5}}
agents:
  agent_1: {{name: Atlas, strategy: amd, bridge: "{bridges[0]}", symbols: [XAUUSD],
            initial_balance: 200,
            risk: {{max_risk_per_trade: 1%, max_daily_loss: 5%, max_positions: 1}}}}
  agent_2: {{name: Orion, strategy: ict, bridge: "{bridges[1]}", symbols: [EURUSD],
            initial_balance: 500,
            risk: {{max_risk_per_trade: 1.5%, max_daily_loss: 5%, max_positions: 2}}}}
"""
    )


class HubProcess:
    def __init__(self, name: str, config: Path, redis_url: str, prefix: str, tmp: Path) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws = f"ws://127.0.0.1:{self.port}/ws?token={TOKEN}&batch=1"
        data = tmp / name
        data.mkdir()
        env = {
            **os.environ,
            "REDIS_URL": redis_url,
            "HUB_REDIS_PREFIX": prefix,
            "HUB_ADMIN_TOKEN": TOKEN,
            "HUB_DATA_DIR": str(data),
            "HUB_INSTANCE_ID": name,
        }
        self.log = open(tmp / f"{name}.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hub.cli",
                "run",
                "--config",
                str(config),
                "--port",
                str(self.port),
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    async def wait_up(self, http: httpx.AsyncClient) -> None:
        async def answers() -> bool:
            try:
                up = (await http.get(f"{self.url}/health")).status_code == 200
            except httpx.TransportError:
                up = False  # not listening yet
            assert up or self.proc.poll() is None, f"{self.name} exited"
            return up

        await eventually(
            answers, timeout=units(200), interval=units(0.5), message=f"{self.name} to start"
        )

    async def status(self, http: httpx.AsyncClient) -> dict[str, Any]:
        body: dict[str, Any] = (await http.get(f"{self.url}/api/status")).json()
        return body

    async def kill(self) -> None:
        await kill_process(self.proc)

    async def stop(self) -> None:
        try:
            await stop_process(self.proc, self.name, 10)
        finally:
            self.log.close()


@pytest.fixture
def tmp(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path


@asynccontextmanager
async def cluster(
    redis_url: str, tmp: Path
) -> AsyncIterator[tuple[list[HubProcess], list[SimServer], httpx.AsyncClient]]:
    sims = [
        await start_sim("127.0.0.1", 0, symbols=SPECS, balance=b, seed=i)
        for i, b in ((1, 200.0), (2, 500.0))
    ]
    config = tmp / "agents.yml"
    write_config(config, [s.url for s in sims])
    prefix = redis_prefix()
    hubs = [HubProcess(n, config, redis_url, prefix, tmp) for n in ("a", "b")]
    http = httpx.AsyncClient(timeout=units(50), headers=HEADERS)
    try:
        for h in hubs:
            await h.wait_up(http)
        yield hubs, sims, http
    finally:
        for h in hubs:
            await h.stop()
        await http.aclose()
        for s in sims:
            await s.close()


async def polled_by(hubs: list[HubProcess], http: httpx.AsyncClient) -> dict[str, str]:
    """agent -> instance polling it; fails if two instances poll one agent."""
    owners: dict[str, str] = {}
    for h in hubs:
        if h.proc.poll() is not None:
            continue
        for agent in (await h.status(http))["polling"]:
            assert agent not in owners, f"{agent} polled by {owners[agent]} and {h.name}"
            owners[agent] = h.name
    return owners


async def wait_all_polled(hubs: list[HubProcess], http: httpx.AsyncClient) -> dict[str, str]:
    async def owners() -> dict[str, str] | None:
        polled = await polled_by(hubs, http)
        return polled if set(polled) == {"agent_1", "agent_2"} else None

    return await eventually(
        owners, timeout=units(100), interval=units(0.5), message="every agent to be polled"
    )


async def test_each_bridge_polled_once_and_channels_shared(redis_url: str, tmp: Path) -> None:
    async with cluster(redis_url, tmp) as (hubs, _sims, http):
        await wait_all_polled(hubs, http)
        for _ in range(5):  # stays exclusive over several renewals
            await polled_by(hubs, http)
            await asyncio.sleep(0.2)
        for h in hubs:  # every instance mirrors every agent, whichever polls it
            await _wait_online(h, http, "agent_1", "agent_2")
        seqs: dict[str, list[int]] = {}
        async with websockets.connect(hubs[1].ws) as ws:
            await ws.send(json.dumps({"op": "subscribe", "id": 1, "channels": ["agent:*:ticks"]}))
            end = asyncio.get_running_loop().time() + 1.5
            while (left := end - asyncio.get_running_loop().time()) > 0:
                try:
                    frame = await asyncio.wait_for(ws.recv(), left)
                except TimeoutError:
                    break
                for line in frame.split("\n"):
                    m = json.loads(line)
                    if m["type"] in ("snapshot", "event"):
                        seqs.setdefault(m["ch"], []).append(m["seq"])
        assert set(seqs) == {"agent:agent_1:ticks", "agent:agent_2:ticks"}
        for ch, got in seqs.items():
            live = got[got.index(max(got[:1])) :]
            assert live == list(range(live[0], live[0] + len(live))), f"gap on {ch}: {got}"


async def _wait_online(h: HubProcess, http: httpx.AsyncClient, *agents: str) -> None:
    async def online() -> bool:
        body = (await http.get(f"{h.url}/api/agents")).json()
        return all(a["status"]["status"] == "online" for a in body if a["agent_id"] in agents)

    await eventually(
        online, timeout=units(100), interval=units(0.5), message=f"{h.name}: {agents} online"
    )


async def test_kill_9_of_the_poller_hands_over_within_two_ttls(redis_url: str, tmp: Path) -> None:
    async with cluster(redis_url, tmp) as (hubs, _sims, http):
        owners = await wait_all_polled(hubs, http)
        victim = next(h for h in hubs if h.name == owners["agent_1"])
        survivor = next(h for h in hubs if h is not victim)
        await victim.kill()

        async def taken_over() -> bool:
            return "agent_1" in (await survivor.status(http))["polling"]

        await eventually(
            taken_over, timeout=2 * LEASE_TTL, interval=units(1), message="agent_1 taken over"
        )
        await _wait_online(survivor, http, "agent_1", "agent_2")


async def test_trades_split_across_instances_fill_once(redis_url: str, tmp: Path) -> None:
    async with cluster(redis_url, tmp) as (hubs, sims, http):
        await wait_all_polled(hubs, http)
        await http.post(
            f"{sims[0].url}/sim/price", json={"symbol": "XAUUSD", "bid": 2650.0, "ask": 2650.3}
        )
        for h in hubs:
            await _wait_price(h, http)
        body = {"symbol": "XAUUSD", "action": "buy", "lots": 0.01, "sl": 2648.5}
        results = await asyncio.gather(
            *(
                http.post(f"{hubs[i % 2].url}/api/agents/agent_1/trade", json=body)
                for i in range(20)
            )
        )
        assert sorted(r.status_code for r in results).count(200) == 1, [r.text for r in results]
        assert {r.json()["error"]["details"]["check"] for r in results if r.status_code == 422} == {
            "max_positions"
        }
        same = {**body, "client_order_id": "both-1"}
        await http.post(f"{sims[0].url}/sim/reset", json={})
        await http.post(
            f"{sims[0].url}/sim/price", json={"symbol": "XAUUSD", "bid": 2650.0, "ask": 2650.3}
        )
        for h in hubs:
            await _wait_flat(h, http)
        one, two = await asyncio.gather(
            http.post(f"{hubs[0].url}/api/agents/agent_1/trade", json=same),
            http.post(f"{hubs[1].url}/api/agents/agent_1/trade", json=same),
        )
        assert one.status_code == two.status_code == 200 and one.json() == two.json()
        state = (await http.get(f"{sims[0].url}/sim/state")).json()
        assert state["orders_filled"] == 1


async def _wait_price(h: HubProcess, http: httpx.AsyncClient) -> None:
    async def pinned() -> bool:
        tick = (await http.get(f"{h.url}/api/agents/agent_1/tick/XAUUSD")).json()
        return bool(tick.get("ask") == 2650.3)

    await eventually(
        pinned, timeout=units(100), interval=units(0.5), message=f"{h.name} to see the price"
    )


async def _wait_flat(h: HubProcess, http: httpx.AsyncClient) -> None:
    async def flat() -> bool:
        positions = (await http.get(f"{h.url}/api/agents/agent_1/positions")).json()
        return bool(positions["positions"] == [])

    await eventually(
        flat, timeout=units(100), interval=units(0.5), message=f"{h.name} to show no positions"
    )
    await _wait_price(h, http)


async def test_emergency_stop_through_a_rejects_trades_through_b(redis_url: str, tmp: Path) -> None:
    async with cluster(redis_url, tmp) as (hubs, _sims, http):
        await wait_all_polled(hubs, http)
        await _wait_online(hubs[1], http, "agent_1")
        r = await http.post(f"{hubs[0].url}/api/emergency/stop-all", json={"reason": "test"})
        assert r.status_code == 200
        body = {"symbol": "XAUUSD", "action": "buy", "lots": 0.01, "sl": 1.0}
        r = await http.post(f"{hubs[1].url}/api/agents/agent_1/trade", json=body)
        assert r.status_code == 423 and r.json()["error"]["code"] == "emergency_stop"
        assert (await http.post(f"{hubs[1].url}/api/emergency/resume")).status_code == 200
        r = await http.post(f"{hubs[0].url}/api/agents/agent_1/trade", json=body)
        assert r.status_code != 423
