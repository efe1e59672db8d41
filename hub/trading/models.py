"""Trading command structs (the request of each op in ``hub/api/commands.py``, the same
over the socket and REST) and order events."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

__all__ = [
    "CloseAllRequest",
    "CloseRequest",
    "EmergencyRequest",
    "LiftHaltRequest",
    "ModifyRequest",
    "OrderEvent",
    "Reservation",
    "ResumeRequest",
    "SignalRequest",
    "TradeRequest",
]

Lots = Annotated[float, Meta(gt=0, le=10_000)]
Level = Annotated[float, Meta(ge=0, le=1e9)]  # 0 means "no stop", as in MT4
Comment = Annotated[str, Meta(max_length=200)]
OrderId = Annotated[str, Meta(min_length=1, max_length=64)]
Ticket = Annotated[int, Meta(ge=0, le=2**63 - 1)]


class _Body(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class TradeRequest(_Body, frozen=True, kw_only=True):
    symbol: Annotated[str, Meta(min_length=1, max_length=20)]
    action: Literal["buy", "sell"]
    lots: Lots
    sl: Level | None = None
    tp: Level | None = None
    comment: Comment = ""
    client_order_id: OrderId | None = None
    dry_run: bool = False  # check only: nothing is sent, reserved or recorded


class CloseRequest(_Body, frozen=True, kw_only=True):
    ticket: Ticket
    lots: Lots | None = None


class ModifyRequest(_Body, frozen=True, kw_only=True):
    ticket: Ticket
    sl: Level | None = None
    tp: Level | None = None


class CloseAllRequest(_Body, frozen=True, kw_only=True):
    pass


class ResumeRequest(_Body, frozen=True, kw_only=True):
    pass


class LiftHaltRequest(_Body, frozen=True, kw_only=True):
    reason: Comment | None = None


class EmergencyRequest(_Body, frozen=True, kw_only=True):
    reason: Comment | None = None
    close_positions: bool = False


class SignalRequest(_Body, frozen=True, kw_only=True):
    signal_id: OrderId
    symbol: Annotated[str, Meta(min_length=1, max_length=20)]
    direction: Literal["long", "short"]
    confidence: Annotated[float, Meta(ge=0, le=1)]
    sl: Level
    tp: Level | None = None
    agents: list[str] | None = None
    strategy: str | None = None
    entry: Level | None = None  # the price the model saw; recorded, sizing uses the live quote


class Reservation(msgspec.Struct, frozen=True, kw_only=True):
    """An order checked and not yet among the bridge's positions: its risk counts for every
    agent's global checks (exposure, correlation) until the fill is visible, on every
    instance. ``expires`` (epoch ms) frees it should its holder die."""

    id: str
    agent_id: str
    symbol: str
    action: Literal["buy", "sell"]
    lots: float
    sl: float | None
    entry: float
    expires: int


class OrderEvent(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Payload of ``agent:{id}:orders``."""

    event: Literal["accepted", "rejected", "filled", "closed", "modified", "failed", "risk_breach"]
    agent_id: str
    command: str
    client_order_id: str | None = None
    ticket: int | None = None
    symbol: str | None = None
    action: str | None = None
    lots: float | None = None
    price: float | None = None
    sl: float | None = None
    tp: float | None = None
    profit: float | None = None
    signal_id: str | None = None
    comment: str | None = None
    open_time: int | None = None
    reason: str | None = None
    error: dict[str, Any] | None = None
    by: str | None = None
