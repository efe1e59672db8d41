"""Where trading writes its records: a log line per event, plus the records store when wired.

``Journal`` is what the trading service calls (never awaits); the records writer
implements it (``hub.records``), and ``LogJournal`` writes structured log lines only.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from hub.bridge.models import ClosedTrade, Position
from hub.trading.models import SignalRequest

__all__ = ["Journal", "LogJournal"]

log = logging.getLogger("mt4hub.journal")


class Journal(Protocol):
    def log(
        self, agent_id: str | None, event_type: str, message: str, metadata: dict[str, Any]
    ) -> None: ...

    def trade_opened(
        self,
        agent_id: str,
        client_order_id: str,
        position: Position,
        comment: str,
        signal_id: str | None,
    ) -> None: ...

    def trade_closed(self, agent_id: str, trade: ClosedTrade) -> None: ...

    def signal(self, sig: SignalRequest, routes: list[dict[str, Any]], by: str) -> None: ...


class LogJournal:
    def log(
        self, agent_id: str | None, event_type: str, message: str, metadata: dict[str, Any]
    ) -> None:
        log.info("%s agent=%s %s", event_type, agent_id, message)

    def trade_opened(
        self,
        agent_id: str,
        client_order_id: str,
        position: Position,
        comment: str,
        signal_id: str | None,
    ) -> None:
        log.info(
            "trade_opened agent=%s ticket=%s coid=%s", agent_id, position.ticket, client_order_id
        )

    def trade_closed(self, agent_id: str, trade: ClosedTrade) -> None:
        log.info("trade_closed agent=%s ticket=%s profit=%s", agent_id, trade.ticket, trade.profit)

    def signal(self, sig: SignalRequest, routes: list[dict[str, Any]], by: str) -> None:
        outcomes = ",".join(f"{r['agent']}:{r['outcome']}" for r in routes)
        log.info("signal id=%s symbol=%s routes=%s by=%s", sig.signal_id, sig.symbol, outcomes, by)
