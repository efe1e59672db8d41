"""Daily loss limits that hold across restarts and instances: the day's start and its halt.

Per agent and UTC day, a :class:`DayRecord` holds the start-of-day equity — the first
equity read at or after 00:00 UTC, fixed once (the first instance to store it wins) —
and, once the day's loss reaches ``max_daily_loss`` x that equity, the halt: the agent
stays ``halted`` until 00:00 UTC even if equity recovers. Only an admin lifts a halt early
(``lift_halt``, logged); that helps once equity is back above the limit — while the loss is
still at or past it, the next equity read halts the agent again.

The records live in the coordination store (a file in the data dir; Redis, with a copy on
each instance's disk, when configured) and every change is journaled.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

import msgspec

from channels.clock import now_ms
from hub.agents import Registry
from hub.errors import HubError
from hub.trading.journal import Journal

__all__ = ["DailyLimits", "DayRecord", "DayStore", "utc_day"]

log = logging.getLogger("mt4hub.risk")

EPS = 1e-9


class DayRecord(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    day: str  # YYYY-MM-DD, UTC
    start_equity: float
    start_at: int  # epoch ms of the equity read that fixed it
    halted_at: int | None = None
    halted_loss: float | None = None
    lifted_by: str | None = None
    lifted_at: int | None = None

    @property
    def halted(self) -> bool:
        return self.halted_at is not None and self.lifted_at is None


class DayStore(Protocol):
    async def open_day(self, agent_id: str, record: DayRecord) -> DayRecord:
        """Store ``record`` unless the agent already has one for that day; the stored one."""

    async def save_day(self, agent_id: str, record: DayRecord) -> None: ...

    async def load_day(self, agent_id: str, day: str) -> DayRecord | None: ...


def utc_day(ms: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ms / 1000))


class DailyLimits:
    def __init__(
        self,
        store: DayStore,
        registry: Registry,
        journal: Journal,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.store = store
        self.registry = registry
        self.journal = journal
        self.clock = clock
        self._days: dict[str, DayRecord] = {}

    def record(self, agent_id: str) -> DayRecord | None:
        """Today's record of ``agent_id``, when one was read or stored today."""
        record = self._days.get(agent_id)
        if record is None or record.day != utc_day(self.clock()):
            return None
        return record

    def start_equity(self, agent_id: str, equity: float) -> float:
        record = self.record(agent_id)
        return record.start_equity if record is not None else equity

    def halted(self, agent_id: str) -> bool:
        record = self.record(agent_id)
        return record is not None and record.halted

    async def observe(self, agent_id: str, equity: float) -> DayRecord:
        """An equity read: fixes the day's start (once), records a halt when the loss
        reaches the limit. Cheap unless the day or the halt changes."""
        now = self.clock()
        record = self.record(agent_id)
        if record is None:
            fresh = DayRecord(day=utc_day(now), start_equity=equity, start_at=now)
            record = await self.store.open_day(agent_id, fresh)
            self._days[agent_id] = record
            if record == fresh:
                self.journal.log(
                    agent_id,
                    "day_start",
                    f"{agent_id} start-of-day equity {equity:.2f} for {record.day} (UTC)",
                    {"day": record.day, "start_equity": equity},
                )
        cfg = self.registry.agents[agent_id].config
        limit = cfg.risk.max_daily_loss * record.start_equity
        loss = max(0.0, record.start_equity - equity)
        if not record.halted and loss >= limit - EPS:
            record = msgspec.structs.replace(
                record, halted_at=now, halted_loss=round(loss, 2), lifted_by=None, lifted_at=None
            )
            await self.store.save_day(agent_id, record)
            self._days[agent_id] = record
            log.warning(
                "trading_halted agent=%s loss=%.2f limit=%.2f day=%s",
                agent_id,
                loss,
                limit,
                record.day,
            )
            self.journal.log(
                agent_id,
                "trading_halted",
                f"{agent_id} halted for {record.day}: lost {loss:.2f} of start-of-day equity "
                f"{record.start_equity:.2f}, limit {limit:.2f}",
                {"day": record.day, "loss": round(loss, 2), "limit": round(limit, 2)},
            )
        return record

    async def refresh(self, agent_id: str) -> None:
        """Re-read today's record (another instance may have halted or lifted it)."""
        day = utc_day(self.clock())
        record = await self.store.load_day(agent_id, day)
        if record is not None:
            self._days[agent_id] = record

    async def lift(self, agent_id: str, *, by: str, reason: str | None = None) -> dict[str, Any]:
        """An admin lifts today's halt early (logged)."""
        record = self.record(agent_id)
        if record is None or not record.halted:
            raise HubError("bad_request", f"agent: {agent_id} is not halted today")
        record = msgspec.structs.replace(record, lifted_by=by, lifted_at=self.clock())
        await self.store.save_day(agent_id, record)
        self._days[agent_id] = record
        log.warning("halt_lifted agent=%s by=%s day=%s reason=%r", agent_id, by, record.day, reason)
        self.journal.log(
            agent_id,
            "halt_lifted",
            f"{agent_id}'s daily-loss halt for {record.day} lifted early by {by}: "
            f"{reason or 'no reason'}",
            {"day": record.day, "by": by, "reason": reason, "halted_loss": record.halted_loss},
        )
        return {"agent_id": agent_id, "day": record.day, "halted": False, "lifted_by": by}
