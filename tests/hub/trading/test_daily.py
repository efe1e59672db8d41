"""The day's start and its halt are durable: restarts and recoveries do not lift a halt."""

from __future__ import annotations

import pytest

from channels.clock import now_ms
from hub.errors import HubError
from hub.trading.models import TradeRequest
from tests.hub.trading.kit import TradingKit, trading_kit

DAY_MS = 86_400_000


class Clock:
    def __init__(self) -> None:
        self.offset = 0

    def __call__(self) -> int:
        return now_ms() + self.offset


def buy(sl: float, coid: str | None = None) -> TradeRequest:
    return TradeRequest(symbol="XAUUSD", action="buy", lots=0.01, sl=sl, client_order_id=coid)


async def lose_20_30(kit: TradingKit) -> None:
    """agent_1 (200, 5 % = 10.00 a day) buys at 2650.30 and the price gaps through its SL."""
    kit.market("agent_1").pin("XAUUSD", 2650.0, 2650.3)
    await kit.poll("agent_1")
    await kit.trading.open("agent_1", buy(sl=2648.5), by="t")
    kit.market("agent_1").pin("XAUUSD", 2630.0, 2630.3)  # a gap: the SL fills at 2630.00
    await kit.poll("agent_1")
    assert kit.market("agent_1").account().equity == pytest.approx(200 - 20.30)


async def test_a_daily_loss_halt_survives_a_restart() -> None:
    clock = Clock()
    async with trading_kit(clock=clock) as kit:
        await lose_20_30(kit)
        assert kit.risk.state_of("agent_1") == "halted"
        data_dir, markets = kit.data_dir, kit.markets()
        async with trading_kit(data_dir=data_dir, markets=markets, clock=clock) as again:
            assert again.risk.state_of("agent_1") == "halted"
            assert again.daily.start_equity("agent_1", 0.0) == 200.0
            kit.market("agent_1").pin("XAUUSD", 2630.0, 2630.3)
            with pytest.raises(HubError) as refused:
                await again.trading.open("agent_1", buy(sl=2629.0), by="t")
            assert refused.value.details is not None
            assert refused.value.details["check"] == "daily_loss"


async def test_the_halt_lasts_until_midnight_utc_even_if_equity_recovers() -> None:
    clock = Clock()
    async with trading_kit(clock=clock) as kit:
        await lose_20_30(kit)
        kit.market("agent_1").balance += 15.0  # a recovery to a loss of 5.30, under the limit
        await kit.poll("agent_1")
        assert kit.risk.state_of("agent_1") == "halted"
        with pytest.raises(HubError):
            await kit.trading.open("agent_1", buy(sl=2629.0), by="t")
        clock.offset += DAY_MS  # the next UTC day: a new start, no halt
        await kit.poll("agent_1")
        assert kit.risk.state_of("agent_1") == "active"
        assert kit.daily.start_equity("agent_1", 0.0) == pytest.approx(194.70)
        await kit.trading.open("agent_1", buy(sl=2629.0), by="t")


async def test_only_an_admin_lift_ends_a_halt_early_and_it_is_logged() -> None:
    async with trading_kit() as kit:
        await lose_20_30(kit)
        kit.market("agent_1").balance += 15.0
        await kit.poll("agent_1")
        await kit.daily.lift("agent_1", by="risk-officer", reason="reviewed")
        await kit.poll("agent_1")
        assert kit.risk.state_of("agent_1") == "active"
        lifted = [r for r in kit.records if getattr(r, "event_type", None) == "halt_lifted"]
        assert len(lifted) == 1 and "risk-officer" in lifted[0].message  # type: ignore[attr-defined]


async def test_the_start_of_day_equity_is_fixed_once_per_day() -> None:
    async with trading_kit() as kit:
        start = kit.daily.start_equity("agent_1", 0.0)
        kit.market("agent_1").balance -= 3.0
        await kit.poll("agent_1")
        assert kit.daily.start_equity("agent_1", 0.0) == start
