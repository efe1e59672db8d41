"""The journal: order events, closes, signals and agent publications become records.

The trading service calls it synchronously on every decision (never awaits); it turns
:class:`OrderEvent` s into ``agent_trades`` rows (accepted → filled/failed → closed) and
``agent_logs`` rows, through the records writer's non-blocking ``submit``.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import msgspec

from channels.clock import now_ms
from hub.agents import AgentStatus
from hub.bridge.models import Account, ClosedTrade, Tick
from hub.records import (
    EquitySnapshot,
    LogRecord,
    Record,
    SignalRecord,
    TickRecord,
    TradeClosed,
    TradeOpened,
    TradeUpdated,
)
from hub.trading.models import OrderEvent, SignalRequest

__all__ = ["Journal", "RecordsJournal", "Submit"]

log = logging.getLogger("mt4hub.journal")


class Submit(Protocol):
    def __call__(self, record: Record) -> None: ...


class Journal(Protocol):
    def published(self, agent_id: str, data: object) -> None: ...

    def log(
        self, agent_id: str | None, event_type: str, message: str, metadata: dict[str, Any]
    ) -> None: ...

    def order(
        self, event: OrderEvent, event_type: str, message: str, metadata: dict[str, Any]
    ) -> None: ...

    def trade_closed(
        self, agent_id: str, trade: ClosedTrade, client_order_id: str | None
    ) -> None: ...

    def signal(self, sig: SignalRequest, routes: list[dict[str, Any]], by: str) -> None: ...


class RecordsJournal:
    def __init__(self, submit: Submit) -> None:
        self._submit = submit
        self._equity_at: dict[str, int] = {}

    def published(self, agent_id: str, data: object) -> None:
        """What the hub publishes on agent channels: every tick, equity at most once a
        second, and each status change."""
        if isinstance(data, Tick):
            self._submit(
                TickRecord(
                    agent_id=agent_id,
                    symbol=data.symbol,
                    bid=data.bid,
                    ask=data.ask,
                    time=data.time,
                )
            )
        elif isinstance(data, Account):
            now = now_ms()
            if now - self._equity_at.get(agent_id, 0) >= 1000:
                self._equity_at[agent_id] = now
                self._submit(
                    EquitySnapshot(
                        agent_id=agent_id,
                        balance=data.balance,
                        equity=data.equity,
                        margin=data.margin,
                        profit=data.profit,
                        created_at=now,
                    )
                )
        elif isinstance(data, AgentStatus):
            error = f": {data.error}" if data.error else ""
            self.log(
                agent_id,
                "status_changed",
                f"{data.status}, trading {data.trading}{error}",
                {
                    "status": data.status,
                    "trading": data.trading,
                    "error": data.error,
                    "stale": data.stale,
                },
            )

    def log(
        self, agent_id: str | None, event_type: str, message: str, metadata: dict[str, Any]
    ) -> None:
        log.info("%s agent=%s %s", event_type, agent_id, message)
        self._submit(
            LogRecord(agent_id=agent_id, event_type=event_type, message=message, metadata=metadata)
        )

    def order(
        self, event: OrderEvent, event_type: str, message: str, metadata: dict[str, Any]
    ) -> None:
        self.log(event.agent_id, event_type, message, metadata)
        coid = event.client_order_id
        if event.command != "trade" or coid is None:
            return
        if event.event == "accepted":
            self._submit(
                TradeOpened(
                    agent_id=event.agent_id,
                    client_order_id=coid,
                    symbol=event.symbol or "",
                    action="sell" if event.action == "sell" else "buy",
                    lots=event.lots or 0.0,
                    stop_loss=event.sl,
                    take_profit=event.tp,
                    comment=event.comment or "",
                    signal_id=event.signal_id,
                )
            )
        elif event.event in ("filled", "failed"):
            self._submit(
                TradeUpdated(
                    agent_id=event.agent_id,
                    client_order_id=coid,
                    status="open" if event.event == "filled" else "failed",
                    ticket=event.ticket,
                    lots=event.lots,
                    open_price=event.price,
                    open_time=event.open_time,
                    stop_loss=event.sl,
                    take_profit=event.tp,
                )
            )

    def trade_closed(self, agent_id: str, trade: ClosedTrade, client_order_id: str | None) -> None:
        self._submit(
            TradeClosed(
                agent_id=agent_id,
                ticket=trade.ticket,
                symbol=trade.symbol,
                action=trade.action,
                lots=trade.lots,
                open_price=trade.open_price,
                close_price=trade.close_price,
                profit=trade.profit,
                open_time=trade.open_time,
                close_time=trade.close_time,
                stop_loss=trade.sl,
                take_profit=trade.tp,
                comment=trade.comment,
                client_order_id=client_order_id,
            )
        )

    def signal(self, sig: SignalRequest, routes: list[dict[str, Any]], by: str) -> None:
        outcomes = ",".join(f"{r['agent']}:{r['outcome']}" for r in routes)
        log.info("signal id=%s symbol=%s routes=%s by=%s", sig.signal_id, sig.symbol, outcomes, by)
        payload = msgspec.structs.asdict(sig)
        self._submit(
            SignalRecord(
                signal_id=sig.signal_id,
                symbol=sig.symbol,
                direction=sig.direction,
                confidence=sig.confidence,
                sl=sig.sl,
                tp=sig.tp,
                payload={**payload, "by": by},
                outcome={"routes": routes},
            )
        )
