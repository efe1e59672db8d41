"""The command service: open, close, modify, close-all, emergency stop and resume.

Every command for one agent runs under that agent's lock, so two concurrent trades can
never both pass ``max_positions``; orders sent and not answered yet count as positions.
A ``client_order_id`` makes a trade idempotent. A trade is never blindly retried: when
the bridge times out (or drops the connection) after the order was sent, the service
reconciles by looking for the order's comment tag in the bridge's positions and history
before answering, and answers ``bridge_timeout`` only when the outcome is truly unknown.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from typing import Any

import msgspec

from channels.names import SYSTEM, agent_channel
from hub.agents import AgentRuntime, Registry, Trading, now_ms
from hub.bridge.client import BridgeError, BridgeTimeout, BridgeUnavailable
from hub.bridge.models import ClosedTrade, CloseOrder, ModifyOrder, Position, TradeOrder
from hub.coordination import Coordination
from hub.errors import HubError
from hub.publisher import Publisher
from hub.risk import (
    AgentBook,
    DailyBaseline,
    ReturnsWindow,
    RiskContext,
    RiskDecision,
    check_modify,
    check_open,
    trading_state,
)
from hub.risk.checks import emergency_denial, enabled_denial
from hub.trading.emergency import EmergencyState
from hub.trading.journal import Journal
from hub.trading.models import CloseRequest, ModifyRequest, OrderEvent, TradeRequest
from hub.trading.reconcile import already_sent, closed_in_history, order_tag, send_order

__all__ = ["TradingService"]

log = logging.getLogger("mt4hub.trading")


class TradingService:
    def __init__(
        self,
        registry: Registry,
        publisher: Publisher,
        coordination: Coordination,
        journal: Journal,
    ) -> None:
        self.registry = registry
        self.config = registry.config
        self.publisher = publisher
        self.journal = journal
        self.coord = coordination
        self.emergency = EmergencyState()
        self.returns = ReturnsWindow(self.config.global_risk.correlation_window)
        self._baselines = {agent_id: DailyBaseline() for agent_id in registry.agents}
        self._in_flight = dict.fromkeys(registry.agents, 0)
        self._tickets: dict[tuple[str, int], str] = {}  # (agent, ticket) -> client_order_id
        self._closed_by_hub: set[tuple[str, int]] = set()
        self._started_ms = now_ms()

    async def start(self) -> None:
        """Load the kill switch: saved state wins; else ``emergency_stop_all`` from config.

        The state is then always saved, so that later its absence means it was lost."""
        saved = await self.coord.load_emergency() or await self.coord.load_emergency()
        if saved is None:  # (read twice: the first read may have restored a lost copy)
            if self.config.global_risk.emergency_stop_all:
                saved = EmergencyState(
                    stopped=True, reason="emergency_stop_all in config", by="config"
                )
            else:
                saved = EmergencyState()
            await self.coord.save_emergency(saved)
        self.emergency = saved
        if self.emergency.stopped:
            log.warning(
                "emergency_stop_active reason=%r by=%s", self.emergency.reason, self.emergency.by
            )

    async def refresh_emergency(self) -> None:
        """With other instances: pick up a stop or resume made elsewhere (periodically).

        A missing state was lost (Redis restarted without persistence and no instance has
        restored it from its copy yet): fail safe, as stopped, until one does."""
        self.emergency = await self.coord.load_emergency() or EmergencyState(
            stopped=True, reason="emergency state lost with Redis; restoring", by="hub"
        )

    async def _sync_shared_state(self, agent: AgentRuntime) -> None:
        """Under the agent's lock, when other instances trade too: the kill switch and the
        bridge's positions as they are now (another instance may just have filled one)."""
        if not self.coord.shared:
            return
        await self.refresh_emergency()
        try:
            agent.positions = await agent.client.positions()
        except BridgeError as exc:
            raise HubError(exc.code, f"{agent.id}: cannot read positions: {exc}") from None

    # -- state the risk engine sees ---------------------------------------------------

    def observe_tick(self, symbol: str, bid: float, ask: float, ts: int) -> None:
        self.returns.observe(symbol, bid, ask, ts)

    def context(self, agent_id: str | None = None) -> RiskContext:
        """The risk engine's view now; prices are ``agent_id``'s own bridge quotes first
        (brokers differ), then the other agents' for symbols it does not trade."""
        now = now_ms()
        books: dict[str, AgentBook] = {}
        prices: dict[str, Any] = {}
        for agent in self.registry.agents.values():
            if agent.id != agent_id:
                prices.update(agent.ticks)
        if agent_id is not None:
            prices.update(self.registry.agents[agent_id].ticks)
        for agent_id, agent in self.registry.agents.items():
            acc = agent.account
            balance = acc.balance if acc else 0.0
            equity = acc.equity if acc else 0.0
            start = self._baselines[agent_id].observe(equity, now) if acc else equity
            books[agent_id] = AgentBook(
                config=agent.config,
                balance=balance,
                equity=equity,
                start_of_day_equity=start,
                positions=list(agent.positions),
                in_flight=self._in_flight[agent_id],
            )
        return RiskContext(
            agents=books,
            specs=self.config.symbols,
            prices=prices,
            global_risk=self.config.global_risk,
            emergency_stop=self.emergency.stopped,
            correlation=self.returns.correlation,
        )

    async def history_seen(self, agent: AgentRuntime, trades: list[ClosedTrade]) -> None:
        """Closed trades read from the bridge's history (SL/TP hits, closes elsewhere):
        complete their records, and announce the ones the hub did not close itself."""
        for trade in trades:
            key = (agent.id, trade.ticket)
            coid = self._tickets.pop(key, None)
            self.journal.trade_closed(agent.id, trade, coid)
            if key in self._closed_by_hub:
                self._closed_by_hub.discard(key)
                continue
            if trade.close_time < self._started_ms:
                continue  # closed before this hub started: recorded, not news
            event = OrderEvent(
                event="closed",
                agent_id=agent.id,
                command="bridge",
                client_order_id=coid,
                ticket=trade.ticket,
                symbol=trade.symbol,
                action=trade.action,
                lots=trade.lots,
                price=trade.close_price,
                profit=trade.profit,
                reason=trade.reason,
            )
            await self._event(event, "position_closed")

    def observe_account(self, agent_id: str, equity: float) -> None:
        """Every polled equity feeds the start-of-day baseline (first equity of the UTC day)."""
        self._baselines[agent_id].observe(equity, now_ms())

    def state_of(self, agent_id: str) -> Trading:
        """``stopped`` | ``disabled`` | ``halted`` | ``active`` for the status channel."""
        agent = self.registry.agents[agent_id]
        if self.emergency.stopped:
            return "stopped"
        if not agent.config.enabled:
            return "disabled"
        if agent.account is None:
            return "active"
        return trading_state(self.context(agent_id), agent_id)

    # -- commands ---------------------------------------------------------------------

    def agent(self, agent_id: str) -> AgentRuntime:
        agent = self.registry.get(agent_id)
        if agent is None:
            raise HubError("not_found", f"unknown agent {agent_id!r}")
        return agent

    async def open(
        self, agent_id: str, req: TradeRequest, *, by: str, signal_id: str | None = None
    ) -> dict[str, Any]:
        agent = self.agent(agent_id)
        payload = {"agent": agent_id, **msgspec.structs.asdict(req), "signal_id": signal_id}
        result = await self.coord.once(
            req.client_order_id, payload, lambda: self._open(agent, req, by, signal_id)
        )
        out: dict[str, Any] = result
        return out

    async def _open(
        self, agent: AgentRuntime, req: TradeRequest, by: str, signal_id: str | None
    ) -> dict[str, Any]:
        coid = req.client_order_id or "auto-" + secrets.token_hex(6)
        base = OrderEvent(
            event="accepted",
            agent_id=agent.id,
            command="trade",
            client_order_id=coid,
            symbol=req.symbol,
            action=req.action,
            lots=req.lots,
            sl=req.sl,
            tp=req.tp,
            signal_id=signal_id,
            comment=req.comment or None,
            by=by,
        )
        async with self.coord.lock(agent.id):
            try:  # every refusal, risk or not, is an order event
                await self._sync_shared_state(agent)
                if req.client_order_id is not None and agent.online:
                    # Sent before a restart or by a lost instance? The bridge knows the tag.
                    earlier = await already_sent(agent, order_tag(coid))
                    if earlier is not None:
                        return self._result(agent, earlier, req, signal_id, {"risk": None})
                decision = self._check_open(agent, req)
                if isinstance(decision, HubError):
                    raise decision
            except HubError as exc:
                error = exc.body()["error"]
                await self._event(
                    _with(base, event="rejected", reason=exc.code, error=error), "order_rejected"
                )
                raise
            if not decision.allowed:
                await self._reject(base, decision)
            tag = order_tag(coid)
            order = TradeOrder(
                symbol=req.symbol,
                action=req.action,
                lots=req.lots,
                sl=req.sl,
                tp=req.tp,
                comment=f"{tag} {req.comment}".strip()[:31],
            )
            risk = {"check": "all", "risk": decision.risk, "risk_pct": decision.risk_pct}
            await self._event(_with(base, event="accepted"), "order_accepted", risk)
            self._in_flight[agent.id] += 1
            try:
                if self.emergency.stopped:  # the stop landed while this order waited
                    raise HubError("emergency_stop", "emergency stop is active: trading is halted")
                position = await send_order(agent, order, tag, self.config.polling.trade_timeout)
            except HubError as exc:
                await self._event(
                    _with(base, event="failed", error=exc.body()["error"]), "order_failed"
                )
                raise
            finally:
                self._in_flight[agent.id] -= 1
            if all(p.ticket != position.ticket for p in agent.positions):
                await self._set_positions(agent, [*agent.positions, position])
            filled = _with(
                base,
                event="filled",
                ticket=position.ticket,
                price=position.open_price,
                lots=position.lots,
                sl=position.sl,
                tp=position.tp,
                open_time=position.open_time,
            )
            await self._event(filled, "order_filled", risk)
            self._tickets[(agent.id, position.ticket)] = coid
        return self._result(agent, position, req, signal_id, risk)

    @staticmethod
    def _result(
        agent: AgentRuntime,
        position: Position,
        req: TradeRequest,
        signal_id: str | None,
        risk: dict[str, Any],
    ) -> dict[str, Any]:
        return {
            "ticket": position.ticket,
            "agent_id": agent.id,
            "symbol": position.symbol,
            "action": position.action,
            "lots": position.lots,
            "open_price": position.open_price,
            "sl": position.sl,
            "tp": position.tp,
            "client_order_id": req.client_order_id,
            "comment": req.comment,
            "signal_id": signal_id,
            "risk": risk,
        }

    async def _set_positions(self, agent: AgentRuntime, positions: list[Position]) -> None:
        """Our view of the bridge after a command, published at once (not at the next poll),
        so subscribers — and, with Redis, the other instances — see every fill and close."""
        agent.positions = positions
        await self.publisher.state(agent.id, "positions", {"positions": positions})

    def _check_open(self, agent: AgentRuntime, req: TradeRequest) -> RiskDecision | HubError:
        ctx = self.context(agent.id)
        if not agent.online:
            # The kill switch and `enabled` still answer first; nothing else can be judged.
            denial = emergency_denial(ctx) or enabled_denial(agent.id, ctx.book(agent.id))
            if denial is not None:
                return denial
            return HubError("agent_offline", f"{agent.id} is offline: {agent.error}")
        order = TradeOrder(
            symbol=req.symbol, action=req.action, lots=req.lots, sl=req.sl, tp=req.tp
        )
        return check_open(ctx, agent.id, order)

    async def _reject(self, base: OrderEvent, decision: RiskDecision) -> None:
        code = decision.code or "risk_rejected"
        details = decision.details()
        error = {"code": code, "message": decision.message, "details": details}
        await self._event(
            _with(base, event="rejected", reason=decision.check, error=error), "order_rejected"
        )
        raise HubError(code, decision.message, details)

    async def close(self, agent_id: str, req: CloseRequest, *, by: str) -> dict[str, Any]:
        agent = self.agent(agent_id)
        async with self.coord.lock(agent.id):
            return await self._close(agent, req, by)

    async def _close(self, agent: AgentRuntime, req: CloseRequest, by: str) -> dict[str, Any]:
        position = await self._position(agent, req.ticket, "close", by)
        if req.lots is not None and req.lots > position.lots:
            raise HubError(
                "bad_request", f"lots: {req.lots} is more than the position's {position.lots}"
            )
        base = OrderEvent(
            event="closed",
            agent_id=agent.id,
            command="close",
            ticket=req.ticket,
            symbol=position.symbol,
            action=position.action,
            lots=req.lots or position.lots,
            by=by,
        )
        try:
            closed = await agent.client.close_position(CloseOrder(ticket=req.ticket, lots=req.lots))
        except (BridgeTimeout, BridgeUnavailable) as exc:
            closed_found = await closed_in_history(agent, req.ticket)
            if closed_found is None:
                error = HubError(
                    exc.code, f"{agent.id}: close of {req.ticket}: {exc}; outcome unknown"
                )
                await self._event(
                    _with(base, event="failed", error=error.body()["error"]), "close_failed"
                )
                raise error from None
            closed = closed_found
        except BridgeError as exc:
            error = HubError(exc.code, f"{agent.id} bridge refused the close: {exc}")
            await self._event(
                _with(base, event="failed", error=error.body()["error"]), "close_failed"
            )
            raise error from None
        left = round(position.lots - closed.lots, 8)
        await self._set_positions(
            agent,
            [
                msgspec.structs.replace(p, lots=left) if p.ticket == req.ticket else p
                for p in agent.positions
                if p.ticket != req.ticket or left > 1e-9
            ],
        )
        event = _with(base, price=closed.close_price, profit=closed.profit, lots=closed.lots)
        await self._event(event, "position_closed")
        self._closed_by_hub.add((agent.id, closed.ticket))
        self.journal.trade_closed(
            agent.id, closed, self._tickets.pop((agent.id, closed.ticket), None)
        )
        return {
            "ticket": closed.ticket,
            "agent_id": agent.id,
            "symbol": closed.symbol,
            "action": closed.action,
            "lots": closed.lots,
            "open_price": closed.open_price,
            "close_price": closed.close_price,
            "profit": closed.profit,
            "close_time": closed.close_time,
        }

    async def _position(self, agent: AgentRuntime, ticket: int, command: str, by: str) -> Position:
        """The open position ``ticket``; a refusal is published as a ``rejected`` order event."""
        try:
            return await self._find_position(agent, ticket)
        except HubError as exc:
            event = OrderEvent(
                event="rejected",
                agent_id=agent.id,
                command=command,
                ticket=ticket,
                reason=exc.code,
                error=exc.body()["error"],
                by=by,
            )
            await self._event(event, "order_rejected")
            raise

    async def _find_position(self, agent: AgentRuntime, ticket: int) -> Position:
        for p in agent.positions:
            if p.ticket == ticket:
                return p
        try:  # the poll may lag a fill by up to one account interval
            agent.positions = await agent.client.positions()
        except BridgeError as exc:
            raise HubError(exc.code, f"{agent.id}: cannot read positions: {exc}") from None
        for p in agent.positions:
            if p.ticket == ticket:
                return p
        raise HubError("not_found", f"{agent.id} has no open position with ticket {ticket}")

    async def modify(self, agent_id: str, req: ModifyRequest, *, by: str) -> dict[str, Any]:
        agent = self.agent(agent_id)
        async with self.coord.lock(agent.id):
            position = await self._position(agent, req.ticket, "modify", by)
            base = OrderEvent(
                event="modified",
                agent_id=agent.id,
                command="modify",
                ticket=req.ticket,
                symbol=position.symbol,
                action=position.action,
                sl=req.sl,
                tp=req.tp,
                by=by,
            )
            decision = check_modify(
                self.context(agent.id), agent.id, position, sl=req.sl, tp=req.tp
            )
            if not decision.allowed:
                await self._reject(base, decision)
            try:
                updated = await agent.client.modify(
                    ModifyOrder(ticket=req.ticket, sl=req.sl, tp=req.tp)
                )
            except BridgeError as exc:
                error = HubError(exc.code, f"{agent.id}: modify of {req.ticket}: {exc}")
                await self._event(
                    _with(base, event="failed", error=error.body()["error"]), "modify_failed"
                )
                raise error from None
            await self._set_positions(
                agent, [updated if p.ticket == updated.ticket else p for p in agent.positions]
            )
            await self._event(_with(base, sl=updated.sl, tp=updated.tp), "position_modified")
            return {
                "ticket": updated.ticket,
                "agent_id": agent.id,
                "symbol": updated.symbol,
                "sl": updated.sl,
                "tp": updated.tp,
            }

    async def close_all(self, agent_id: str, *, by: str) -> dict[str, Any]:
        agent = self.agent(agent_id)
        async with self.coord.lock(agent.id):
            return await self._close_all(agent, by)

    async def _close_all(self, agent: AgentRuntime, by: str) -> dict[str, Any]:
        try:
            agent.positions = await agent.client.positions()
        except BridgeError as exc:
            raise HubError(exc.code, f"{agent.id}: cannot read positions: {exc}") from None
        results: list[dict[str, Any]] = []
        for position in list(agent.positions):
            try:
                closed = await self._close(agent, CloseRequest(ticket=position.ticket), by)
                results.append({"ticket": position.ticket, "ok": True, "profit": closed["profit"]})
            except HubError as exc:
                results.append(
                    {"ticket": position.ticket, "ok": False, "error": exc.body()["error"]}
                )
        return {"agent_id": agent.id, "closed": sum(r["ok"] for r in results), "results": results}

    # -- emergency stop -----------------------------------------------------------------

    async def emergency_stop(
        self, *, reason: str | None, close_positions: bool, by: str
    ) -> dict[str, Any]:
        self.emergency = EmergencyState(stopped=True, reason=reason, by=by, since=now_ms())
        await self.coord.save_emergency(self.emergency)  # in force (and durable) before a reply
        log.warning(
            "emergency_stop by=%s reason=%r close_positions=%s", by, reason, close_positions
        )
        async with self._all_locks():  # orders already past their checks finish first
            await self.publisher.event(
                SYSTEM,
                {
                    "event": "emergency_stop",
                    "reason": reason,
                    "by": by,
                    "close_positions": close_positions,
                    "ts": self.emergency.since,
                },
            )
            self.journal.log(
                None,
                "emergency_stop",
                f"emergency stop by {by}: {reason or 'no reason'}",
                {"close_positions": close_positions},
            )
            closes: dict[str, Any] = {}
            if close_positions:
                for agent in self.registry.agents.values():
                    try:
                        closes[agent.id] = await self._close_all(agent, by)
                    except HubError as exc:
                        closes[agent.id] = {"agent_id": agent.id, "error": exc.body()["error"]}
        return {
            "emergency_stop": True,
            "reason": reason,
            "since": self.emergency.since,
            "by": by,
            "closed": closes,
        }

    async def resume(self, *, by: str) -> dict[str, Any]:
        was = self.emergency.stopped
        self.emergency = EmergencyState(stopped=False, by=by, since=now_ms())
        await self.coord.save_emergency(self.emergency)
        log.warning("emergency_resume by=%s", by)
        await self.publisher.event(
            SYSTEM, {"event": "resume", "by": by, "ts": self.emergency.since}
        )
        self.journal.log(None, "emergency_resume", f"trading resumed by {by}", {"was_stopped": was})
        return {"emergency_stop": False, "was_stopped": was, "by": by}

    @contextlib.asynccontextmanager
    async def _all_locks(self) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            for agent_id in self.registry.agents:
                await stack.enter_async_context(self.coord.lock(agent_id))
            yield

    async def _event(
        self, event: OrderEvent, event_type: str, extra: dict[str, Any] | None = None
    ) -> None:
        await self.publisher.event(agent_channel(event.agent_id, "orders"), event)
        metadata = {k: v for k, v in msgspec.structs.asdict(event).items() if v is not None}
        if extra:
            metadata.update(extra)
        message = f"{event.command} {event.event}"
        if event.error:
            message += f": {event.error.get('message')}"
        self.journal.order(event, event_type, message, metadata)


def _with(ev: OrderEvent, /, **changes: Any) -> OrderEvent:
    return msgspec.structs.replace(ev, **changes)
