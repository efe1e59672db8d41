"""Rows: what the store's queries return, ready to encode with msgspec.

Lists are newest first with keyset pagination (``before`` = the ``id`` of the last
row of the previous page) for trades, logs and signals; oldest first for equity
and ticks (chart series), and for candles (a page ends ``before`` a bar's open time).
:func:`check_page` validates the shared parameters.
"""

from __future__ import annotations

from typing import Any

import msgspec

from hub.records.errors import QueryError

__all__ = [
    "MAX_LIMIT",
    "CandleRow",
    "EquityRow",
    "LogRow",
    "SignalRow",
    "TickRow",
    "TradeRow",
    "check_page",
]

MAX_LIMIT = 10_000


class _Row(msgspec.Struct, frozen=True, kw_only=True):
    pass


class TradeRow(_Row, frozen=True, kw_only=True):
    id: int
    agent_id: str
    ticket: int | None
    symbol: str
    action: str
    lots: float
    open_price: float | None
    close_price: float | None
    stop_loss: float | None
    take_profit: float | None
    profit: float | None
    open_time: int | None
    close_time: int | None
    signal_id: str | None
    client_order_id: str | None
    status: str
    comment: str
    created_at: int
    record_key: str


class LogRow(_Row, frozen=True, kw_only=True):
    id: int
    agent_id: str | None
    event_type: str
    message: str
    metadata: dict[str, Any]
    created_at: int
    record_key: str


class SignalRow(_Row, frozen=True, kw_only=True):
    id: int
    signal_id: str
    symbol: str
    direction: str
    confidence: float | None
    sl: float | None
    tp: float | None
    payload: dict[str, Any]
    outcome: dict[str, Any] | None
    created_at: int
    record_key: str


class EquityRow(_Row, frozen=True, kw_only=True):
    id: int
    agent_id: str
    balance: float
    equity: float
    margin: float
    profit: float
    created_at: int
    record_key: str


class TickRow(_Row, frozen=True, kw_only=True):
    id: int
    agent_id: str
    symbol: str
    bid: float
    ask: float
    time: int
    record_key: str


class CandleRow(_Row, frozen=True, kw_only=True):
    """A bar as ``agent:{id}:candles`` publishes it (``t``: its open time, epoch ms)."""

    symbol: str
    tf: str
    t: int
    o: float
    h: float
    l: float  # noqa: E741 - the wire name
    c: float
    ticks: int


MAX_ID = 2**63 - 1  # a 64-bit row id (SQLite INTEGER, Postgres BIGINT)


def check_page(limit: int, before: int | None = None, *, max_limit: int = MAX_LIMIT) -> None:
    """Raise :class:`QueryError` naming ``limit`` or ``before`` when out of range."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= max_limit:
        raise QueryError(f"limit: must be an integer from 1 to {max_limit}, got {limit!r}")
    if before is not None and (
        isinstance(before, bool) or not isinstance(before, int) or not 1 <= before <= MAX_ID
    ):
        raise QueryError(f"before: must be a row id from 1 to {MAX_ID}, got {before!r}")
