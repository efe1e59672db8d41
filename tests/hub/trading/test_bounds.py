"""Memory that stays flat: every structure kept per command, per fault, per close is bounded.

Thousands of commands (trades, closes, repeats of a ``client_order_id``, duplicates) and
bridge faults (orders lost, dropped, unsent, vanished, slow; quote reads failing) run
in-process through the real trading services and pollers (:mod:`tests.hub.trading.kit`),
with the coordination's bounds made small so that each fills up early. Then every
bounded structure is looked at directly against its bound (docs/reliability.md lists
them), and the memory the hub's code holds must not grow over the second half.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
import tracemalloc
import types
from collections.abc import Sequence
from pathlib import Path

from channels.clock import now_ms
from channels.memory import MemoryBroker
from hub.config import parse_config
from hub.errors import HubError
from hub.trading.coordination import LocalCoordination
from hub.trading.history import ClosedTrades
from hub.trading.models import CloseRequest, TradeRequest
from tests.hub.trading.kit import OrderFault, TradingKit, trading_kit

CAPACITY = 200  # outcomes, hub-close marks, claims: small, so each fills up early
STEPS = 3000  # trade + close each, plus a repeat and a duplicate every 10 steps
HISTORY = 50  # channel history per channel
# Traced bytes the hub may gain over the second half (800 steps, ~2 000 commands), once
# every bound is full: allocator and interpreter noise, not a structure that grows
# (a leak of 100 bytes a command alone would show as 200 KB).
GROWTH_BUDGET = 64 * 1024

_CONFIG = """
polling: {tick_interval: 0.005, account_interval: 0.01, timeout: 0.5, backoff_initial: 0.005,
          backoff_max: 0.02, history_interval: 0.01, trade_timeout: 0.05}
symbols:
  XAUUSD: {contract_size: 100, digits: 2}
agents:
  agent_1: {name: Atlas, strategy: soak, bridge: "sim://127.0.0.1:1", symbols: [XAUUSD],
            initial_balance: 1000000,
            risk: {max_risk_per_trade: 1%, max_daily_loss: 50%, max_positions: 1}}
