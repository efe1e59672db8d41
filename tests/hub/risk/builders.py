"""Builders shared by the risk tests: contract specs, quotes, agents, books, orders, contexts."""

from __future__ import annotations

import math
import random

from hub.bridge.models import Action, Position, Tick, TradeOrder
from hub.config import AgentConfig, AgentRisk, GlobalRisk, SymbolSpec
from hub.risk import (
    AgentBook,
    CorrelationLookup,
    PendingOrder,
    ReturnsWindow,
    RiskContext,
    RiskDecision,
)

__all__ = [
    "ATLAS",
    "NOVA",
    "PRICES",
    "SPECS",
    "agent",
    "assert_denied",
    "assert_outcome",
    "book",
    "context",
    "feed",
    "order",
    "pending",
    "position",
    "tick",
    "walks",
]

SPECS = {
    "XAUUSD": SymbolSpec(contract_size=100, digits=2, max_lots=50),
    "EURUSD": SymbolSpec(contract_size=100_000, digits=5, max_lots=50),
    "GBPUSD": SymbolSpec(contract_size=100_000, digits=5, max_lots=50),
    "USDJPY": SymbolSpec(contract_size=100_000, digits=3, max_lots=50, quote_currency="JPY"),
    "EURJPY": SymbolSpec(contract_size=100_000, digits=3, quote_currency="JPY"),
}


def tick(symbol: str, bid: float, ask: float) -> Tick:
    return Tick(symbol=symbol, bid=bid, ask=ask, time=0)


PRICES = {
    "XAUUSD": tick("XAUUSD", 2650.00, 2650.30),
    "EURUSD": tick("EURUSD", 1.08000, 1.08010),
    "GBPUSD": tick("GBPUSD", 1.27000, 1.27010),
    "USDJPY": tick("USDJPY", 150.000, 150.000),
}


def agent(
    symbols: list[str],
    *,
    per_trade: float,
    max_positions: int,
    daily: float = 0.05,
    require_sl: bool = True,
    enabled: bool = True,
) -> AgentConfig:
    risk = AgentRisk(
        max_risk_per_trade=per_trade,
        max_daily_loss=daily,
        max_positions=max_positions,
        require_sl=require_sl,
    )
    return AgentConfig(
        name="A",
        strategy="s",
        bridge="sim://127.0.0.1:1",
        symbols=symbols,
        risk=risk,
        enabled=enabled,
    )


ATLAS = agent(["XAUUSD"], per_trade=0.01, max_positions=1)
NOVA = agent(["XAUUSD", "EURUSD", "GBPUSD", "USDJPY", "EURJPY"], per_trade=0.02, max_positions=3)


def book(
    config: AgentConfig,
    balance: float,
    *,
    equity: float | None = None,
    start: float | None = None,
    positions: list[Position] | None = None,
    pending: list[PendingOrder] | None = None,
    halted: bool = False,
    quotes: dict[str, Tick] | None = None,
    unreadable: int = 0,
) -> AgentBook:
    return AgentBook(
        config=config,
        balance=balance,
        equity=balance if equity is None else equity,
        start_of_day_equity=balance if start is None else start,
        positions=positions or [],
        pending=pending or [],
        halted=halted,
        quotes=quotes or {},
        unreadable=unreadable,
    )


def position(
    symbol: str, action: Action, lots: float, open_price: float, sl: float | None, ticket: int = 1
) -> Position:
    return Position(
        ticket=ticket, symbol=symbol, action=action, lots=lots, open_price=open_price, sl=sl
    )


def pending(
    symbol: str, action: Action, lots: float, sl: float | None, entry: float
) -> PendingOrder:
    return PendingOrder(symbol=symbol, action=action, lots=lots, sl=sl, entry=entry)


def context(
    *books: tuple[str, AgentBook],
    prices: dict[str, Tick] | None = None,
    emergency: bool = False,
    correlation: CorrelationLookup | None = None,
    specs: dict[str, SymbolSpec] | None = None,
) -> RiskContext:
    agents = dict(books) or {"agent_1": book(ATLAS, 200), "agent_3": book(NOVA, 1000)}
    return RiskContext(
        agents=agents,
        specs=SPECS if specs is None else specs,
        prices=PRICES if prices is None else prices,
        global_risk=GlobalRisk(),
        emergency_stop=emergency,
        correlation=correlation,
    )


def order(
    symbol: str, action: Action, lots: float, sl: float | None, tp: float | None = None
) -> TradeOrder:
    return TradeOrder(symbol=symbol, action=action, lots=lots, sl=sl, tp=tp)


def assert_denied(decision: RiskDecision, check: str, code: str = "risk_rejected") -> None:
    assert not decision.allowed, decision
    assert (decision.code, decision.check) == (code, check), decision.message
    assert decision.message


def assert_outcome(decision: RiskDecision, check: str | None) -> None:
    """Allowed when ``check`` is None, else denied by ``check`` (code ``risk_rejected``)."""
    if check is None:
        assert decision.allowed, decision.message
    else:
        assert_denied(decision, check)


def feed(
    window: ReturnsWindow,
    series: dict[str, list[float]],
    *,
    agent_id: str = "agent_1",
    bucket_ms: int = 1000,
) -> None:
    """One tick per symbol per bucket from ``agent_id``'s bridge, prices from ``series``."""
    for i in range(len(next(iter(series.values())))):
        for symbol, prices in series.items():
            window.observe(agent_id, symbol, prices[i], prices[i] + 0.0001, i * bucket_ms + 123)


def walks(n: int, seed: int = 7) -> dict[str, list[float]]:
    """EURUSD a random walk; GBPUSD mostly follows it, USDCHF mostly mirrors it, XAUUSD not."""
    rng = random.Random(seed)
    eur, gbp, chf, xau = [1.08], [1.27], [0.90], [2650.0]
    for _ in range(n - 1):
        shock = rng.gauss(0, 0.0005)
        eur.append(eur[-1] * math.exp(shock))
        gbp.append(gbp[-1] * math.exp(shock + rng.gauss(0, 0.0002)))
        chf.append(chf[-1] * math.exp(-shock + rng.gauss(0, 0.0002)))
        xau.append(xau[-1] * math.exp(rng.gauss(0, 0.0005)))
    return {"EURUSD": eur, "GBPUSD": gbp, "USDCHF": chf, "XAUUSD": xau}
