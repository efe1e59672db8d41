"""Records: what the hub hands to the :class:`~hub.records.writer.RecordWriter`.

Each record is a frozen msgspec Struct tagged by ``kind`` (so the spool can hold
any of them, one JSON line each) and has a ``record_key`` that is unique per row:
writing the same record twice (a spool replayed after a crash) never doubles a row.

- :class:`TradeOpened` inserts an ``agent_trades`` row: status ``accepted`` (or at
  once ``open``, ``rejected``, ``failed``).
- :class:`TradeUpdated` moves its status forward (``open`` - a fill, or a modify of
  the stops - ``rejected``, ``failed``).
- :class:`TradeClosed` completes it from the bridge's history (and inserts it when
  the hub never saw the open: a position placed by hand in MT4).
- :class:`LogRecord` inserts an ``agent_logs`` row.
- :class:`SignalRecord` inserts a ``signals`` row; a later record for the same
  ``signal_id`` adds its ``outcome``.
- :class:`EquitySnapshot` inserts an ``equity_snapshots`` row, :class:`TickRecord` a
  ``ticks`` row.
- :class:`CandleRecord` upserts a ``candles`` row (one per agent, symbol, tf and open
  time); a bar only moves forward (a record with fewer ticks than the row changes nothing).

Times are epoch milliseconds. Trade statuses only move forward
(``accepted`` -> ``open`` -> ``closed``; ``accepted`` -> ``rejected`` | ``failed``), so an
update replayed out of date never rewinds a row.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

import msgspec

from channels.clock import now_ms

__all__ = [
    "Action",
    "CandleRecord",
    "EquitySnapshot",
    "LogRecord",
    "Record",
    "SignalRecord",
    "TickRecord",
    "TradeClosed",
    "TradeOpened",
    "TradeRecord",
    "TradeStatus",
    "TradeUpdated",
    "decode_record",
    "encode_record",
]

Action = Literal["buy", "sell"]
TradeStatus = Literal["accepted", "open", "closed", "rejected", "failed"]


def _new_key() -> str:
    return uuid.uuid4().hex


class _Record(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind"):
    pass


class TradeOpened(_Record, frozen=True, kw_only=True, tag="trade_opened"):
    """A trade row is created: the order passed risk (``accepted``) or ended at once."""

    agent_id: str
    client_order_id: str
    symbol: str
    action: Action
    lots: float
    stop_loss: float | None = None
    take_profit: float | None = None
    comment: str = ""
    signal_id: str | None = None
    status: Literal["accepted", "open", "rejected", "failed"] = "accepted"
    ticket: int | None = None
    open_price: float | None = None
    open_time: int | None = None
    created_at: int = msgspec.field(default_factory=now_ms)

    @property
    def record_key(self) -> str:
        return f"trade:{self.client_order_id}"


class TradeUpdated(_Record, frozen=True, kw_only=True, tag="trade_updated"):
    """A trade's status moves forward; ``None`` fields keep their stored value.

    ``open`` applies to an ``accepted`` or ``open`` row (a fill, or a modify of the
    stops); ``rejected`` and ``failed`` apply to an ``accepted`` row only.
    """

    agent_id: str
    client_order_id: str
    status: Literal["open", "rejected", "failed"]
    ticket: int | None = None
    lots: float | None = None
    open_price: float | None = None
    open_time: int | None = None
    stop_loss: float | None = None
    take_profit: float | None = None
    created_at: int = msgspec.field(default_factory=now_ms)

    @property
    def record_key(self) -> str:
        return f"trade:{self.client_order_id}:{self.status}:{self.created_at}"


class TradeClosed(_Record, frozen=True, kw_only=True, tag="trade_closed"):
    """A position closed (from the bridge's history): completes its trade row.

    The row is found by ``(agent_id, ticket)`` or ``client_order_id``; a position the
    hub never opened (placed by hand in MT4) gets a new ``closed`` row.
    """

    agent_id: str
    ticket: int
    symbol: str
    action: Action
    lots: float
    open_price: float
    close_price: float
    profit: float
    open_time: int
    close_time: int
    stop_loss: float | None = None
    take_profit: float | None = None
    comment: str = ""
    client_order_id: str | None = None
    signal_id: str | None = None
    created_at: int = msgspec.field(default_factory=now_ms)

    @property
    def record_key(self) -> str:
        return f"trade:{self.agent_id}:ticket:{self.ticket}"


class LogRecord(_Record, frozen=True, kw_only=True, tag="log"):
    """One ``agent_logs`` row: a command, risk decision, status change, emergency..."""

    agent_id: str | None
    event_type: str
    message: str
    metadata: dict[str, Any] = {}
    created_at: int = msgspec.field(default_factory=now_ms)
    record_key: str = msgspec.field(default_factory=_new_key)


class SignalRecord(_Record, frozen=True, kw_only=True, tag="signal"):
    """A received signal; ``outcome`` is its routing result once known."""

    signal_id: str
    symbol: str
    direction: str
    confidence: float | None = None
    sl: float | None = None
    tp: float | None = None
    payload: dict[str, Any] = {}
    outcome: dict[str, Any] | None = None
    created_at: int = msgspec.field(default_factory=now_ms)

    @property
    def record_key(self) -> str:
        return f"signal:{self.signal_id}"


class EquitySnapshot(_Record, frozen=True, kw_only=True, tag="equity"):
    """An agent's account at one moment (the publisher sends at most one a second)."""

    agent_id: str
    balance: float
    equity: float
    margin: float
    profit: float
    created_at: int = msgspec.field(default_factory=now_ms)

    @property
    def record_key(self) -> str:
        return f"equity:{self.agent_id}:{self.created_at}"


class TickRecord(_Record, frozen=True, kw_only=True, tag="tick"):
    """A tick the hub published (``time``: the tick's epoch ms)."""

    agent_id: str
    symbol: str
    bid: float
    ask: float
    time: int

    @property
    def record_key(self) -> str:
        return f"tick:{self.agent_id}:{self.symbol}:{self.time}"


class CandleRecord(_Record, frozen=True, kw_only=True, tag="candle"):
    """A bar of the bid as it stands after a tick (see :mod:`hub.candles`)."""

    agent_id: str
    symbol: str
    tf: str
    t: int
    o: float
    h: float
    l: float  # noqa: E741 - the wire name
    c: float
    ticks: int

    @property
    def record_key(self) -> str:
        return f"candle:{self.agent_id}:{self.symbol}:{self.tf}:{self.t}"


TradeRecord = TradeOpened | TradeUpdated | TradeClosed
Record = (
    TradeOpened
    | TradeUpdated
    | TradeClosed
    | LogRecord
    | SignalRecord
    | EquitySnapshot
    | TickRecord
    | CandleRecord
)

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Record)


def encode_record(record: Record) -> bytes:
    """One record as JSON (with its ``kind``), as the spool stores it."""
    return _encoder.encode(record)


def decode_record(data: bytes | str) -> Record:
    """The inverse of :func:`encode_record`; raises ``msgspec.DecodeError``."""
    record: Record = _decoder.decode(data)
    return record