"""

_FAULTS: list[OrderFault | None] = ["lost", "dropped", "unsent", "vanished", "slow"]


def bounded(kit: TradingKit, coord: LocalCoordination) -> list[tuple[str, int, int]]:
    """(structure, size now, bound) for every structure docs/reliability.md bounds."""
    cache = coord._idempotency
    agents = len(kit.registry.agents)
    channels = kit.broker._streams
    symbols = sum(len(a.config.symbols) for a in kit.registry.agents.values())
    open_positions = sum(len(m.positions()) for m in kit.markets().values())
    return [
        ("idempotency outcomes", len(cache), CAPACITY),
        ("idempotency outcomes in flight", cache.in_flight(), 0),
        ("hub-close marks", len(coord._hub_closes), CAPACITY),
        ("closed-trade claims", len(coord._claims), CAPACITY),
        ("risk reservations", len(coord._reserved), 0),
        ("command locks", len(coord._locks), agents + 1),
        ("tickets opened, not closed yet", len(kit.closed._opened), open_positions),
        ("channels", len(channels), 5 * agents + 2),
        (
            "channel history (largest)",
            max(len(s.history) for s in channels.values()),
            HISTORY,
        ),
        ("state channel last values (largest)", max(len(s.last) for s in channels.values()), 8),
        ("publisher last values", len(kit.publisher._last), 5 * agents + 2 + symbols),
        ("day records", len(kit.daily._days), agents),
        (
            "history tickets seen per poller (largest)",
            max(len(p._history_seen) for p in kit.pollers.values()),
            10,
        ),
        (
            "risk return series (largest)",
            _largest_series(kit),
            kit.config.global_risk.correlation_window + 1,
        ),
    ]


def _largest_series(kit: TradingKit) -> int:
    window = kit.risk.returns
    return max(
        (len(s.prices) for b in window._bridges.values() for s in b.series.values()), default=0
    )


async def _step(kit: TradingKit, i: int) -> None:
    bridge = kit.bridge("agent_1")
    agent = kit.registry.agents["agent_1"]
    kit.market("agent_1").step(now_ms())  # the bridge's clock moves (closes get their times)
    tick = kit.market("agent_1").tick("XAUUSD")
    req = TradeRequest(
        symbol="XAUUSD", action="buy", lots=0.01, sl=round(tick.bid - 5, 2),
        client_order_id=f"soak-{i}",
    )  # fmt: skip
    fault = _FAULTS[i // 5 % len(_FAULTS)] if i % 5 == 0 else None
    with bridge.faulty("trade", fault), contextlib.suppress(HubError):
        await kit.trading.open("agent_1", req, by="test")
    if i % 10 == 3:  # a repeat, and the same id with another payload
        with contextlib.suppress(HubError):
            await kit.trading.open("agent_1", req, by="test")
        with contextlib.suppress(HubError):
            other = TradeRequest(
                symbol="XAUUSD", action="sell", lots=0.01, sl=round(tick.ask + 5, 2),
                client_order_id=f"soak-{i}",
            )  # fmt: skip
            await kit.trading.open("agent_1", other, by="test")
    for n, pos in enumerate(kit.market("agent_1").positions()):
        close_fault = _FAULTS[i // 7 % len(_FAULTS)] if (i + n) % 7 == 0 else None
        with bridge.faulty("close", close_fault), contextlib.suppress(HubError):
            await kit.trading.close("agent_1", CloseRequest(ticket=pos.ticket), by="test")
    bridge.ticks_down = i % 50 < 2  # the quote feed fails now and then: offline, online again
    if i % 3 == 0:
        await asyncio.sleep(0.002)  # the pollers run: status, history, claims
    if not agent.online and not bridge.ticks_down:
        for _ in range(100):
            if agent.online:
                break
            await asyncio.sleep(0.005)
    # The test's own records (a real hub writes them out), and its bridge's order log and
    # history (a terminal's, not the hub's memory; the pollers read only the newest rows).
    kit.records.clear()
    bridge.sent.clear()
    del kit.market("agent_1")._history[:-20]


def _reaches(roots: Sequence[object], kinds: tuple[type, ...], depth: int) -> list[object]:
    """Objects of ``kinds`` that ``roots`` refer to, directly or through ``depth`` others."""
    found: list[object] = []
    level = list(roots)
    for _ in range(depth):
        level = gc.get_referents(*level)
        found += [o for o in level if isinstance(o, kinds)]
    return found


def _traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def _top_growth(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot) -> str:
    stats = after.compare_to(before, "lineno")[:12]
    return "\n".join(str(s) for s in stats)


async def test_thousands_of_commands_and_faults_stay_within_every_bound(tmp_path: Path) -> None:
    config = parse_config(_CONFIG, "bounds-config")
    coord = LocalCoordination("test", tmp_path, capacity=CAPACITY)
    broker = MemoryBroker(history_size=HISTORY)
    await broker.connect()
    async with trading_kit(config, data_dir=tmp_path, coordination=coord, broker=broker) as kit:
        kit.market("agent_1").pin("XAUUSD", 2650.0, 2650.3)
        pollers = [asyncio.create_task(p.run()) for p in kit.pollers.values()]
        # pytest keeps every log record it captures: not the hub's memory (the hub's own
        # handlers write them out). Warnings (order_reconciled, agent_offline) are expected.
        logging.disable(logging.WARNING)
        tracemalloc.start(1)
        keep = [
            tracemalloc.Filter(False, tracemalloc.__file__),
            tracemalloc.Filter(False, "*/tests/*"),  # the test and its simulated bridge
            tracemalloc.Filter(False, "*/hub/bridge/sim.py"),  # the bridge's own history
        ]
        try:
            started = time.monotonic()
            for i in range(STEPS // 2):
                await _step(kit, i)
            middle, snap = _traced(), tracemalloc.take_snapshot().filter_traces(keep)
            for i in range(STEPS // 2, STEPS):
                await _step(kit, i)
            end, last = _traced(), tracemalloc.take_snapshot().filter_traces(keep)
            elapsed = time.monotonic() - started
        finally:
            tracemalloc.stop()
            logging.disable(logging.NOTSET)
            for task in pollers:
                task.cancel()
            await asyncio.gather(*pollers, return_exceptions=True)
        await kit.trading.close_all("agent_1", by="test")
        for poller in kit.pollers.values():
            await poller.poll_history(time.monotonic())

        over = [(name, size, bound) for name, size, bound in bounded(kit, coord) if size > bound]
        assert not over, f"structures past their bounds: {over}"
        # A decided outcome holds no traceback (the frames of the command that failed).
        cache = coord._idempotency
        assert len(cache) and not _reaches([cache], (types.TracebackType, types.FrameType), 6)
        # The outcome log on disk is compacted: at most twice the capacity, in lines.
        assert len((tmp_path / "orders.log").read_bytes().splitlines()) <= 2 * CAPACITY
        grown = [s for s in last.compare_to(snap, "lineno") if s.size_diff > 0]
        held = sum(s.size_diff for s in grown)
        assert end - middle <= GROWTH_BUDGET and held <= GROWTH_BUDGET, (
            f"the hub held {end - middle} more bytes over the second half "
            f"({elapsed:.0f} s for {STEPS} steps); growing:\n{_top_growth(snap, last)}"
        )


async def test_fills_whose_close_this_instance_never_sees_are_forgotten_past_a_bound() -> None:
    """With other instances, a ticket this one filled may be closed and read in the history
    by another: its client_order_id is kept for at most ``ClosedTrades.capacity`` tickets."""
    async with trading_kit() as kit:
        for ticket in range(ClosedTrades.capacity + 500):
            kit.closed.opened("agent_1", ticket, f"coid-{ticket}")
        assert len(kit.closed._opened) == ClosedTrades.capacity
        assert ("agent_1", ClosedTrades.capacity + 499) in kit.closed._opened
