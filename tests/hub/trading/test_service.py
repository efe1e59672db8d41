"""The trading service in process: real services, an in-memory market, no sockets."""

from __future__ import annotations

import asyncio

import pytest

from hub.errors import HubError
from hub.trading.models import CloseRequest, ModifyRequest, TradeRequest
from tests.hub.trading.kit import trading_kit
from tests.hubkit import hub_config


def buy(sl: float, lots: float = 0.01, coid: str | None = None) -> TradeRequest:
    return TradeRequest(symbol="XAUUSD", action="buy", lots=lots, sl=sl, client_order_id=coid)


async def pinned(kit, agent_id: str = "agent_1", bid: float = 2650.0, ask: float = 2650.3) -> None:  # type: ignore[no-untyped-def]
    kit.market(agent_id).pin("XAUUSD", bid, ask)
    await kit.poll(agent_id)


async def test_the_worked_example_is_refused_then_accepted() -> None:
    async with trading_kit() as kit:
        await pinned(kit)
        with pytest.raises(HubError) as refused:
            await kit.trading.open("agent_1", buy(sl=2640.0), by="t")
        assert refused.value.code == "risk_rejected"
        assert refused.value.details == {"check": "max_risk_per_trade", "limit": 2.0, "value": 10.3}
        filled = await kit.trading.open("agent_1", buy(sl=2648.5), by="t")
        assert filled["open_price"] == 2650.3 and filled["risk"]["risk"] == pytest.approx(1.8)
        assert [p.ticket for p in kit.market("agent_1").positions()] == [filled["ticket"]]
        events = [e["event"] for e in await kit.orders("agent_1")]
        assert events == ["rejected", "accepted", "filled"]


async def test_concurrent_trades_on_one_agent_fill_once_under_max_positions() -> None:
    async with trading_kit() as kit:
        await pinned(kit)
        results = await asyncio.gather(
            *(kit.trading.open("agent_1", buy(sl=2648.5), by="t") for _ in range(10)),
            return_exceptions=True,
        )
        filled = [r for r in results if isinstance(r, dict)]
        refused = [r for r in results if isinstance(r, HubError)]
        assert len(filled) == 1 and len(refused) == 9
        assert {r.details["check"] for r in refused if r.details} == {"max_positions"}
        assert kit.market("agent_1").orders_filled == 1


async def test_a_repeated_client_order_id_returns_the_first_result_without_trading_again() -> None:
    async with trading_kit() as kit:
        await pinned(kit)
        first = await kit.trading.open("agent_1", buy(sl=2648.5, coid="ml-1"), by="t")
        again = await kit.trading.open("agent_1", buy(sl=2648.5, coid="ml-1"), by="t")
        assert again == first and kit.market("agent_1").orders_filled == 1
        with pytest.raises(HubError) as dup:
            await kit.trading.open("agent_1", buy(sl=2648.0, coid="ml-1"), by="t")
        assert dup.value.code == "duplicate"


async def test_a_lost_fill_answer_is_found_by_its_tag_and_not_resent() -> None:
    async with trading_kit() as kit:
        await pinned(kit)
        kit.bridge("agent_1").lose_next = True
        filled = await kit.trading.open("agent_1", buy(sl=2648.5, coid="ml-2"), by="t")
        assert kit.bridge("agent_1").sent == ["trade"]
        assert [p.ticket for p in kit.market("agent_1").positions()] == [filled["ticket"]]


async def test_close_and_partial_close_follow_the_bridge() -> None:
    async with trading_kit() as kit:
        await pinned(kit, "agent_3")
        trade = TradeRequest(symbol="XAUUSD", action="buy", lots=0.02, sl=2649.5)
        ticket = (await kit.trading.open("agent_3", trade, by="t"))["ticket"]
        part = await kit.trading.close("agent_3", CloseRequest(ticket=ticket, lots=0.01), by="t")
        assert part["lots"] == 0.01
        assert [p.lots for p in kit.market("agent_3").positions()] == [0.01]
        assert [p.lots for p in kit.registry.agents["agent_3"].positions] == [0.01]
        await kit.trading.close("agent_3", CloseRequest(ticket=ticket), by="t")
        assert kit.market("agent_3").positions() == []


