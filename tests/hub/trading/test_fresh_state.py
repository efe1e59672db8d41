"""Trades are checked against fresh quotes and all in-flight risk; dry runs send nothing."""

from __future__ import annotations

import asyncio

import pytest

from hub.errors import HubError
from hub.trading.models import TradeRequest
from tests.hub.trading.kit import trading_kit
from tests.hubkit import hub_config


def buy(symbol: str, lots: float, sl: float, dry_run: bool = False) -> TradeRequest:
    return TradeRequest(symbol=symbol, action="buy", lots=lots, sl=sl, dry_run=dry_run)


async def test_an_old_quote_is_read_again_before_the_check() -> None:
    async with trading_kit() as kit:
        kit.market("agent_1").pin("XAUUSD", 2650.0, 2650.3)
        await kit.poll("agent_1")
        kit.market("agent_1").pin("XAUUSD", 2660.0, 2660.3)  # the hub's copy is now stale
        kit.registry.agents["agent_1"].tick_read_at["XAUUSD"] -= 60.0
        with pytest.raises(HubError) as refused:
            await kit.trading.open("agent_1", buy("XAUUSD", 0.01, 2648.5), by="t")
        assert refused.value.details is not None
        assert refused.value.details["check"] == "max_risk_per_trade"
        assert refused.value.details["value"] == pytest.approx(11.8)
        assert kit.market("agent_1").orders_filled == 0


async def test_no_fresh_quote_is_stale_quote_and_nothing_is_sent() -> None:
    async with trading_kit() as kit:
        kit.registry.agents["agent_1"].tick_read_at["XAUUSD"] -= 60.0
        kit.bridge("agent_1").ticks_down = True
        with pytest.raises(HubError) as stale:
            await kit.trading.open("agent_1", buy("XAUUSD", 0.01, 2640.0), by="t")
        assert (stale.value.code, stale.value.status) == ("stale_quote", 503)
        assert kit.bridge("agent_1").sent == []


EXPOSURE = "global_risk: {max_total_exposure: 1%, correlation_limit: 1.0}"  # 1 % of 1700 = 17


async def test_concurrent_trades_on_two_agents_cannot_jointly_cross_the_total_exposure() -> None:
    async with trading_kit(hub_config(EXPOSURE)) as kit:
        for agent_id in ("agent_1", "agent_3"):
            kit.market(agent_id).pin("XAUUSD", 2650.0, 2650.3)
            kit.bridge(agent_id).trade_delay = 0.05  # both orders in flight at once
            await kit.poll(agent_id)
        results = await asyncio.gather(
            kit.trading.open("agent_3", buy("XAUUSD", 0.1, 2648.7), by="t"),  # risks 16.00
            kit.trading.open("agent_1", buy("XAUUSD", 0.01, 2648.5), by="t"),  # risks 1.80
            return_exceptions=True,
        )
        refused = [r for r in results if isinstance(r, HubError)]
        assert len(refused) == 1, results
        assert refused[0].details is not None
        assert refused[0].details["check"] == "max_total_exposure"
        filled = kit.market("agent_1").orders_filled + kit.market("agent_3").orders_filled
        assert filled == 1


async def test_a_dry_run_answers_like_the_trade_and_sends_nothing() -> None:
    async with trading_kit() as kit:
        kit.market("agent_1").pin("XAUUSD", 2650.0, 2650.3)
        await kit.poll("agent_1")
        with pytest.raises(HubError) as refused:
            await kit.trading.open("agent_1", buy("XAUUSD", 0.01, 2640.0, True), by="t")
        assert refused.value.details == {
            "check": "max_risk_per_trade",
            "limit": 2.0,
            "value": 10.3,
        }
        ok = await kit.trading.open("agent_1", buy("XAUUSD", 0.01, 2648.5, True), by="t")
        assert ok["dry_run"] is True and ok["risk"]["risk"] == pytest.approx(1.8)
        assert kit.bridge("agent_1").sent == []
        assert await kit.orders("agent_1") == []
        assert await kit.trading.coord.reservations() == []


