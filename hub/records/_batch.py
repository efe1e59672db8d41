"""Split a batch of records into what each engine writes with one statement.

Inserts of ticks, logs, signals and equity snapshots don't depend on each other,
so they are grouped by kind (keeping their order within a kind). Of the updates of one
candle only the last (the one with the most ticks) is written. Trade records
change one row in sequence, so they stay in order, in runs of the same type.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from hub.records.records import (
    CandleRecord,
    EquitySnapshot,
    LogRecord,
    Record,
    SignalRecord,
    TickRecord,
    TradeRecord,
)

__all__ = ["Plan", "plan"]


@dataclass
class Plan:
    ticks: list[TickRecord] = field(default_factory=list)
    logs: list[LogRecord] = field(default_factory=list)
    signals: list[SignalRecord] = field(default_factory=list)
    equity: list[EquitySnapshot] = field(default_factory=list)
    trade_runs: list[list[TradeRecord]] = field(default_factory=list)
    candles: dict[str, CandleRecord] = field(default_factory=dict)  # the last per bar


def plan(records: Sequence[Record]) -> Plan:
    """Group ``records`` for batched writing (see the module docstring)."""
    out = Plan()
    for r in records:
        if isinstance(r, TickRecord):
            out.ticks.append(r)
        elif isinstance(r, LogRecord):
            out.logs.append(r)
        elif isinstance(r, SignalRecord):
            out.signals.append(r)
        elif isinstance(r, CandleRecord):
            held = out.candles.get(r.record_key)
            if held is None or r.ticks >= held.ticks:
                out.candles[r.record_key] = r
        elif isinstance(r, EquitySnapshot):
            out.equity.append(r)
        elif out.trade_runs and type(out.trade_runs[-1][0]) is type(r):
            out.trade_runs[-1].append(r)
        else:
            out.trade_runs.append([r])
    return out
