"""The command service: open, close, modify and close-all, one agent at a time.

Every command for one agent runs under that agent's lock, so two concurrent trades can
never both pass ``max_positions``; orders sent and not answered yet count as positions.
A ``client_order_id`` makes a trade idempotent. A trade is never blindly retried: when
the bridge times out (or drops the connection) after the order was sent, the service
reconciles by looking for the order's comment tag in the bridge's positions and history
before answering, and answers ``bridge_timeout`` only when the outcome is truly unknown.

The other trading concepts live beside it: the risk engine's inputs
(:mod:`hub.trading.risk_inputs`), the kill switch (:mod:`hub.trading.emergency`), closed
trades from the bridge's history (:mod:`hub.trading.history`) and what several instances
agree on (:mod:`hub.trading.coordination`).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

import msgspec

from channels.clock import now_ms
from channels.names import SYSTEM, agent_channel
from hub.agents import AgentRuntime, Registry
from hub.bridge.client import BridgeError, BridgeTimeout, BridgeUnavailable, closed_since
from hub.bridge.models import (
    ClosedTrade,
    CloseOrder,
    ModifyOrder,
    Position,
    PositionList,
    TradeOrder,
)
from hub.errors import HubError
from hub.publisher import Publisher
from hub.risk import FillBreach, RiskDecision, check_fill, check_modify, check_open
from hub.risk.checks import emergency_denial, enabled_denial
from hub.trading.coordination import Coordination
from hub.trading.emergency import EmergencyControl
from hub.trading.events import OrderEvents
from hub.trading.events import with_changes as _with
from hub.trading.history import ClosedTrades
from hub.trading.idempotency import duplicate
from hub.trading.models import (
    CloseRequest,
    ModifyRequest,
    OrderEvent,
    Reservation,
    TradeRequest,
)
from hub.trading.reconcile import already_sent, confirm_close, order_tag, send_order
from hub.trading.risk_inputs import RiskInputs

__all__ = ["TradingService"]

log = logging.getLogger("mt4hub.trading")


class TradingService:
    def __init__(
        self,
        registry: Registry,
        publisher: Publisher,
        coordination: Coordination,
        events: OrderEvents,
        risk: RiskInputs,
        emergency: EmergencyControl,
        closed: ClosedTrades,
    ) -> None:
        self.registry = registry
        self.config = registry.config
        self.publisher = publisher
        self.coord = coordination
        self.events = events
        self.risk = risk
        self.emergency = emergency
        self.closed = closed

    async def _fresh_state(self, agent: AgentRuntime) -> None:
        """Under the agent's lock, before a check: the account and positions as the bridge
        holds them now (a stop it hit, a fill's spread, another instance's fill: a poll may
        not have read them yet), the day's durable start and halt and, when other
        instances trade too, the kill switch and the day record they may have changed."""
        if self.coord.shared:
            await self.emergency.refresh()
            await self.risk.daily.refresh(agent.id)
        if agent.online:  # offline: the kill switch and `enabled` answer first, then offline
            try:
                account, positions = await asyncio.gather(
                    agent.client.account(), agent.client.positions()
                )
            except BridgeError as exc:
                raise HubError(exc.code, f"{agent.id}: cannot read its account: {exc}") from None
            agent.account = account
            agent.set_positions(agent.held(positions))
        if agent.account is not None:
            await self.risk.daily.observe(agent.id, agent.account.equity)

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
        if req.dry_run:
            return await self.dry_run(agent, req)
        payload = {"agent": agent_id, **msgspec.structs.asdict(req), "signal_id": signal_id}
        # Keys are per agent: one agent's ids can neither block nor reveal another's.
        key = None if req.client_order_id is None else (agent_id, req.client_order_id)
        result = await self.coord.once(key, payload, lambda: self._open(agent, req, by, signal_id))
        out: dict[str, Any] = result
        return out

    async def dry_run(self, agent: AgentRuntime, req: TradeRequest) -> dict[str, Any]:
        """Every check of a real trade, with the same fresh state and the same errors, and
        nothing sent, reserved, published or recorded (the ticket's risk preview)."""
        async with self.coord.lock(agent.id):
            await self._fresh_state(agent)
            await self.risk.fresh_quote(agent, req.symbol)
            decision = await self._check_open(agent, req)
        if isinstance(decision, HubError):
            raise decision
        if not decision.allowed:
            raise HubError(decision.code or "risk_rejected", decision.message, decision.details())
        risk = {"check": "all", "risk": decision.risk, "risk_pct": decision.risk_pct}
        return {"dry_run": True, "agent_id": agent.id, "symbol": req.symbol,
                "action": req.action, "lots": req.lots, "risk": risk}  # fmt: skip

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
                await self._fresh_state(agent)
                if req.client_order_id is not None and agent.online:
                    # Sent before a restart or by a lost instance? The bridge knows the tag.
                    earlier = await already_sent(agent, order_tag(coid))
                    if earlier is not None:
                        sent = agent.client.order_comment(order_tag(coid), req.comment)
                        if not _same_order(earlier, req, sent):
                            raise duplicate((agent.id, coid))
                        return self._result(agent, earlier, req, signal_id, {"risk": None})
                await self.risk.fresh_quote(agent, req.symbol)
                async with self.coord.risk_lock():  # checked and reserved as one step
                    decision = await self._check_open(agent, req)
                    if isinstance(decision, HubError):
                        raise decision
                    if decision.lots is not None:  # normalised to the lot step: what is sent
                        req = msgspec.structs.replace(req, lots=decision.lots)
                    reservation = self.risk.reservation(agent, req) if decision.allowed else None
                    if reservation is not None:
                        await self.coord.reserve(reservation)
            except HubError as exc:
                error = exc.body()["error"]
                await self.events.emit(
                    _with(base, event="rejected", reason=exc.code, error=error), "order_rejected"
                )
                raise
            if not decision.allowed:
                await self._reject(base, decision)
            assert reservation is not None
            risk: dict[str, Any] = {
                "check": "all",
                "risk": decision.risk,
                "risk_pct": decision.risk_pct,
            }
            try:
                position = await self._send(agent, req, coid, base, risk)
            finally:  # after the fill is in the positions every check reads
                await self._release(reservation)
            self.closed.opened(agent.id, position.ticket, coid)
            breach = await self._fill_breach(agent, position)
            if breach is not None:  # confirmed on the freshest quote there is
                try:
                    await self.risk.fresh_quote(agent, req.symbol, force=True)
                except HubError as exc:
                    log.warning("breach_quote_unread agent=%s error=%r", agent.id, exc.message)
                breach = await self._fill_breach(agent, position)
            if breach is not None:
                risk = {**risk, "risk_breach": await self._breach(agent, position, breach, base)}
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
        agent.set_positions(positions)
        payload = PositionList(positions=positions, unreadable=agent.unreadable)
        await self.publisher.state(agent.id, "positions", payload)

    async def _send(
        self,
        agent: AgentRuntime,
        req: TradeRequest,
        coid: str,
        base: OrderEvent,
        risk: dict[str, Any],
    ) -> Position:
        """Send the checked order; its fill goes into the positions before this returns."""
        tag = order_tag(coid)
        order = TradeOrder(
            symbol=req.symbol,
            action=req.action,
            lots=req.lots,
            sl=req.sl,
            tp=req.tp,
            comment=agent.client.order_comment(tag, req.comment),
        )
        await self.events.emit(_with(base, event="accepted"), "order_accepted", risk)
        try:
            if self.emergency.stopped:  # the stop landed while this order waited
                raise HubError("emergency_stop", "emergency stop is active: trading is halted")
            position = await send_order(agent, order, tag, self.config.polling.trade_timeout)
        except HubError as exc:
            await self.events.emit(
                _with(base, event="failed", error=exc.body()["error"]), "order_failed"
            )
            raise
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
        await self.events.emit(filled, "order_filled", risk)
        return position

    async def _fill_breach(self, agent: AgentRuntime, position: Position) -> FillBreach | None:
        """The fill against the per-trade, daily and exposure limits (every instance's
        positions: another's fill is published before its reservation is released)."""
        tolerance = agent.config.risk.slippage_tolerance
        ctx = self.risk.context(agent.id, positions=await self._others_positions(agent))
        return check_fill(ctx, agent.id, position, tolerance)

    async def _breach(
        self, agent: AgentRuntime, position: Position, breach: FillBreach, base: OrderEvent
    ) -> dict[str, Any]:
        """The fill risks more than a limit leaves it (slippage, or a bridge whose feed
        froze): a ``risk_breach`` event on the agent's orders and on ``system``, then
        ``risk.on_breach``: ``tighten`` the SL to the limit (close when the bridge refuses
        or no such SL is valid now), ``close``, or ``alert`` only."""
        policy = agent.config.risk.on_breach
        action = policy
        if policy == "tighten" and breach.tightened_sl is not None:
            try:
                updated = await agent.client.modify(
                    ModifyOrder(ticket=position.ticket, sl=breach.tightened_sl, tp=position.tp)
                )
                await self._set_positions(
                    agent, [updated if p.ticket == updated.ticket else p for p in agent.positions]
                )
            except BridgeError as exc:
                log.error("breach_tighten_refused agent=%s ticket=%s error=%r",
                          agent.id, position.ticket, str(exc))  # fmt: skip
                action = "close"
        elif policy == "tighten":
            action = "close"
        outcome: dict[str, Any] = {
            "check": breach.check,
            "risk": breach.risk,
            "limit": breach.limit,
            "action": action,
            "sl": breach.tightened_sl if action == "tighten" else None,
        }
        if action == "close":
            try:
                # The fill just answered is the position: its row may be one the bridge
                # answers unreadable, and a breach must still be closed.
                req = CloseRequest(ticket=position.ticket)
                closed = await self._close(agent, req, "risk", filled=position)
                outcome["closed"] = {"price": closed["close_price"], "profit": closed["profit"]}
            except HubError as exc:
                outcome["error"] = exc.body()["error"]
        event = _with(
            base,
            event="risk_breach",
            ticket=position.ticket,
            price=position.open_price,
            sl=outcome["sl"] or position.sl,
            reason=action,
            error={"code": "risk_breach", "message": breach.message, "details": outcome},
        )
        await self.events.emit(event, "risk_breach", outcome)
        await self.publisher.event(
            SYSTEM,
            {
                "event": "risk_breach",
                "agent_id": agent.id,
                "ticket": position.ticket,
                "message": breach.message,
                **outcome,
                "ts": now_ms(),
            },
        )
        log.warning("risk_breach agent=%s ticket=%s risk=%.4f limit=%.4f action=%s",
                    agent.id, position.ticket, breach.risk, breach.limit, action)  # fmt: skip
        return outcome

    async def _release(self, reservation: Reservation) -> None:
        try:
            await self.coord.release(reservation.id)
        except HubError as exc:  # it expires by itself; the order's answer stands
            log.error("reservation_release_failed id=%s error=%r", reservation.id, exc.message)

    async def _others_positions(self, agent: AgentRuntime) -> dict[str, PositionList]:
        """With other instances: every other agent's positions as last published (a fill
        on another instance is published before its reservation is released)."""
        if not self.coord.shared:
            return {}
        out: dict[str, PositionList] = {}
        for other in self.registry.agents:
            if other != agent.id:
                for pub in await self.publisher.broker.last(agent_channel(other, "positions")):
                    out[other] = msgspec.json.decode(pub.data, type=PositionList)
        return out

    async def _check_open(self, agent: AgentRuntime, req: TradeRequest) -> RiskDecision | HubError:
        ctx = self.risk.context(
            agent.id, await self.coord.reservations(), await self._others_positions(agent)
        )
        unreadable = self._unreadable_positions(agent)
        if not agent.online or unreadable is not None:
            # The kill switch and `enabled` still answer first; nothing else can be judged.
            denial = emergency_denial(ctx) or enabled_denial(agent.id, ctx.book(agent.id))
            if denial is not None:
                return denial
            if unreadable is not None and agent.online:
                return unreadable
            return HubError("agent_offline", f"{agent.id} is offline: {agent.error}")
        order = TradeOrder(
            symbol=req.symbol, action=req.action, lots=req.lots, sl=req.sl, tp=req.tp
        )
        return check_open(ctx, agent.id, order)

    def _unreadable_positions(self, agent: AgentRuntime) -> HubError | None:
        """A ``/positions`` row the hub could not read may be an open position: while the
        agent's last answer has one, its open risk is unknown, so no trade is sent (closes
        still are). Other agents trade on (a faulty bridge stops only its agent)."""
        skips = agent.client.skipped["positions"]
        if not skips.bad:
            return None
        return HubError(
            "bridge_error",
            f"{agent.id}: {skips.bad} row(s) of its bridge's /positions could not be read "
            f"({skips.errors[0]}); each may be an open position, so no trade is sent until "
            "the bridge answers them whole",
            {"unreadable_rows": skips.bad},
        )

    async def _reject(self, base: OrderEvent, decision: RiskDecision) -> None:
        code = decision.code or "risk_rejected"
        details = decision.details()
        error = {"code": code, "message": decision.message, "details": details}
        await self.events.emit(
            _with(base, event="rejected", reason=decision.check, error=error), "order_rejected"
        )
        raise HubError(code, decision.message, details)

    async def close(self, agent_id: str, req: CloseRequest, *, by: str) -> dict[str, Any]:
        agent = self.agent(agent_id)
        _supported(agent, "partial_close" if req.lots is not None else "close")
        async with self.coord.lock(agent.id):
            return await self._close(agent, req, by)

    async def _close(
        self, agent: AgentRuntime, req: CloseRequest, by: str, filled: Position | None = None
    ) -> dict[str, Any]:
        """Close ``req``; ``filled``: the bridge's own answer for a position this command
        just filled (else the position is read from the bridge first)."""
        position = filled or await self._position(agent, req.ticket, "close", by)
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
        lots = req.lots or position.lots
        earlier = await self._history_of(agent, position)
        await self.closed.closing(agent, req.ticket, lots)
        try:
            closed = await agent.client.close_position(CloseOrder(ticket=req.ticket, lots=req.lots))
        except (BridgeTimeout, BridgeUnavailable) as exc:
            if isinstance(exc, BridgeUnavailable) and not exc.sent:
                await self.closed.not_closed(agent, req.ticket, lots)
                error = HubError("agent_offline", f"{agent.id} bridge unreachable: {exc}")
                await self.events.emit(
                    _with(base, event="failed", error=error.body()["error"]), "close_failed"
                )
                raise error from None
            confirmed = await confirm_close(
                agent, position, lots, self.config.polling.trade_timeout, earlier=earlier
            )
            if confirmed is None:  # should it close later, the poller announces it
                await self.closed.not_closed(agent, req.ticket, lots)
                error = HubError(
                    "bridge_timeout",
                    f"{agent.id}: close of {req.ticket}: {exc}; the bridge still shows the "
                    "position (or cannot be read), so the outcome is unknown: check before "
                    "closing again",
                    {"ticket": req.ticket, "lots": lots, "outcome": "unknown"},
                )
                await self.events.emit(
                    _with(base, event="failed", error=error.body()["error"]), "close_failed"
                )
                raise error from None
            closed = confirmed
        except BridgeError as exc:
            await self.closed.not_closed(agent, req.ticket, lots)
            error = HubError(exc.code, f"{agent.id} bridge refused the close: {exc}", exc.details)
            await self.events.emit(
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
        await self.events.emit(event, "position_closed")
        self.closed.closed_by_hub(agent, closed)
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

    @staticmethod
    async def _history_of(agent: AgentRuntime, position: Position) -> list[ClosedTrade] | None:
        """The position's history rows before its close is sent, read only while a row of
        ``/positions`` is unreadable: should the close answer be lost, a history row not
        among these is then what shows the close (``confirm_close``). None: not read."""
        if not agent.client.skipped["positions"].bad:
            return None
        try:
            rows = await agent.client.history(since_ms=closed_since(position))
        except BridgeError as exc:
            log.warning("close_history_unread agent=%s ticket=%s error=%r",
                        agent.id, position.ticket, str(exc))  # fmt: skip
            return None
        return [t for t in rows if t.ticket == position.ticket]

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
            await self.events.emit(event, "order_rejected")
            raise

    async def _find_position(self, agent: AgentRuntime, ticket: int) -> Position:
        """The position as the bridge holds it now: a close or modify is judged (and a lost
        answer confirmed) against the bridge's state, never a poll that may lag it. A
        position held from an earlier read while its row is unreadable is not that state:
        its lots may have changed unseen (a partial close by another instance or by hand),
        and the lots closed would be reported and matched wrong."""
        try:
            positions = await agent.client.positions()
        except BridgeError as exc:
            raise HubError(exc.code, f"{agent.id}: cannot read positions: {exc}") from None
        agent.set_positions(agent.held(positions))
        for p in positions:
            if p.ticket == ticket:
                return p
        skips = agent.client.skipped["positions"]
        if skips.bad:
            raise HubError(
                "bridge_error",
                f"{agent.id}: ticket {ticket} is not among the readable rows of its bridge's "
                f"/positions, and {skips.bad} row(s) could not be read ({skips.errors[0]}): "
                "it may be one of them",
                {"unreadable_rows": skips.bad},
            )
        raise HubError("not_found", f"{agent.id} has no open position with ticket {ticket}")

    async def modify(self, agent_id: str, req: ModifyRequest, *, by: str) -> dict[str, Any]:
        agent = self.agent(agent_id)
        _supported(agent, "modify")
        async with self.coord.lock(agent.id):
            position = await self._position(agent, req.ticket, "modify", by)
            await self._fresh_state(agent)
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
            await self.risk.fresh_quote(agent, position.symbol)
            reservation: Reservation | None = None
            async with self.coord.risk_lock():  # a wider stop adds risk: checked and reserved
                ctx = self.risk.context(
                    agent.id, await self.coord.reservations(), await self._others_positions(agent)
                )
                decision = check_modify(ctx, agent.id, position, sl=req.sl, tp=req.tp)
                if decision.allowed and req.sl and _widens(position, req.sl):
                    reservation = self.risk.widening(agent, position, req.sl)
                    await self.coord.reserve(reservation)
            if not decision.allowed:
                await self._reject(base, decision)
            # Omitted levels are sent as they are now: a bridge that reads null as 0 would
            # otherwise remove them.
            order = ModifyOrder(
                ticket=req.ticket,
                sl=position.sl if req.sl is None else req.sl,
                tp=position.tp if req.tp is None else req.tp,
            )
            try:
                updated = await agent.client.modify(order)
            except BridgeError as exc:
                if reservation is not None:
                    await self._release(reservation)
                error = HubError(
                    exc.code, f"{agent.id}: modify of {req.ticket}: {exc}", exc.details
                )
                await self.events.emit(
                    _with(base, event="failed", error=error.body()["error"]), "modify_failed"
                )
                raise error from None
            await self._set_positions(
                agent, [updated if p.ticket == updated.ticket else p for p in agent.positions]
            )
            if reservation is not None:
                await self._release(reservation)
            await self.events.emit(_with(base, sl=updated.sl, tp=updated.tp), "position_modified")
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
        _supported(agent, "close")
        try:
            agent.set_positions(agent.held(await agent.client.positions()))
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

    async def close_all_held(self, agent_id: str, by: str) -> dict[str, Any]:
        """``close_all`` for a caller that already holds the agent's lock (emergency stop)."""
        return await self._close_all(self.agent(agent_id), by)


def _same_order(found: Position, req: TradeRequest, sent: str) -> bool:
    """Whether the bridge's order tagged with this id is this request (after a restart
    that lost the outcome log): what cannot have changed since — symbol, side and the
    comment ``sent``, as far as the bridge kept it."""
    kept = found.comment[: len(sent)]
    return found.symbol == req.symbol and found.action == req.action and sent.startswith(kept)


def _supported(agent: AgentRuntime, operation: str) -> None:
    """``not_supported`` before anything is sent when the bridge's profile cannot do it."""
    client = agent.client
    if operation == "partial_close" and not client.supports("partial_close"):
        operation = "close"  # a close that takes lots does both (checked when sent)
    if not client.supports(operation):
        raise HubError(
            "not_supported",
            f"{agent.id}: its bridge (profile {client.profile.name!r}) cannot {operation}",
            {"operation": operation, "profile": client.profile.name},
        )


def _widens(position: Position, sl: float) -> bool:
    """A new stop further from the price than the position's (no stop before: none wider)."""
    if not position.sl:
        return False
    return sl < position.sl if position.action == "buy" else sl > position.sl
