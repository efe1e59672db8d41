"""What the risk engine is told: one frozen snapshot of the hub, built by the caller.

The trading service builds a :class:`RiskContext` per command from its live state
(polled accounts and positions, orders reserved or in flight, fresh quotes, the
emergency flag, the durable start-of-day equity and halt, and the returns window) and
hands it to the pure checks; nothing here reads a clock or does I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

import msgspec

from hub.bridge.models import Action, Position
from hub.config import AgentConfig, GlobalRisk, SymbolSpec

__all__ = ["AgentBook", "CorrelationLookup", "PendingOrder", "Quote", "RiskContext"]

CorrelationLookup = Callable[[str, str, str], float | None]
"""``correlation(bridge_agent_id, a, b)``: rolling return correlation of symbols ``a`` and
``b`` measured on that one agent's bridge quotes; None while unknown."""


class Quote(Protocol):
    """A current price: :class:`hub.bridge.models.Tick` fits, so does any bid/ask pair."""

    @property
    def bid(self) -> float: ...

    @property
    def ask(self) -> float: ...


class PendingOrder(msgspec.Struct, frozen=True):
    """An order reserved or in flight to the bridge, not yet among the positions.

    It counts as a position for ``max_positions`` and, like one, for the daily headroom,
    the total exposure and correlation; its risk runs from ``entry`` (the price it was
    checked at: ask for a buy, bid for a sell) to ``sl`` (None or 0: no SL, which counts
    the agent's per-trade budget).
    """

    symbol: str
    action: Action
    lots: float
    sl: float | None
    entry: float


class AgentBook(msgspec.Struct, frozen=True, kw_only=True):
    """One agent as the risk engine sees it right now.

    ``start_of_day_equity`` is the day's durable baseline and ``halted`` the day's durable
    halt (``hub/trading/daily.py``); ``pending`` lists the orders reserved or sent to the
    bridge and not yet answered (they count as positions). ``quotes`` are the agent's own
    bridge's: its positions' open risk is priced on them (``RiskContext.prices`` for
    symbols it has none of). ``unreadable`` counts the rows of its bridge's last
    ``/positions`` answer the hub could not read: positions of unknown risk, so while any
    agent has one, no risk can be added anywhere (the total exposure is unknown).
    """

    config: AgentConfig
    balance: float
    equity: float
    start_of_day_equity: float
    positions: list[Position] = []
    pending: list[PendingOrder] = []
    halted: bool = False
    quotes: Mapping[str, Quote] = {}
    unreadable: int = 0

    @property
    def in_flight(self) -> int:
        """How many orders are pending (reserved or in flight)."""
        return len(self.pending)

    @property
    def per_trade_budget(self) -> float:
        """``max_risk_per_trade`` x balance, in the account currency."""
        return self.config.risk.max_risk_per_trade * max(self.balance, 0.0)


class RiskContext(msgspec.Struct, frozen=True, kw_only=True):
    """The whole hub at one instant.

    ``agents`` holds EVERY agent (the global checks sum over all of them), keyed by
    agent id. ``prices`` maps symbol -> current quote. ``emergency_stop`` is the live
    kill-switch flag (``GlobalRisk.emergency_stop_all`` is only its value at start).
    ``correlation`` is usually ``ReturnsWindow.correlation`` (per bridge); None skips that
    check.
    """

    agents: Mapping[str, AgentBook]
    specs: Mapping[str, SymbolSpec]
    prices: Mapping[str, Quote]
    global_risk: GlobalRisk = GlobalRisk()
    emergency_stop: bool = False
    correlation: CorrelationLookup | None = None

    def book(self, agent_id: str) -> AgentBook:
        try:
            return self.agents[agent_id]
        except KeyError:
            raise ValueError(f"agent: unknown agent {agent_id!r}") from None