async def test_a_widening_modify_is_checked_and_a_tightening_one_passes() -> None:
    async with trading_kit() as kit:
        await pinned(kit)
        ticket = (await kit.trading.open("agent_1", buy(sl=2648.5), by="t"))["ticket"]
        with pytest.raises(HubError) as wide:
            await kit.trading.modify("agent_1", ModifyRequest(ticket=ticket, sl=2640.0), by="t")
        assert wide.value.code == "risk_rejected"
        done = await kit.trading.modify("agent_1", ModifyRequest(ticket=ticket, sl=2649.0), by="t")
        assert done["sl"] == 2649.0 and kit.market("agent_1").positions()[0].sl == 2649.0


async def test_emergency_stop_refuses_new_trades_and_closes_everything_when_asked() -> None:
    async with trading_kit() as kit:
        await pinned(kit)
        await kit.trading.open("agent_1", buy(sl=2648.5), by="t")
        result = await kit.emergency.stop(
            reason="drill", close_positions=True, by="admin", close_all=kit.trading.close_all_held
        )
        assert result["closed"]["agent_1"]["closed"] == 1
        assert kit.market("agent_1").positions() == []
        with pytest.raises(HubError) as stopped:
            await kit.trading.open("agent_1", buy(sl=2648.5), by="t")
        assert stopped.value.code == "emergency_stop"
        assert kit.risk.state_of("agent_1") == "stopped"
        await kit.emergency.resume(by="admin")
        assert kit.risk.state_of("agent_1") == "active"


async def test_a_stop_hit_found_in_history_is_announced_as_a_bridge_close() -> None:
    async with trading_kit() as kit:
        await pinned(kit)
        ticket = (await kit.trading.open("agent_1", buy(sl=2648.5), by="t"))["ticket"]
        kit.market("agent_1").pin("XAUUSD", 2648.0, 2648.3)  # through the SL
        await kit.closed.seen(kit.registry.agents["agent_1"], kit.market("agent_1").history())
        closed = [e for e in await kit.orders("agent_1") if e["event"] == "closed"]
        assert [(e["ticket"], e["command"], e["reason"]) for e in closed] == [
            (ticket, "bridge", "sl")
        ]


async def test_a_close_by_the_hub_is_not_announced_again_from_history() -> None:
    async with trading_kit() as kit:
        await pinned(kit)
        ticket = (await kit.trading.open("agent_1", buy(sl=2648.5), by="t"))["ticket"]
        await kit.trading.close("agent_1", CloseRequest(ticket=ticket), by="t")
        await kit.closed.seen(kit.registry.agents["agent_1"], kit.market("agent_1").history())
        closed = [e for e in await kit.orders("agent_1") if e["event"] == "closed"]
        assert [(e["ticket"], e["command"]) for e in closed] == [(ticket, "close")]


async def test_a_lost_close_answer_is_reported_done_only_when_the_bridge_shows_it() -> None:
    async with trading_kit(hub_config("polling: {trade_timeout: 0.5}")) as kit:
        await pinned(kit, "agent_3")
        trade = TradeRequest(symbol="XAUUSD", action="buy", lots=0.02, sl=2649.5)
        ticket = (await kit.trading.open("agent_3", trade, by="t"))["ticket"]
        await kit.trading.close("agent_3", CloseRequest(ticket=ticket, lots=0.01), by="t")
        bridge = kit.bridge("agent_3")
        bridge.hang_next = True  # the next close never reaches the market; no answer
        with pytest.raises(HubError) as unknown:
            await kit.trading.close("agent_3", CloseRequest(ticket=ticket), by="t")
        assert unknown.value.code == "bridge_timeout"
        assert unknown.value.details is not None
        assert unknown.value.details["outcome"] == "unknown"
        assert [p.lots for p in kit.market("agent_3").positions()] == [0.01]
        bridge.lose_next = True  # this time the close happens and only the answer is lost
        done = await kit.trading.close("agent_3", CloseRequest(ticket=ticket), by="t")
        assert done["lots"] == 0.01 and kit.market("agent_3").positions() == []
