"""BridgeClient against a real simulated EA Bridge: decoding and error mapping per fault mode."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from hub.bridge.client import (
    BridgeClient,
    BridgeProtocolError,
    BridgeRejected,
    BridgeServerError,
    BridgeTimeout,
    BridgeUnavailable,
)
from hub.bridge.models import CloseOrder, TradeOrder
from hub.bridge.sim_server import SimServer, start_sim
from hub.config import SymbolSpec
from tests.timing import units

SPECS = {
    "XAUUSD": SymbolSpec(contract_size=100, digits=2),
    "EURUSD": SymbolSpec(contract_size=100000, digits=5),
}


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    server = await start_sim("127.0.0.1", 0, symbols=SPECS, balance=1000.0, seed=7)
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
async def client(sim: SimServer) -> AsyncIterator[BridgeClient]:
    c = BridgeClient(sim.url, timeout=units(5), trade_timeout=units(5))
    try:
        yield c
    finally:
        await c.close()


async def fault(sim: SimServer, mode: str, delay_ms: int = 0) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{sim.url}/sim/fault", json={"mode": mode, "delay_ms": delay_ms}) as resp,
    ):
        assert resp.status == 200, await resp.text()


async def test_reads_decode_into_contract_structs(client: BridgeClient) -> None:
    account = await client.account()
    assert account.balance == 1000.0 and account.currency == "USD"
    tick = await client.tick("XAUUSD")
    assert tick.symbol == "XAUUSD" and 0 < tick.bid < tick.ask
    assert await client.positions() == []
    assert await client.history() == []


async def test_trade_close_round_trip(client: BridgeClient) -> None:
    pos = await client.trade(TradeOrder(symbol="EURUSD", action="buy", lots=0.1, comment="t1"))
    assert pos.ticket >= 1001 and pos.comment == "t1"
    assert [p.ticket for p in await client.positions()] == [pos.ticket]
    closed = await client.close_position(CloseOrder(ticket=pos.ticket))
    assert closed.ticket == pos.ticket
    assert [t.ticket for t in await client.history()] == [pos.ticket]


async def test_unknown_symbol_is_rejected_not_offline(client: BridgeClient) -> None:
    with pytest.raises(BridgeRejected):
        await client.tick("NOPE")


async def test_refused_connection_is_unavailable() -> None:
    c = BridgeClient("http://127.0.0.1:9", timeout=units(5))
    try:
        with pytest.raises(BridgeUnavailable) as info:
            await c.account()
        assert info.value.code == "agent_offline"
    finally:
        await c.close()


async def test_down_mode_is_unavailable(sim: SimServer, client: BridgeClient) -> None:
    await fault(sim, "down")
    with pytest.raises(BridgeUnavailable):
        await client.account()


async def test_slow_mode_times_out(sim: SimServer) -> None:
    await fault(sim, "slow", delay_ms=int(units(10) * 1000))
    c = BridgeClient(sim.url, timeout=units(2))
    try:
        with pytest.raises(BridgeTimeout) as info:
            await c.account()
        assert info.value.code == "bridge_timeout"
    finally:
        await c.close()


async def test_error_mode_is_server_error(sim: SimServer, client: BridgeClient) -> None:
    await fault(sim, "error")
    with pytest.raises(BridgeServerError) as info:
        await client.positions()
    assert "500" in str(info.value) and info.value.code == "bridge_error"


async def test_garbage_mode_is_protocol_error_every_time(
    sim: SimServer, client: BridgeClient
) -> None:
    await fault(sim, "garbage")
    for _ in range(6):  # the simulator rotates through several kinds of garbage
        with pytest.raises(BridgeProtocolError):
            await client.tick("XAUUSD")
        with pytest.raises(BridgeProtocolError):
            await client.account()


async def test_recovers_after_fault_cleared(sim: SimServer, client: BridgeClient) -> None:
    await fault(sim, "down")
    with pytest.raises(BridgeUnavailable):
        await client.account()
    await fault(sim, "ok")
    assert (await client.account()).balance == 1000.0
