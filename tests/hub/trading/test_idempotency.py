"""``client_order_id`` keys are per agent and remembered across restarts."""

from __future__ import annotations

import pytest

from hub.errors import HubError
from hub.trading.models import TradeRequest
from tests.hub.trading.kit import TradingKit, trading_kit


def buy(sl: float, coid: str, comment: str = "") -> TradeRequest:
    return TradeRequest(
        symbol="XAUUSD", action="buy", lots=0.01, sl=sl, client_order_id=coid, comment=comment
    )


async def pin(kit: TradingKit, *agents: str) -> None:
    for agent_id in agents:
        kit.market(agent_id).pin("XAUUSD", 2650.0, 2650.3)
        await kit.poll(agent_id)


async def test_the_same_id_on_two_agents_is_two_orders() -> None:
    async with trading_kit() as kit:
        await pin(kit, "agent_1", "agent_3")
        one = await kit.trading.open("agent_1", buy(2648.5, "sig-9:agent_2"), by="t")
        three = await kit.trading.open("agent_3", buy(2648.5, "sig-9:agent_2"), by="t")
        assert kit.market("agent_1").orders_filled == 1
        assert kit.market("agent_3").orders_filled == 1
        assert one["agent_id"] == "agent_1" and three["agent_id"] == "agent_3"


async def test_after_a_restart_a_repeat_gets_the_first_result_and_a_change_gets_409() -> None:
    async with trading_kit() as kit:
        await pin(kit, "agent_1")
        first = await kit.trading.open("agent_1", buy(2648.5, "ml-7", "a"), by="t")
        async with trading_kit(data_dir=kit.data_dir, markets=kit.markets()) as again:
            repeat = await again.trading.open("agent_1", buy(2648.5, "ml-7", "a"), by="t")
            assert repeat == first
            with pytest.raises(HubError) as dup:
                await again.trading.open("agent_1", buy(2648.5, "ml-7", "b"), by="t")
            assert dup.value.code == "duplicate"
            assert kit.market("agent_1").orders_filled == 1


async def test_without_the_outcome_log_the_bridge_order_decides_a_repeat() -> None:
    async with trading_kit() as kit:
        await pin(kit, "agent_1")
        await kit.trading.open("agent_1", buy(2648.5, "ml-8", "a"), by="t")
        (kit.data_dir / "orders.log").unlink()  # a crash before the outcome was written
        async with trading_kit(data_dir=kit.data_dir, markets=kit.markets()) as again:
            with pytest.raises(HubError) as dup:
                await again.trading.open("agent_1", buy(2648.5, "ml-8", "other"), by="t")
            assert dup.value.code == "duplicate"
            same = await again.trading.open("agent_1", buy(2648.5, "ml-8", "a"), by="t")
            assert same["ticket"] == kit.market("agent_1").positions()[0].ticket
            assert kit.market("agent_1").orders_filled == 1
