"""One supervised polling loop per agent: ticks, account and positions from its EA Bridge.

Each loop publishes a state channel only when its value changed, marks the agent
``offline`` with the error on a failure, retries with capped exponential backoff and
jitter, and goes back ``online`` by itself. A failing bridge only ever affects its own
agent: every loop is its own task and catches everything it does not understand.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable

from channels import cancellation
from channels.clock import now_ms
from hub.agents import AgentRuntime
from hub.bridge.client import BridgeError
from hub.bridge.models import Account, ClosedTrade, PositionList, Tick
from hub.config import PollingConfig
from hub.publisher import Publisher
from hub.risk import TradingState

__all__ = ["AgentPoller"]

log = logging.getLogger("mt4hub.polling")


class AgentPoller:
    """Polls one agent's bridge until cancelled."""

    def __init__(
        self,
        agent: AgentRuntime,
        polling: PollingConfig,
        publisher: Publisher,
        on_change: Callable[[AgentRuntime], None],
        *,
        trading_state: Callable[[str], TradingState] | None = None,
        on_history: Callable[[AgentRuntime, list[ClosedTrade]], Awaitable[None]] | None = None,
        on_account: Callable[[AgentRuntime, Account], Awaitable[None]] | None = None,
        on_tick: Callable[[str, Tick], Awaitable[None]] | None = None,
        on_start: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self.agent = agent
        self.cfg = polling
        self.publisher = publisher
        self.on_change = on_change  # account, positions or status changed (summary, risk)
        self.trading_state = trading_state  # active | halted | disabled | stopped
        self.on_history = on_history  # newly closed trades from the bridge's history
        self.on_account = on_account  # every account read (the day's start and halt)
        self.on_tick = on_tick  # every tick published (the candles)
        self.on_start = on_start  # this instance starts polling the agent (start, takeover)
        self._next_history = 0.0
        self._history_seen: set[int] = set()
        self._history_since = now_ms() - 86_400_000  # on start: closes of the last day
        self._next_account = 0.0
        self._status_key: tuple[object, ...] | None = None

    async def run(self) -> None:
        stats = self.agent.stats
        stats.running = True
        backoff = self.cfg.backoff_initial
        try:
            if self.on_start is not None:
                await self.on_start(self.agent.id)
            while True:
                started = time.monotonic()
                try:
                    await self.poll_once()
                except BridgeError as exc:
                    error = str(exc)
                except ConnectionError as exc:  # the broker (Redis) is away, not the bridge
                    log.warning("publish_failed agent=%s error=%r", self.agent.id, str(exc))
                    await cancellation.sleep(backoff * (0.5 + random.random() / 2))
                    backoff = min(backoff * 2, self.cfg.backoff_max)
                    continue
                except Exception as exc:  # a bug must not kill the loop: report it loudly
                    log.exception("poll_crashed agent=%s", self.agent.id)
                    error = f"internal error: {type(exc).__name__}: {exc}"
                else:
                    backoff = self.cfg.backoff_initial
                    elapsed = time.monotonic() - started
                    await cancellation.sleep(max(0.0, self.cfg.tick_interval - elapsed))
                    continue
                await self._failed(error)
                # Full jitter keeps many hubs from retrying a recovered bridge in lockstep.
                await cancellation.sleep(backoff * (0.5 + random.random() / 2))
                backoff = min(backoff * 2, self.cfg.backoff_max)
        finally:
            stats.running = False

    async def poll_once(self) -> None:
        agent, client = self.agent, self.agent.client
        started = time.perf_counter()
        due_account = time.monotonic() >= self._next_account
        version = agent.positions_version  # a command's write during the read wins
        ticks = asyncio.gather(*(client.tick(s) for s in agent.config.symbols))
        if due_account:
            account, positions, tick_list = await asyncio.gather(
                client.account(), client.positions(), ticks
            )
        else:
            tick_list = await ticks
        latency = round((time.perf_counter() - started) * 1000.0, 1)
        now = time.monotonic()
        changed = False
        for tick in tick_list:
            old = agent.ticks.get(tick.symbol)
            agent.ticks[tick.symbol] = tick
            agent.tick_read_at[tick.symbol] = now
            if old is None or (old.bid, old.ask) != (tick.bid, tick.ask):
                agent.price_changed_at[tick.symbol] = now
                await self.publisher.tick(agent.id, tick)
                if self.on_tick is not None:
                    await self.on_tick(agent.id, tick)
        if due_account:
            self._next_account = now + self.cfg.account_interval
            # Compared with the last value published on the channel — by this instance or,
            # with Redis, another one — so the first read and every change go out.
            agent.account = account
            changed |= await self.publisher.state(agent.id, "account", account)
            if agent.positions_version == version:  # else a command wrote newer positions
                agent.positions = positions = agent.held(positions)
                payload = PositionList(positions=positions, unreadable=agent.unreadable)
                changed |= await self.publisher.state(agent.id, "positions", payload)
            if self.on_account is not None:
                await self.on_account(agent, account)
        stats = agent.stats
        stats.polls += 1
        stats.consecutive_errors = 0
        stats.last_success = now_ms()
        stats.latency_ms = latency
        if not agent.online:
            agent.online = True
            agent.error = None
            agent.status_since = now_ms()
            log.info("agent_online agent=%s latency_ms=%s", agent.id, latency)
        if await self.publish_status() or changed:
            self.on_change(agent)
        if self.on_history is not None and now >= self._next_history:
            await self.poll_history(now)

    async def poll_history(self, now: float) -> None:
        assert self.on_history is not None
        trades = await self.agent.client.history(since_ms=self._history_since)
        self._next_history = now + self.cfg.history_interval
        fresh = [t for t in trades if t.close_time >= self._history_since]
        if fresh:
            # `since` is inclusive: keep the last close time and drop what was already seen.
            seen = self._history_seen
            new = [t for t in fresh if t.ticket not in seen]
            self._history_since = max(t.close_time for t in fresh)
            self._history_seen = {t.ticket for t in fresh if t.close_time == self._history_since}
            if new:
                await self.on_history(self.agent, new)

    async def _failed(self, error: str) -> None:
        agent = self.agent
        stats = agent.stats
        stats.errors += 1
        stats.consecutive_errors += 1
        stats.last_error = error
        if agent.online:
            agent.status_since = now_ms()
            log.warning("agent_offline agent=%s error=%r", agent.id, error)
        agent.online = False
        agent.error = error
        self._next_account = 0.0  # re-read account and positions on recovery
        if await self.publish_status():
            self.on_change(agent)

    async def publish_status(self) -> bool:
        """Publish ``agent:{id}:status`` when anything but the latency changed."""
        agent = self.agent
        if self.trading_state is not None:
            agent.trading = self.trading_state(agent.id)
        status = agent.status(self.cfg.stale_after, time.monotonic())
        key = (status.status, status.trading, status.error, tuple(status.stale))
        if key == self._status_key:
            return False
        await self.publisher.state(agent.id, "status", status)
        self._status_key = key
        return True
