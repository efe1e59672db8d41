"""A realistic risk context: the shipped agents, open positions, live quotes, correlations."""

from __future__ import annotations

import math
import random

import msgspec

from hub.bridge.models import Position, TradeOrder
from hub.config import load_config
from hub.risk import AgentBook, ReturnsWindow, RiskContext

__all__ = ["realistic_context"]

_QUOTES = {
    "XAUUSD": (2650.10, 2650.40),
    "EURUSD": (1.08500, 1.08512),
    "GBPUSD": (1.27000, 1.27015),
    "USDJPY": (151.000, 151.015),
}


class _Quote(msgspec.Struct, frozen=True):
    bid: float
    ask: float


def _returns(agents: dict[str, list[str]], seed: int = 7, steps: int = 200) -> ReturnsWindow:
    """Two minutes of 1 s mids: EURUSD and GBPUSD strongly correlated, the rest not; each
    agent's bridge quotes the symbols it trades."""
    rng = random.Random(seed)
    window = ReturnsWindow(120)
    mids = {s: (b + a) / 2 for s, (b, a) in _QUOTES.items()}
    for step in range(steps):
        common = rng.gauss(0, 1)
        for symbol in mids:
            shock = common if symbol in ("EURUSD", "GBPUSD") else rng.gauss(0, 1)
            mids[symbol] *= math.exp(0.0002 * (0.8 * shock + 0.2 * rng.gauss(0, 1)))
            for agent_id, symbols in agents.items():
                if symbol in symbols:
                    ts = 1_700_000_000_000 + step * 1000
                    window.observe(agent_id, symbol, mids[symbol], mids[symbol], ts)
    return window


def _position(
    ticket: int, symbol: str, action: str, lots: float, price: float, sl: float
) -> Position:
    return msgspec.convert(
        {
            "ticket": ticket,
            "symbol": symbol,
            "action": action,
            "lots": lots,
            "open_price": price,
            "sl": sl,
            "tp": None,
        },
        Position,
    )


def realistic_context() -> tuple[RiskContext, str, TradeOrder]:
    """(context, agent, order): agent_3 buying XAUUSD with every check run and passing."""
    config = load_config()
    agents = {
        agent_id: msgspec.structs.replace(agent, enabled=True)
        for agent_id, agent in config.agents.items()
    }
    books = {
        "agent_1": AgentBook(
            config=agents["agent_1"], balance=200, equity=198.5, start_of_day_equity=200
        ),
        "agent_2": AgentBook(
            config=agents["agent_2"],
            balance=500,
            equity=503.2,
            start_of_day_equity=500,
            positions=[_position(2001, "EURUSD", "buy", 0.01, 1.08420, 1.08000)],
        ),
        "agent_3": AgentBook(
            config=agents["agent_3"],
            balance=1000,
            equity=996.0,
            start_of_day_equity=1000,
            positions=[
                _position(3001, "USDJPY", "sell", 0.01, 151.200, 151.900),
                _position(3002, "GBPUSD", "buy", 0.01, 1.26900, 1.26500),
            ],
        ),
    }
    ctx = RiskContext(
        agents=books,
        specs=config.symbols,
        prices={s: _Quote(b, a) for s, (b, a) in _QUOTES.items()},
        global_risk=config.global_risk,
        correlation=_returns({a: c.symbols for a, c in agents.items()}).correlation,
    )
    order = TradeOrder(symbol="XAUUSD", action="buy", lots=0.01, sl=2635.0, tp=2680.0)
    return ctx, "agent_3", order
