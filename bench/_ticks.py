"""Synthetic ticks at a controlled rate, stamped with their scheduled time.

Every server under test (the hub and each baseline) injects through :func:`inject`,
so the offered load is the same. A tick's ``time`` is its *scheduled* publish time in
epoch **microseconds** (not the ms of real ticks), so receivers measure
publish-to-receive latency without coordinated omission: when the server falls
behind, the backlog is published at once and its lateness counts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import msgspec

__all__ = ["SYMBOLS", "InjectStats", "Publish", "event_frame", "inject", "tick_fields"]

SYMBOLS = ("XAUUSD", "EURUSD", "GBPUSD", "USDJPY")
_BASE = {"XAUUSD": 2650.0, "EURUSD": 1.085, "GBPUSD": 1.27, "USDJPY": 151.0}
_STEP = {"XAUUSD": 0.01, "EURUSD": 0.00001, "GBPUSD": 0.00001, "USDJPY": 0.001}
_SPREAD = {"XAUUSD": 0.3, "EURUSD": 0.00012, "GBPUSD": 0.00015, "USDJPY": 0.015}
_MAX_BURST = 10_000

Publish = Callable[[int, str, float, float, int], Awaitable[None]]
"""``publish(i, symbol, bid, ask, time_us)``."""


class InjectStats(msgspec.Struct, frozen=True, kw_only=True):
    sent: int
    seconds: float
    max_lag_ms: float


class _Data(msgspec.Struct, frozen=True, kw_only=True):
    symbol: str
    bid: float
    ask: float
    time: int


class _Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="event"):
    ch: str
    seq: int
    ts: int
    data: _Data


_encode = msgspec.json.Encoder().encode


def tick_fields(i: int) -> tuple[str, float, float]:
    """Symbol, bid and ask of the ``i``-th synthetic tick (symbols rotate)."""
    symbol = SYMBOLS[i % len(SYMBOLS)]
    digits = 5 if symbol in ("EURUSD", "GBPUSD") else (3 if symbol == "USDJPY" else 2)
    bid = round(_BASE[symbol] + (i % 97) * _STEP[symbol], digits)
    return symbol, bid, round(bid + _SPREAD[symbol], digits)


def event_frame(channel: str, seq: int, symbol: str, bid: float, ask: float, time_us: int) -> str:
    """The same ``event`` frame the hub sends, for the baselines (encoded once per tick)."""
    data = _Data(symbol=symbol, bid=bid, ask=ask, time=time_us)
    return _encode(_Event(ch=channel, seq=seq, ts=time.time_ns() // 1_000_000, data=data)).decode()


async def inject(publish: Publish, rate: float, duration: float) -> InjectStats:
    """Publish ``rate`` ticks/s for ``duration`` s; a backlog goes out at once (≤ 10k/burst)."""
    if rate <= 0 or duration <= 0:
        raise ValueError(f"rate and duration: must be > 0, got {rate} and {duration}")
    total = max(1, round(rate * duration))
    start = time.monotonic()
    wall_us = time.time_ns() // 1000
    sent = 0
    max_lag = 0.0
    while sent < total:
        due = min(total, int((time.monotonic() - start) * rate) + 1, sent + _MAX_BURST)
        max_lag = max(max_lag, time.monotonic() - (start + sent / rate))
        while sent < due:
            symbol, bid, ask = tick_fields(sent)
            await publish(sent, symbol, bid, ask, wall_us + int(sent * 1e6 / rate))
            sent += 1
        # At least 1 ms: under uvloop a shorter sleep returns at once, and the injector would
        # spin the hub's core; what falls due meanwhile goes out in the next burst.
        await asyncio.sleep(max(0.001, start + sent / rate - time.monotonic()))
    return InjectStats(sent=sent, seconds=time.monotonic() - start, max_lag_ms=max_lag * 1e3)