async def test_slippage_past_the_limit_is_a_risk_breach_and_the_sl_is_tightened() -> None:
    async with trading_kit() as kit:
        market = kit.market("agent_1")
        market.pin("XAUUSD", 2650.0, 2650.3)
        await kit.poll("agent_1")
        kit.bridge("agent_1").trade_delay = 0.05

        async def jump() -> None:  # the market moves while the order travels
            await asyncio.sleep(0.01)
            market.pin("XAUUSD", 2660.0, 2660.3)

        mover = asyncio.create_task(jump())
        filled = await kit.trading.open("agent_1", buy("XAUUSD", 0.01, 2648.5), by="t")
        await mover
        # Checked at 2650.30 (risk 1.80), filled at 2660.30: 11.80 against a 2.00 limit.
        breach = filled["risk"]["risk_breach"]
        assert breach["action"] == "tighten" and breach["limit"] == pytest.approx(2.0)
        assert breach["risk"] == pytest.approx(11.8)
        (position,) = market.positions()
        assert position.sl == pytest.approx(2658.3)  # 0.01 x 100 x (2660.30 - 2658.30) = 2.00
        events = [e["event"] for e in await kit.orders("agent_1")]
        assert events == ["accepted", "filled", "risk_breach"]


async def test_a_fill_off_a_frozen_feed_that_cannot_be_tightened_is_closed() -> None:
    async with trading_kit() as kit:
        market = kit.market("agent_1")
        market.pin("XAUUSD", 2650.0, 2650.3)
        await kit.poll("agent_1")
        kit.bridge("agent_1").frozen = kit.registry.agents["agent_1"].ticks["XAUUSD"]
        market.pin("XAUUSD", 2660.0, 2660.3)  # the market moved; the bridge's feed did not
        filled = await kit.trading.open("agent_1", buy("XAUUSD", 0.01, 2648.5), by="t")
        assert filled["risk"]["risk_breach"]["action"] == "close"
        assert market.positions() == []
        system = await kit.broker.history("system", 0)
        assert any(b'"risk_breach"' in bytes(p.data) for p in system or [])


async def test_slippage_within_the_per_trade_tolerance_can_still_breach_the_total_exposure() -> (
    None
):
    """1 % of 1700 = 17.00: agent_1 holds 1.80, agent_3's 15.00 fits (16.80). The market
    moves 0.50 while the order travels (the hub reads agent_1's bridge meanwhile): the fill
    risks 20.00 (within 20.00 x 1.1 per trade) and agent_1's position 2.00 (at its own
    bridge's quote), 22.00 > 18.70: tightened to the 15.00 left."""
    async with trading_kit(hub_config(EXPOSURE)) as kit:
        for agent_id in ("agent_1", "agent_3"):
            kit.market(agent_id).pin("XAUUSD", 2650.0, 2650.3)
            await kit.poll(agent_id)
        await kit.trading.open("agent_1", buy("XAUUSD", 0.01, 2648.5), by="t")
        kit.bridge("agent_3").trade_delay = 0.05

        async def jump() -> None:
            await asyncio.sleep(0.01)
            for agent_id in ("agent_1", "agent_3"):
                kit.market(agent_id).pin("XAUUSD", 2650.5, 2650.8)
            await kit.poll("agent_1")

        mover = asyncio.create_task(jump())
        filled = await kit.trading.open("agent_3", buy("XAUUSD", 0.1, 2648.8), by="t")
        await mover
        breach = filled["risk"]["risk_breach"]
        assert (breach["check"], breach["action"]) == ("max_total_exposure", "tighten")
        assert breach["risk"] == pytest.approx(20.0)
        (position,) = kit.market("agent_3").positions()
        assert position.sl == pytest.approx(2649.3)
