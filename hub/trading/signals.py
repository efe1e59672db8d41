"""ML signals: route to the agents that trade the symbol, size each route, trade it.

Routing: enabled agents whose symbols include the signal's symbol, narrowed by the
signal's ``agents`` and ``strategy``; an agent whose ``min_confidence`` is above the
signal's confidence is ``skipped``. Each route is sized from the agent's risk budget
and the signal's SL, then goes through the same checks and execution as any trade, with
``client_order_id = "{signal_id}:{agent}"`` so a repeated signal never trades twice.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import msgspec

from channels.clock import now_ms
from channels.names import SIGNALS
from hub.bridge.models import Action
from hub.errors import HubError
from hub.risk import size_for_signal
from hub.trading.journal import Journal
from hub.trading.models import SignalRequest, TradeRequest
from hub.trading.risk_inputs import RiskInputs
from hub.trading.service import TradingService

__all__ = ["SignalRouter"]

log = logging.getLogger("mt4hub.signals")


class SignalRouter:
    def __init__(self, trading: TradingService, risk: RiskInputs, journal: Journal) -> None:
        self.trading = trading
        self.risk = risk
        self.journal = journal

    async def submit(self, sig: SignalRequest, *, by: str) -> dict[str, Any]:
        agents = self.trading.registry.agents
        for name in sig.agents or []:
            if name not in agents:
                raise HubError("bad_request", f"agents: unknown agent {name!r}")
        routes = await asyncio.gather(
            *(self._route(agent_id, sig, by) for agent_id in self._candidates(sig))
        )
        outcomes = list(routes)
        await self.trading.publisher.event(
            SIGNALS,
            {"signal": msgspec.structs.asdict(sig), "routes": outcomes, "by": by, "ts": now_ms()},
        )
        self.journal.signal(sig, outcomes, by)
        return {"signal_id": sig.signal_id, "routes": outcomes}

    def _candidates(self, sig: SignalRequest) -> list[str]:
        out = []
        for agent_id, agent in self.trading.registry.agents.items():
            cfg = agent.config
            if sig.symbol not in cfg.symbols:
                continue
            if sig.agents is not None and agent_id not in sig.agents:
                continue
            if sig.strategy is not None and cfg.strategy != sig.strategy:
                continue
            out.append(agent_id)
        return out

    async def _route(self, agent_id: str, sig: SignalRequest, by: str) -> dict[str, Any]:
        cfg = self.trading.registry.agents[agent_id].config
        if not cfg.enabled:
            return _skipped(agent_id, "agent_disabled", f"{agent_id} is disabled")
        if sig.confidence < cfg.risk.min_confidence:
            return _skipped(
                agent_id,
                "min_confidence",
                f"confidence {sig.confidence} below {agent_id}'s minimum {cfg.risk.min_confidence}",
            )
        action: Action = "buy" if sig.direction == "long" else "sell"
        sizing = size_for_signal(self.risk.context(agent_id), agent_id, sig.symbol, action, sig.sl)
        if not sizing.allowed or sizing.lots is None:
            error = {"code": "risk_rejected", "message": sizing.message}
            return {
                "agent": agent_id,
                "outcome": "rejected",
                "error": {**error, "details": sizing.details()},
            }
        req = TradeRequest(
            symbol=sig.symbol,
            action=action,
            lots=sizing.lots,
            sl=sig.sl,
            tp=sig.tp,
            comment=f"sig {sig.signal_id}"[:40],
            client_order_id=f"{sig.signal_id}:{agent_id}"[:64],
        )
        try:
            res = await self.trading.open(agent_id, req, by=by, signal_id=sig.signal_id)
        except HubError as exc:
            return {"agent": agent_id, "outcome": "rejected", "error": exc.body()["error"]}
        return {
            "agent": agent_id,
            "outcome": "executed",
            "ticket": res["ticket"],
            "lots": res["lots"],
        }


def _skipped(agent_id: str, check: str, message: str) -> dict[str, Any]:
    return {"agent": agent_id, "outcome": "skipped", "reason": check, "message": message}
