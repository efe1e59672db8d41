"""BridgeClient against a real simulated EA Bridge: decoding and error mapping per fault mode,
in the dialect of each built-in bridge profile (the simulator speaks it too)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from hub.bridge.client import (
    BridgeClient,
    BridgeNotSupported,
    BridgeProtocolError,
    BridgeRejected,
    BridgeServerError,
    BridgeTimeout,
    BridgeUnavailable,
)
from hub.bridge.models import CloseOrder, ModifyOrder, TradeOrder
from hub.bridge.profile import builtin_names, load_profile
from hub.bridge.sim_server import SimServer, start_sim
from hub.config import SymbolSpec
from tests.timing import units

SPECS = {
    "XAUUSD": SymbolSpec(contract_size=100, digits=2),
    "EURUSD": SymbolSpec(contract_size=100000, digits=5),
}


@pytest.fixture(params=builtin_names())
def profile(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
async def sim(profile: str) -> AsyncIterator[SimServer]:
    server = await start_sim(
        "127.0.0.1", 0, symbols=SPECS, balance=1000.0, seed=7, profile=load_profile(profile)
    )
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
async def client(sim: SimServer, profile: str) -> AsyncIterator[BridgeClient]:
    c = BridgeClient(
        sim.url, timeout=units(5), trade_timeout=units(5), profile=load_profile(profile)
    )
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


async def test_trade_close_round_trip(client: BridgeClient, profile: str) -> None:
    pos = await client.trade(TradeOrder(symbol="EURUSD", action="buy", lots=0.1, comment="t1"))
    assert pos.ticket >= 1001 and pos.comment == "t1"
    assert [p.ticket for p in await client.positions()] == [pos.ticket]
    if profile == "minimal":  # no close at that bridge: refused before anything is sent
        with pytest.raises(BridgeNotSupported) as info:
            await client.close_position(CloseOrder(ticket=pos.ticket))
        assert info.value.code == "not_supported"
        assert [p.ticket for p in await client.positions()] == [pos.ticket]
        return
    closed = await client.close_position(CloseOrder(ticket=pos.ticket))
    assert closed.ticket == pos.ticket
    assert [t.ticket for t in await client.history()] == [pos.ticket]


async def test_partial_close_and_modify_follow_the_bridge(
    client: BridgeClient, profile: str
) -> None:
    pos = await client.trade(TradeOrder(symbol="XAUUSD", action="sell", lots=0.03, tp=2000.0))
    if profile == "minimal":
        with pytest.raises(BridgeNotSupported):
            await client.modify(ModifyOrder(ticket=pos.ticket, sl=9000.0))
        return
    modified = await client.modify(ModifyOrder(ticket=pos.ticket, sl=9000.0))
    assert (modified.sl, modified.tp) == (9000.0, 2000.0)  # the tp not named is kept
    part = await client.close_position(CloseOrder(ticket=pos.ticket, lots=0.01))
    assert part.lots == 0.01 and part.close_price > 0
    assert [p.lots for p in await client.positions()] == [0.02]


async def test_unknown_symbol_is_rejected_not_offline(client: BridgeClient) -> None:
    with pytest.raises(BridgeRejected):
        await client.tick("NOPE")


async def test_a_refused_order_carries_its_mt4_error_code(client: BridgeClient) -> None:
    with pytest.raises(BridgeRejected) as info:
        await client.trade(TradeOrder(symbol="XAUUSD", action="buy", lots=0.01, sl=9999.0))
    assert info.value.mt4_code == 130
    assert info.value.details == {"mt4_error": {"code": 130, "meaning": "invalid stops"}}


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


async def test_slow_mode_times_out(sim: SimServer, profile: str) -> None:
    await fault(sim, "slow", delay_ms=int(units(10) * 1000))
    c = BridgeClient(sim.url, timeout=units(2), profile=load_profile(profile))
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


async def reject(sim: SimServer, code: int, times: int) -> None:
    body = {"mode": "reject", "code": code, "times": times}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{sim.url}/sim/fault", json=body) as resp,
    ):
        assert resp.status == 200, await resp.text()


async def orders_received(sim: SimServer) -> int:
    async with aiohttp.ClientSession() as http, http.get(f"{sim.url}/sim/state") as resp:
        state = await resp.json()
        return int(state["orders_received"])


@pytest.mark.parametrize("code", [136, 146])
async def test_off_quotes_and_busy_context_are_sent_once_more(
    sim: SimServer, client: BridgeClient, code: int
) -> None:
    await reject(sim, code, times=1)
    pos = await client.trade(TradeOrder(symbol="XAUUSD", action="buy", lots=0.01))
    assert pos.ticket >= 1001
    assert await orders_received(sim) == 2


async def test_a_second_busy_answer_is_the_answer(sim: SimServer, client: BridgeClient) -> None:
    await reject(sim, 146, times=2)
    with pytest.raises(BridgeRejected) as info:
        await client.trade(TradeOrder(symbol="XAUUSD", action="buy", lots=0.01))
    assert info.value.details == {"mt4_error": {"code": 146, "meaning": "trade context is busy"}}
    assert await orders_received(sim) == 2
    assert await client.positions() == []


@pytest.mark.parametrize("code", [138, 130, 134, 4])
async def test_requotes_and_other_codes_are_never_retried(
    sim: SimServer, client: BridgeClient, code: int
) -> None:
    await reject(sim, code, times=1)
    with pytest.raises(BridgeRejected) as info:
        await client.trade(TradeOrder(symbol="XAUUSD", action="buy", lots=0.01))
    assert info.value.mt4_code == code
    assert await orders_received(sim) == 1


def test_what_a_client_remembers_per_row_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/reliability.md: tickets' magic numbers (MAGIC_MAX) stay within their bound
    however many rows a bridge reports."""
    from hub.bridge import client as client_module
    from hub.bridge.client import BridgeClient

    monkeypatch.setattr(client_module, "MAGIC_MAX", 40)
    bridge = BridgeClient("http://127.0.0.1:1", profile=load_profile("wrapped"))
    row = {"ticket": 1, "symbol": "XAUUSD", "type": "ORDER_TYPE_BUY", "volume": 0.01,
           "openPrice": 2650.0, "closePrice": 2651.0, "profit": 1.0, "openTime": 1764500000,
           "closeTime": 1764500100, "comment": "", "magic": 7}  # fmt: skip
    for start in range(0, 300, 30):
        rows = [dict(row, ticket=t, magic=t + 1) for t in range(start, start + 30)]
        decoded = bridge.dialect.history({"success": True, "data": rows})
        assert [t.ticket for t, _ in decoded] == list(range(start, start + 30))
        bridge._remember((t.ticket, magic) for t, magic in decoded)
        assert len(bridge._magic) <= 40
    assert bridge._magic[299] == 300  # the newest are kept


