"""What the hub knows about each agent: its config, bridge client, last polled state, loop stats.

The pollers write it, REST reads it, the summary is computed from it. No I/O here.
"""

from __future__ import annotations

import time
from typing import Literal

import msgspec

from channels.clock import now_ms
from hub.bridge.client import BridgeClient
from hub.bridge.models import Account, Position, Tick
from hub.bridge.profile import load_profile
from hub.config import AgentConfig, HubConfig
from hub.risk import TradingState

__all__ = [
    "AgentRuntime",
    "AgentStatus",
    "AgentSummary",
    "GlobalSummary",
    "LoopStats",
    "Registry",
]


class AgentStatus(msgspec.Struct, frozen=True, kw_only=True):
    """Payload of ``agent:{id}:status``."""

    status: Literal["online", "offline"]
    trading: TradingState
    latency_ms: float | None
    error: str | None
    since: int
    stale: list[str]


class AgentSummary(msgspec.Struct, frozen=True, kw_only=True):
    agent_id: str
    name: str
    status: str
    balance: float
    equity: float
    profit: float
    open_positions: int
    strategy: str


class GlobalSummary(msgspec.Struct, frozen=True, kw_only=True):
    total_balance: float
    total_equity: float
    total_profit: float
    total_positions: int
    agents_online: int
    agents_offline: int
    agents: list[AgentSummary]


class LoopStats(msgspec.Struct, kw_only=True):
    polls: int = 0
    errors: int = 0
    consecutive_errors: int = 0
    last_success: int | None = None
    last_error: str | None = None
    latency_ms: float | None = None
    running: bool = False


class AgentRuntime:
    """Mutable live state of one agent."""

    def __init__(self, agent_id: str, config: AgentConfig, client: BridgeClient) -> None:
        self.id = agent_id
        self.config = config
        self.client = client
        self.online = False
        self.error: str | None = "not polled yet"
        self.status_since = now_ms()
        self.account: Account | None = None
        self.positions: list[Position] = []
        # Bumped by every command that changes positions: a poll whose read started before
        # a fill or close must not overwrite what the command wrote after it.
        self.positions_version = 0
        # Rows of the bridge's last /positions answer that could not be read (positions of
        # unknown risk: docs/bridges.md); mirrored from the channel for other instances'.
        self.unreadable = 0
        self.ticks: dict[str, Tick] = {}
        self.tick_read_at: dict[str, float] = {}  # monotonic s of the hub's last read per symbol
        self.started = time.monotonic()
        self.price_changed_at: dict[str, float] = {}  # monotonic seconds
        self.stats = LoopStats()
        self.trading: TradingState = "active" if config.enabled else "disabled"

    def held(self, positions: list[Position]) -> list[Position]:
        """``positions`` as the bridge just answered them, plus the positions read before
        whose rows it answered unreadable this time: such a position is not gone, it stays
        (shown, and counted by every agent's risk checks) until the bridge answers whole.
        Notes how many rows were unreadable (``unreadable``)."""
        self.unreadable = self.client.skipped["positions"].bad
        if not self.unreadable:
            return positions
        readable = {p.ticket for p in positions}
        return positions + [p for p in self.positions if p.ticket not in readable]

    def set_positions(self, positions: list[Position]) -> None:
        """Positions as a command (or a read under the command lock) left them."""
        self.positions = positions
        self.positions_version += 1

    def stale_symbols(self, stale_after: float, now: float) -> list[str]:
        """Symbols whose price has not changed for ``stale_after`` seconds (or never arrived)."""
        return [
            s
            for s in self.config.symbols
            if now - self.price_changed_at.get(s, self.started) > stale_after
        ]

    def status(self, stale_after: float, now: float) -> AgentStatus:
        return AgentStatus(
            status="online" if self.online else "offline",
            trading=self.trading,
            latency_ms=self.stats.latency_ms,
            error=self.error,
            since=self.status_since,
            stale=self.stale_symbols(stale_after, now) if self.online else [],
        )

    def summary(self) -> AgentSummary:
        acc = self.account
        return AgentSummary(
            agent_id=self.id,
            name=self.config.name,
            status="online" if self.online else "offline",
            balance=acc.balance if acc else 0.0,
            equity=acc.equity if acc else 0.0,
            profit=acc.profit if acc else 0.0,
            open_positions=len(self.positions),
            strategy=self.config.strategy,
        )


class Registry:
    """All agents, in config order."""

    def __init__(self, config: HubConfig) -> None:
        self.config = config
        self.agents: dict[str, AgentRuntime] = {
            agent_id: AgentRuntime(
                agent_id,
                agent,
                BridgeClient(
                    agent.bridge_http_url,
                    timeout=config.polling.timeout,
                    trade_timeout=config.polling.trade_timeout,
                    profile=load_profile(agent.bridge_profile),
                    symbols=agent.symbol_names,
                    timezone=agent.server_timezone,
                    name=agent_id,
                ),
            )
            for agent_id, agent in config.agents.items()
        }

    def get(self, agent_id: str) -> AgentRuntime | None:
        return self.agents.get(agent_id)

    def summary(self, only: frozenset[str] | None = None) -> GlobalSummary:
        """Totals over every agent, or over ``only`` (a token limited to some agents)."""
        rows = [a.summary() for a in self.agents.values() if only is None or a.id in only]
        online = sum(1 for r in rows if r.status == "online")
        return GlobalSummary(
            total_balance=round(sum(r.balance for r in rows), 2),
            total_equity=round(sum(r.equity for r in rows), 2),
            total_profit=round(sum(r.profit for r in rows), 2),
            total_positions=sum(r.open_positions for r in rows),
            agents_online=online,
            agents_offline=len(rows) - online,
            agents=rows,
        )

    async def close(self) -> None:
        for agent in self.agents.values():
            await agent.client.close()
