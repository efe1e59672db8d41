"""In-process trading: the real services over a simulated market, with no sockets.

:class:`MarketBridge` answers like the bridge client (same methods, same errors) from a
:class:`~hub.bridge.sim.SimMarket` held in memory; it can be told to lose, delay or drop
answers, and it reports every order that reaches its market. :func:`trading_kit` wires
the real ``TradingService``, ``SignalRouter``, risk inputs, kill switch, daily limits,
one ``AgentPoller`` per agent and history reconciliation over an in-memory broker, a
coordination (local by default; a given one, e.g. Redis shared with a second kit) and a
list journal.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import msgspec

from channels import names
from channels.broker import Publication
from channels.clock import now_ms
from channels.memory import MemoryBroker
from hub.agents import AgentRuntime, Registry
from hub.bridge.client import (
    HISTORY_WINDOW_MS,
    BridgeClient,
    BridgeRejected,
    BridgeTimeout,
    BridgeUnavailable,
)
from hub.bridge.dialect import RowSkips
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
from hub.polling import AgentPoller
from hub.publisher import Publisher
from hub.records import Record
from hub.trading.coordination import Coordination, LocalCoordination
from hub.trading.daily import DailyLimits
from hub.trading.emergency import EmergencyControl
from hub.trading.events import OrderEvents
from hub.trading.history import ClosedTrades
from hub.trading.journal import RecordsJournal
from hub.trading.last_positions import LastPositions
from hub.trading.risk_inputs import RiskInputs
from hub.trading.service import TradingService
from hub.trading.signals import SignalRouter
from tests.hubkit import hub_config

OrderFault = Literal["lost", "hang", "dropped", "unsent", "vanished", "slow"]
"""What happens to an order on its way (``MarketBridge.faults``):

- ``lost``: the market executes it, the answer is lost (``BridgeTimeout`` at once);
- ``hang``: the market executes it, no answer comes (``BridgeTimeout`` after ``hang_turns``);
- ``dropped``: the market executes it, then the connection drops (``BridgeUnavailable``, sent);
- ``unsent``: the connection is refused, the market never sees it (``BridgeUnavailable``, not sent);
- ``vanished``: the request is lost on the way, the market never sees it (``BridgeTimeout``);
- ``slow``: it reaches the market after ``slow_turns`` and is answered normally.

