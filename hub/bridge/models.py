"""The EA Bridge REST contract: what an MT4 Expert Advisor (or the simulator) speaks.

| call | body | answer |
|---|---|---|
| ``GET /account`` | | :class:`Account` |
| ``GET /tick/{symbol}`` | | :class:`Tick` (404 ``{"error"}`` for an unknown symbol) |
| ``GET /positions`` | | ``[Position, ...]`` |
| ``POST /trade`` | :class:`TradeOrder` | :class:`Position` (the filled order) |
| ``POST /close`` | :class:`CloseOrder` | :class:`ClosedTrade` |
| ``POST /modify`` | :class:`ModifyOrder` | :class:`Position` |
| ``GET /history`` | ``?since=ms`` optional | ``[ClosedTrade, ...]`` oldest first |

That is the built-in bridge profile ``mt4hub``; other bridges are read through their
profile (:mod:`hub.bridge.profile`, :mod:`hub.bridge.dialect`) into these same structs.
Times are epoch milliseconds. Errors are ``{"error": "message"}`` with a 4xx
status for a refused order (bad stops, unknown ticket) and 5xx for a failure.
Bridge payloads tolerate unknown fields (a newer EA may add some).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

__all__ = [
    "Account",
    "Action",
    "BridgeErrorBody",
    "CloseOrder",
    "ClosedTrade",
    "ModifyOrder",
    "Position",
    "PositionList",
    "Tick",
    "TradeOrder",
]

Action = Literal["buy", "sell"]
Price = Annotated[float, Meta(gt=0)]
Lots = Annotated[float, Meta(gt=0)]


class Tick(msgspec.Struct, frozen=True, kw_only=True):
    symbol: str
    bid: Price
    ask: Price
    time: Annotated[int, Meta(gt=0)]  # epoch ms


class Account(msgspec.Struct, frozen=True, kw_only=True):
    balance: float
    equity: float
    margin: float
    free_margin: float
    profit: float
    currency: str = "USD"
    leverage: int = 100


class Position(msgspec.Struct, frozen=True, kw_only=True):
    ticket: int
    symbol: str
    action: Action
    lots: Lots
    open_price: Price
    sl: float | None = None
    tp: float | None = None
    profit: float = 0.0
    open_time: int = 0
    comment: str = ""


class PositionList(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Payload of ``agent:{id}:positions`` (and ``GET …/positions``): the full list.

    ``unreadable`` (left out when 0): rows of the bridge's last ``/positions`` answer the
    hub could not read, each maybe an open position missing from ``positions`` (while it
    is not 0, no risk is added on any agent: docs/bridges.md)."""

    positions: list[Position]
    unreadable: int = 0


class ClosedTrade(msgspec.Struct, frozen=True, kw_only=True):
    ticket: int
    symbol: str
    action: Action
    lots: Lots
    open_price: Price
    close_price: Price
    sl: float | None = None
    tp: float | None = None
    profit: float = 0.0
    open_time: int = 0
    close_time: int = 0
    comment: str = ""
    reason: str = "close"  # close | sl | tp | stop_out


class TradeOrder(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    symbol: str
    action: Action
    lots: Lots
    sl: float | None = None
    tp: float | None = None
    comment: str = ""


class CloseOrder(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    ticket: int
    lots: Lots | None = None


class ModifyOrder(msgspec.Struct, frozen=True, kw_only=True):
    ticket: int
    sl: float | None = None
    tp: float | None = None


class BridgeErrorBody(msgspec.Struct, frozen=True, kw_only=True):
    error: str