def test_a_tag_search_decodes_only_the_rows_with_that_tag() -> None:
    """A day of history is searched for one order's tag before a trade with a
    client_order_id: rows of other orders (even unreadable ones) are never decoded."""
    from hub.bridge.dialect import Dialect

    dialect = Dialect(load_profile())
    row = {"ticket": 1, "symbol": "XAUUSD", "action": "buy", "lots": 0.01,
           "open_price": 2650.0, "close_price": 2651.0, "profit": 1.0,
           "open_time": 1764500000000, "close_time": 1764500100000, "comment": ""}  # fmt: skip
    rows = [dict(row, ticket=t, comment=f"h{t:010d} x") for t in range(1000)]
    rows[5] = {"ticket": "not a number", "comment": "hzzzzzzzzzz"}
    found = dialect.tagged_history(rows, "comment", lambda c: c.startswith("h0000000777"))
    assert [t.ticket for t in found] == [777]


async def test_a_tag_search_reads_the_day_once_then_only_what_closed_since(
    client: BridgeClient, sim: SimServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before each trade with a client_order_id the hub searches the bridge's last day for
    its tag: the whole day once, then only from the newest close seen (less a margin), and
    the whole day again only when the tag may be there (issue 19: per-trade work and the
    size of each answer stayed flat as the day's trades grew)."""
    from channels.clock import now_ms
    from hub.bridge.client import HISTORY_WINDOW_MS
    from hub.bridge.tag_index import MARGIN_MS

    reads: list[int] = []
    call = client._call

    async def spy(name: str, values: dict[str, int], **kw: float | None) -> object:
        if name == "history":
            reads.append(values["since"])
        return await call(name, values, **kw)

    monkeypatch.setattr(client, "_call", spy)

    async def trade_and_close(tag: str) -> int:
        comment = client.order_comment(tag, "soak")  # the tag goes first, or into magic
        order = TradeOrder(symbol="XAUUSD", action="buy", lots=0.01, comment=comment)
        position = await client.trade(order, tag=tag)
        sim.model.close(position.ticket)
        return position.ticket

    first = await trade_and_close("h0000000001")
    assert [t.ticket for t in await client.tagged_history("h0000000001")] == [first]
    assert len(reads) == 1 and reads[0] <= now_ms() - HISTORY_WINDOW_MS + 1000  # the whole day
    newest = max(t.close_time for t in await client.history())
    reads.clear()
    assert await client.tagged_history("h0000000002") == []
    assert reads == [newest - MARGIN_MS]  # only what closed since, one read
    second = await trade_and_close("h0000000002")
    reads.clear()
    assert [t.ticket for t in await client.tagged_history("h0000000002")] == [second]
    assert len(reads) == 2 and reads[1] < reads[0]  # the index said maybe: the day, exactly
    reads.clear()
    assert await client.tagged_history("h0000000003") == []
    assert len(reads) == 1
