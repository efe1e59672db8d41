"""In-process trading: the real services over a simulated market, with no sockets.

:class:`MarketBridge` answers like the bridge client (same methods, same errors) from a
:class:`~hub.bridge.sim.SimMarket` held in memory, and can be told to lose answers;
:func:`trading_kit` wires the real ``TradingService``, risk inputs, kill switch and
history reconciliation over an in-memory broker, local coordination and a list journal.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from channels.broker import Publication
from channels.clock import now_ms
from channels.memory import MemoryBroker
from hub.agents import Registry
from hub.bridge.client import BridgeRejected, BridgeTimeout
from hub.bridge.models import (
    Account,
    ClosedTrade,
    CloseOrder,
    ModifyOrder,
    Position,
    Tick,
    TradeOrder,
)
from hub.bridge.sim import SimError, SimMarket
from hub.config import HubConfig
from hub.publisher import Publisher
from hub.records import Record
from hub.trading.coordination import LocalCoordination
from hub.trading.daily import DailyLimits
from hub.trading.emergency import EmergencyControl
from hub.trading.events import OrderEvents
from hub.trading.history import ClosedTrades
from hub.trading.journal import RecordsJournal
from hub.trading.risk_inputs import RiskInputs
from hub.trading.service import TradingService
from tests.hubkit import hub_config


class MarketBridge:
    """The bridge client's interface over an in-memory market.

    ``lose_next`` makes the next order (trade/close/modify) execute and its answer get
    lost (``BridgeTimeout``, as a bridge that hangs after sending)."""

    def __init__(self, market: SimMarket) -> None:
        self.market = market
        self.lose_next = False
        self.hang_next = False  # the next order never reaches the market, and no answer comes
        self.tick_delay = 0.0  # seconds a quote read takes (a bridge slower on quotes)
        self.trade_delay = 0.0  # seconds before an order reaches the market
        self.ticks_down = False  # quote reads fail (a feed that stopped answering)
        self.frozen: Tick | None = None  # quote reads answer this (a feed that froze)
        self.sent: list[str] = []

    def _order(self, what: str, run: Any) -> Any:
        self.sent.append(what)
        if self.hang_next:
            self.hang_next = False
            raise BridgeTimeout("no answer (the test's bridge hung)")
        try:
            result = run()
        except SimError as exc:
            raise BridgeRejected(str(exc)) from None
        if self.lose_next:
            self.lose_next = False
            raise BridgeTimeout("no answer (lost by the test)")
        return result

    async def account(self) -> Account:
        return self.market.account()

    async def tick(self, symbol: str) -> Tick:
        if self.ticks_down:
            raise BridgeTimeout("quote read timed out (the test's feed is down)")
        if self.frozen is not None and self.frozen.symbol == symbol:
            return self.frozen
        if self.tick_delay:
            await asyncio.sleep(self.tick_delay)
        return self.market.tick(symbol)

    async def positions(self) -> list[Position]:
        return self.market.positions()

    async def history(self, since_ms: int | None = None) -> list[ClosedTrade]:
        return self.market.history(since_ms)

    async def trade(self, order: TradeOrder) -> Position:
        if self.trade_delay:
            await asyncio.sleep(self.trade_delay)
        m = self.market
        return self._order(  # type: ignore[no-any-return]
            "trade",
            lambda: m.trade(
                order.symbol, order.action, order.lots, order.sl, order.tp, order.comment
            ),
        )

    async def close_position(self, order: CloseOrder) -> ClosedTrade:
        return self._order("close", lambda: self.market.close(order.ticket, order.lots))  # type: ignore[no-any-return]

    async def modify(self, order: ModifyOrder) -> Position:
        return self._order("modify", lambda: self.market.modify(order.ticket, order.sl, order.tp))  # type: ignore[no-any-return]

    async def close(self) -> None:
        return None


@dataclass
class TradingKit:
    config: HubConfig
    registry: Registry
    broker: MemoryBroker
    trading: TradingService
    risk: RiskInputs
    emergency: EmergencyControl
    closed: ClosedTrades
    daily: DailyLimits
    data_dir: Path
    records: list[Record] = field(default_factory=list)

    def markets(self) -> dict[str, SimMarket]:
        return {agent_id: self.market(agent_id) for agent_id in self.registry.agents}

    def bridge(self, agent_id: str) -> MarketBridge:
        client = self.registry.agents[agent_id].client
        assert isinstance(client, MarketBridge)
        return client

    def market(self, agent_id: str) -> SimMarket:
        return self.bridge(agent_id).market

    async def poll(self, agent_id: str) -> None:
        """What one poll of ``agent_id`` gives the risk engine: account, positions, ticks."""
        agent = self.registry.agents[agent_id]
        bridge = self.bridge(agent_id)
        bridge.market.step(now_ms())  # the market's clock moves as a bridge's does
        agent.account = await bridge.account()
        agent.positions = await bridge.positions()
        for symbol in agent.config.symbols:
            agent.ticks[symbol] = await bridge.tick(symbol)
            agent.tick_read_at[symbol] = time.monotonic()
        agent.online = True
        agent.error = None
        await self.daily.observe(agent_id, agent.account.equity)

    async def orders(self, agent_id: str) -> list[dict[str, Any]]:
        """The ``agent:{id}:orders`` events published so far, oldest first."""
        pubs: list[Publication] | None = await self.broker.history(f"agent:{agent_id}:orders", 0)
        return [msgspec.json.decode(p.data) for p in pubs or []]


@contextlib.asynccontextmanager
async def trading_kit(
    config: HubConfig | None = None,
    *,
    data_dir: Path | None = None,
    markets: dict[str, SimMarket] | None = None,
    clock: Callable[[], int] = now_ms,
) -> AsyncIterator[TradingKit]:
    """The trading services over in-memory markets. Pass the ``data_dir`` and ``markets``
    of an earlier kit to restart the hub over the same bridges and state files."""
    with contextlib.ExitStack() as stack:
        if data_dir is None:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mt4hub-")))
        async with _kit(config or hub_config(), data_dir, markets or {}, clock) as kit:
            yield kit


@contextlib.asynccontextmanager
async def _kit(
    config: HubConfig, data_dir: Path, markets: dict[str, SimMarket], clock: Callable[[], int]
) -> AsyncIterator[TradingKit]:
    registry = Registry(config)
    for agent_id, agent in registry.agents.items():
        await agent.client.close()
        cfg = config.agents[agent_id]
        market = markets.get(agent_id) or SimMarket(
            {s: config.symbols[s] for s in cfg.symbols}, cfg.initial_balance, seed=7
        )
        agent.client = MarketBridge(market)  # type: ignore[assignment]
    broker = MemoryBroker(history_size=1000)
    await broker.connect()
    publisher = Publisher(broker)
    records: list[Record] = []
    journal = RecordsJournal(records.append)
    coordination = LocalCoordination("test", data_dir)
    emergency = EmergencyControl(
        coordination, publisher, journal, registry.agents, stopped_by_config=False
    )
    await emergency.start()
    daily = DailyLimits(coordination, registry, journal, clock)
    risk = RiskInputs(registry, lambda: emergency.stopped, daily)
    events = OrderEvents(publisher, journal)
    closed = ClosedTrades(events, coordination)
    trading = TradingService(registry, publisher, coordination, events, risk, emergency, closed)
    kit = TradingKit(
        config, registry, broker, trading, risk, emergency, closed, daily, data_dir, records
    )
    for agent_id in registry.agents:
        await kit.poll(agent_id)
    try:
        yield kit
    finally:
        await broker.close()
