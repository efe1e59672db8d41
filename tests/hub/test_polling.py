"""A polling loop stops when asked, even when its cancel lands where a library loses it:
``asyncio.gather`` racing a bridge timeout, or a redis-py command in flight."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from channels import cancellation
from hub.app import Hub
from hub.bridge.sim_server import start_sim
from hub.config import SymbolSpec, parse_config
from tests.rediskit import redis_prefix

TIMEOUT = 0.02  # the bridge call timeout: the race is a cancel landing as a call times out


def one_agent_hub(bridge: str, tmp_path: Path, env: dict[str, str] | None = None) -> Hub:
    config = parse_config(
        f"""
polling: {{tick_interval: 0.001, account_interval: 0.001, timeout: {TIMEOUT},
          backoff_initial: 0.001, backoff_max: 0.002}}
symbols:
  XAUUSD: {{contract_size: 100, digits: 2}}
  EURUSD: {{contract_size: 100000, digits: 5}}
agents:
  agent_1: {{name: Atlas, strategy: amd, bridge: "{bridge}", symbols: [XAUUSD, EURUSD],
            initial_balance: 200,
            risk: {{max_risk_per_trade: 1%, max_daily_loss: 5%, max_positions: 1}}}}
""",
        "test-config",
    )
    return Hub(config, {"HUB_DATA_DIR": str(tmp_path), **(env or {})})


async def cancel_repeatedly(hub: Hub, attempts: int, window: tuple[float, float]) -> None:
    """Start the poller, cancel it after a random delay in ``window``; it must stop."""
    poller = hub.pollers["agent_1"]
    rng = random.Random(7)
    for attempt in range(attempts):
        task = asyncio.create_task(poller.run())
        await asyncio.sleep(rng.uniform(*window))
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=1.0)
        assert done, f"attempt {attempt}: the poller lost its cancel and kept polling"
        assert task.cancelled()
        assert poller.agent.stats.running is False


@pytest.fixture
def silent_bridge() -> Iterator[str]:
    """A bridge the kernel accepts connections for but that never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


async def test_a_cancel_racing_bridge_timeouts_stops_the_poller(
    silent_bridge: str, tmp_path: Path
) -> None:
    hub = one_agent_hub(silent_bridge, tmp_path)
    try:
        await cancel_repeatedly(hub, 250, (TIMEOUT * 0.8, TIMEOUT * 1.3))
    finally:
        await hub.registry.close()


async def test_a_cancel_landing_in_a_redis_publish_stops_the_poller(
    redis_url: str, tmp_path: Path
) -> None:
    specs = {"XAUUSD": SymbolSpec(contract_size=100, digits=2),
             "EURUSD": SymbolSpec(contract_size=100000, digits=5)}  # fmt: skip
    async with await start_sim("127.0.0.1", 0, symbols=specs, balance=200.0) as sim:
        hub = one_agent_hub(sim.url, tmp_path, {"REDIS_URL": redis_url,
                                                "HUB_REDIS_PREFIX": redis_prefix()})  # fmt: skip
        await hub.broker.connect()
        try:
            await cancel_repeatedly(hub, 150, (0.0, 0.01))
        finally:
            await hub.broker.close()
            await hub.coordination.close()  # the poller records the day's start through it
            await hub.registry.close()


async def test_sleep_honours_a_cancel_that_an_await_swallowed() -> None:
    swallowed = asyncio.Event()

    async def loop() -> None:
        while True:
            try:
                await asyncio.sleep(10)  # stands for a library call that loses the cancel
            except asyncio.CancelledError:
                swallowed.set()
            await cancellation.sleep(0)

    task = asyncio.create_task(loop())
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.wait_for(swallowed.wait(), 1)
    done, _ = await asyncio.wait([task], timeout=1)
    assert done and task.cancelled()