Delays are counted in turns of the event loop, not seconds: what runs meanwhile does not
depend on the machine's speed, so an interleaving replays the same way.
"""

OrderObserver = Callable[[str, Any, Any, list[Position]], None]
"""``(op, order, outcome, positions before)``: an order reached the market (``trade``,
``close`` or ``modify``); ``outcome`` is what the market did (a ``Position`` or
``ClosedTrade``, or the ``SimError`` it refused with). Called at the instant of execution."""


async def _turns(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


class MarketBridge:
    """The bridge client's interface over an in-memory market.

    ``lose_next`` makes the next order (trade/close/modify) execute and its answer get
    lost (``BridgeTimeout``, as a bridge that hangs after sending). ``faults[op]`` queues
    an :data:`OrderFault` for the next orders of ``op``; ``delays[op]`` slows a read
    (``account``, ``positions``, ``tick``, ``history``) by that many turns of the event loop."""

    def __init__(self, market: SimMarket) -> None:
        self.market = market
        # Order tags, the profile and what it supports: as the real client (mt4hub profile).
        self._real = BridgeClient("http://127.0.0.1:9")
        self.profile = self._real.profile
        self.supports = self._real.supports
        self.order_comment = self._real.order_comment
        self.has_tag = self._real.has_tag
        self.status = self._real.status
        self.skipped = self._real.skipped  # rows left out of the last reads
        # Tickets whose /positions row the bridge answers unreadable (a garbage field): left
        # out and counted in ``skipped``, as the real client does.
        self.unreadable: Callable[[int], bool] = lambda ticket: False
        # The bridge refuses every connection: reads fail, orders are never sent.
        self.down: Callable[[], bool] = lambda: False
        self.lose_next = False
        self.hang_next = False  # the next order never reaches the market, and no answer comes
        self.tick_delay = 0.0  # seconds a quote read takes (a bridge slower on quotes)
        self.trade_delay = 0.0  # seconds before an order reaches the market
        self.ticks_down = False  # quote reads fail (a feed that stopped answering)
        self.frozen: Tick | None = None  # quote reads answer this (a feed that froze)
        self.delays: dict[str, int] = {}
        self.faults: dict[str, deque[OrderFault]] = {}
        self.hang_turns = 25
        self.slow_turns = 25
        self.sent: list[str] = []
        self.on_order: OrderObserver | None = None
        self.on_account: Callable[[Account], None] | None = None  # each account answered
        self.on_tick: Callable[[Tick], None] | None = None  # each quote answered

    def fault(self, op: str, fault: OrderFault) -> None:
        """The next ``op`` order meets ``fault``."""
        self.faults.setdefault(op, deque()).append(fault)

    @contextlib.contextmanager
    def faulty(self, op: str, fault: OrderFault | None) -> Iterator[None]:
        """The next ``op`` order sent within the block meets ``fault`` (if none was sent,
        the fault is forgotten: it does not wait for a later order)."""
        if fault is None:
            yield
            return
        self.fault(op, fault)
        try:
            yield
        finally:
            queued = self.faults.get(op)
            if queued and fault in queued:
                queued.remove(fault)

    def _refused(self, what: str) -> None:
        if self.down():
            raise BridgeUnavailable(f"{what}: connection refused (the test's bridge is down)",
                                    sent=False)  # fmt: skip

    async def _order(self, what: str, order: Any, run: Callable[[], Any]) -> Any:
        self.sent.append(what)
        await asyncio.sleep(0)  # as over a socket: others run while the request travels
        self._refused(what)
        queued = self.faults.get(what)
        fault = queued.popleft() if queued else None
        if fault is None and self.hang_next:
            self.hang_next = False
            fault = "vanished"
        if fault is None and self.lose_next:
            self.lose_next = False
            fault = "lost"
        if fault == "unsent":
            raise BridgeUnavailable("connection refused (by the test)", sent=False)
        if fault == "vanished":
            raise BridgeTimeout("no answer: the request was lost on the way (by the test)")
        if fault == "slow":
            await _turns(self.slow_turns)
        before = self.market.positions() if self.on_order is not None else []
        try:
            result = run()
        except SimError as exc:
            if self.on_order is not None:
                self.on_order(what, order, exc, before)
            raise BridgeRejected(str(exc)) from None
        if self.on_order is not None:
            self.on_order(what, order, result, before)
        if fault == "lost":
            raise BridgeTimeout("no answer (lost by the test)")
        if fault == "hang":
            await _turns(self.hang_turns)
            raise BridgeTimeout("no answer (the test's bridge hung after executing)")
        if fault == "dropped":
            raise BridgeUnavailable("connection dropped after sending (by the test)", sent=True)
        return result

    async def _read_delay(self, what: str) -> None:
        await _turns(1 + self.delays.get(what, 0))  # at least one, as over a socket
        self._refused(what)

    async def account(self) -> Account:
        await self._read_delay("account")
        account = self.market.account()
        if self.on_account is not None:
            self.on_account(account)
        return account

    async def tick(self, symbol: str) -> Tick:
        self._refused("tick")
        if self.ticks_down:
            raise BridgeTimeout("quote read timed out (the test's feed is down)")
        if self.frozen is not None and self.frozen.symbol == symbol:
            return self.frozen
        if self.tick_delay:
            await asyncio.sleep(self.tick_delay)
        await self._read_delay("tick")
        tick = self.market.tick(symbol)
        if self.on_tick is not None:
            self.on_tick(tick)
        return tick

    async def positions(self) -> list[Position]:
        await self._read_delay("positions")
        held, skips = self.market.positions(), RowSkips()
        for n, p in enumerate(held):
            if self.unreadable(p.ticket):
                skips.bad += 1
                skips.errors.append(f"GET /positions: row {n}: field lots: 'n/a' is not a number")
        self.skipped["positions"] = skips
        return [p for p in held if not self.unreadable(p.ticket)]

    async def history(self, since_ms: int | None = None) -> list[ClosedTrade]:
        await self._read_delay("history")
        return self.market.history(since_ms)

    async def tagged_history(self, tag: str) -> list[ClosedTrade]:
        since = now_ms() - HISTORY_WINDOW_MS
        return [t for t in await self.history(since) if self.has_tag(t, tag)]

    async def trade(self, order: TradeOrder, tag: str | None = None) -> Position:
        if self.trade_delay:
            await asyncio.sleep(self.trade_delay)
        m = self.market
        return await self._order(  # type: ignore[no-any-return]
            "trade",
            order,
            lambda: m.trade(
                order.symbol, order.action, order.lots, order.sl, order.tp, order.comment
            ),
        )

    async def close_position(self, order: CloseOrder) -> ClosedTrade:
        return await self._order(  # type: ignore[no-any-return]
            "close", order, lambda: self.market.close(order.ticket, order.lots)
        )

    async def modify(self, order: ModifyOrder) -> Position:
        return await self._order(  # type: ignore[no-any-return]
            "modify", order, lambda: self.market.modify(order.ticket, order.sl, order.tp)
        )

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
    publisher: Publisher
    signals: SignalRouter
    records: list[Record] = field(default_factory=list)
    pollers: dict[str, AgentPoller] = field(default_factory=dict)

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
        agent.positions = agent.held(await bridge.positions())  # as the poller does
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
    coordination: Coordination | None = None,
    bridge: Callable[[str, SimMarket], MarketBridge] | None = None,
    broker: MemoryBroker | None = None,
) -> AsyncIterator[TradingKit]:
    """The trading services over in-memory markets. Pass the ``data_dir`` and ``markets``
    of an earlier kit to restart the hub over the same bridges and state files.

    ``clock`` is the hub's clock (the UTC day of the daily limits). ``coordination`` (started and
    closed by the kit) replaces the local one: a ``RedisCoordination`` shared by two
    kits over the same ``markets`` is two hub instances on the same bridges; give them one
    connected ``broker`` too (what the instances share on Redis: each channel's last value,
    e.g. another instance's fills), which the kit then leaves open.
    ``bridge(agent_id, market)`` builds each agent's bridge (default :class:`MarketBridge`).
    """
    with contextlib.ExitStack() as stack:
        if data_dir is None:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mt4hub-")))
        coord = coordination or LocalCoordination("test", data_dir)
        await coord.start()
        try:
            async with _kit(
                config or hub_config(),
                data_dir,
                markets or {},
                clock,
                coord,
                bridge or (lambda _agent_id, market: MarketBridge(market)),
                broker,
            ) as kit:
                yield kit
        finally:
            await coord.close()


@contextlib.asynccontextmanager
async def _kit(
    config: HubConfig,
    data_dir: Path,
    markets: dict[str, SimMarket],
    clock: Callable[[], int],
    coordination: Coordination,
    bridge: Callable[[str, SimMarket], MarketBridge],
    shared_broker: MemoryBroker | None,
) -> AsyncIterator[TradingKit]:
    registry = Registry(config)
    for agent_id, agent in registry.agents.items():
        await agent.client.close()
        cfg = config.agents[agent_id]
        market = markets.get(agent_id) or SimMarket(
            {s: config.symbols[s] for s in cfg.symbols}, cfg.initial_balance, seed=7
        )
        agent.client = bridge(agent_id, market)  # type: ignore[assignment]
    broker = shared_broker or MemoryBroker(history_size=1000)
    if shared_broker is None:
        await broker.connect()
    publisher = Publisher(broker)
    records: list[Record] = []
    journal = RecordsJournal(records.append)
    emergency = EmergencyControl(
        coordination, publisher, journal, registry.agents, stopped_by_config=False
    )
    await emergency.start()
    daily = DailyLimits(coordination, registry, journal, clock)
    risk = RiskInputs(registry, lambda: emergency.stopped, daily)
    events = OrderEvents(publisher, journal)
    closed = ClosedTrades(events, coordination)
    trading = TradingService(registry, publisher, coordination, events, risk, emergency, closed)

    def observe_ticks(channel: str, key: str | None, data: Any) -> None:
        agent_id = names.agent_of(channel)
        if isinstance(data, Tick) and agent_id:  # as the app does: correlation per bridge
            risk.observe_tick(agent_id, data.symbol, data.bid, data.ask, data.time)

    async def account_read(agent: AgentRuntime, account: Account) -> None:
        await daily.observe(agent.id, account.equity)

    publisher.observers.append(observe_ticks)
    last_positions = LastPositions(data_dir / "positions.json")  # as the app does
    last_positions.restore(registry)
    publisher.observers.append(last_positions.observe)
    pollers = {
        agent.id: AgentPoller(
            agent,
            config.polling,
            publisher,
            lambda _agent: None,
            trading_state=risk.state_of,
            on_history=closed.seen,
            on_account=account_read,
        )
        for agent in registry.agents.values()
    }
    kit = TradingKit(
        config=config,
        registry=registry,
        broker=broker,
        trading=trading,
        risk=risk,
        emergency=emergency,
        closed=closed,
        daily=daily,
        data_dir=data_dir,
        publisher=publisher,
        signals=SignalRouter(trading, risk, journal),
        records=records,
        pollers=pollers,
    )
    for agent_id, agent in registry.agents.items():
        try:
            await kit.poll(agent_id)
        except BridgeUnavailable as exc:  # a bridge down at start: offline, as in the app
            agent.error = str(exc)
    try:
        yield kit
    finally:
        if shared_broker is None:
            await broker.close()
