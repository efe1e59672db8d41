"""Trades are checked against fresh quotes and all in-flight risk; dry runs send nothing."""

from __future__ import annotations

import pytest

from hub.errors import HubError
from hub.trading.models import TradeRequest
from tests.hub.trading.kit import trading_kit


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
