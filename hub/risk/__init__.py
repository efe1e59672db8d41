"""The risk engine (docs/risk.md): pure checks, no I/O, no clock, no asyncio.

Build a :class:`RiskContext` (every agent's :class:`AgentBook` with its positions and
:class:`PendingOrder` s, contract specs, current quotes, ``GlobalRisk``, the live emergency
flag, a per-bridge correlation lookup), then ask:

``check_open(ctx, agent_id, order: TradeOrder) -> RiskDecision``
    A new position. The lots are first normalised to the lot step (``normalise_lots``),
    then the checks run in this order, the first denial wins (``OPEN_CHECKS``):
    ``emergency_stop`` (code ``emergency_stop``), ``enabled`` (``agent_disabled``), then
    (all ``risk_rejected``) ``allowed_symbols``, ``lots`` (> 0), ``lot_step``,
    ``min_lots``, ``max_lots``, ``sl_required``, ``price`` (no current quote or
    conversion rate), ``sl_side`` (buy: SL < bid; sell: SL > ask), ``tp_side`` (buy:
    TP > ask; sell: TP < bid), ``max_risk_per_trade`` (lots x contract x |entry - SL|,
    entry = ask for a buy and bid for a sell, converted to the account currency,
    <= fraction x balance), ``max_positions`` (open + pending + this one <= limit),
    ``daily_loss`` (halted: ``book.halted`` or loss_today >= limit; else loss_today +
    the agent's open risk + its pending risk + this risk <= max_daily_loss x
    start-of-day equity), ``max_total_exposure`` (open + pending risk of ALL agents +
    this risk <= fraction x total equity), ``correlation_limit`` (against open and
    pending orders of every agent, measured on one bridge). Allowed: ``risk``,
    ``risk_pct`` and the normalised ``lots`` to send.
``check_modify(ctx, agent_id, position, *, sl, tp) -> RiskDecision``
    ``None`` keeps a level, ``0`` removes it (as the bridge's ``/modify``); a wider or
    removed SL is checked like a new order for the added risk (``MODIFY_CHECKS``); see
    :mod:`hub.risk.modify`.
``check_fill(ctx, agent_id, position, tolerance) -> FillBreach | None``
    After a fill: the risk from the fill price to the SL above budget x (1 + tolerance)
    is a :class:`FillBreach` with the SL that brings it back to the budget.
``emergency_denial(ctx)``, ``enabled_denial(agent_id, book)`` -> ``RiskDecision | None``
    The first two gates alone (for an agent whose other state is unknown, e.g. offline).
``check_close() -> RiskDecision``
    Always allowed, also when halted or stopped.
``size_for_signal(ctx, agent_id, symbol, action, sl) -> RiskDecision``
    ``lots`` = floor to the lot step of (fraction x balance) / (risk of one lot),
    clipped to ``max_lots``; under ``min_lots`` a denial with check ``too_small``.
``trading_state(ctx, agent_id)`` -> ``stopped`` | ``disabled`` | ``halted`` | ``active``.
``agent_risk_summary(ctx, agent_id)``, ``exposure_summary(ctx)``: ``GET /api/risk``.
``open_risk(positions, prices, specs, *, no_sl_risk=0.0, currency="USD") -> float``.
``normalise_lots(lots, spec) -> float``: snapped to the lot step within 1e-6 of a step.
``ReturnsWindow(size).observe(agent_id, symbol, bid, ask, now_ms)``,
``.correlation(agent_id, a, b)``: one series per bridge and symbol.

A :class:`RiskDecision` has ``allowed``, ``code``, ``check``, ``limit``, ``value``,
``message`` and, when allowed, ``risk``/``risk_pct`` (and ``lots``); ``details()`` is the
error's ``{"check", "limit", "value"}``. Money in ``limit``/``value`` and messages is shown
honestly: a limit floored to cents, a value ceiled to cents, so a breach never reads as
equal; comparisons allow 1e-6 so that exactly at a limit passes and a cent over fails.

Choices made here (each documented in docs/risk.md):

- Stops: ``None`` or ``0`` means "no SL/TP" (MT4). A trade, position or pending order
  without SL (only when ``require_sl`` is false) is taken to risk exactly its agent's
  per-trade budget.
- Conversion: quote = account currency as is; a pair with the account currency as
  base (USDJPY) divides by its current mid; otherwise ``{ccy}{quote}`` or
  ``{quote}{ccy}`` mid prices; missing -> the ``price`` check denies. All agents are
  assumed to share one account currency when the global checks sum them.
- Open risk of a position = loss from its current exit price (bid for a buy, ask for
  a sell) to its SL, never below 0 (an SL in profit adds no risk); of a pending order,
  from its ``entry`` to its SL. One whose risk cannot be known (no SL, no spec, no
  rate) counts its agent's per-trade budget.
- Correlation: against positions and pending orders of ALL agents in OTHER symbols
  (stacking one symbol is left to ``max_positions`` and exposure), looked up on the
  trading agent's bridge when it trades both symbols, else on the holder's bridge.
  Denied when |corr| > ``correlation_limit`` and the new trade adds risk the same
  economic way: same action with corr > 0, opposite action with corr < 0. ``value`` =
  corr rounded away from zero to 4 decimals, ``limit`` = the configured limit. An
  unknown correlation (None, too few samples) passes.
- Emergency stop, ``enabled`` and the daily halt also gate modifies that widen or remove
  an SL.
"""

from hub.risk._money import normalise_lots, open_risk
from hub.risk.checks import OPEN_CHECKS, check_open, emergency_denial, enabled_denial
from hub.risk.context import AgentBook, CorrelationLookup, PendingOrder, Quote, RiskContext
from hub.risk.decision import DenialCode, Detail, RiskDecision
from hub.risk.fill import FillBreach, check_fill
from hub.risk.modify import MODIFY_CHECKS, check_close, check_modify
from hub.risk.returns import ReturnsWindow
from hub.risk.sizing import floor_to_step, size_for_signal
from hub.risk.summary import (
    AgentRiskSummary,
    ExposureSummary,
    TradingState,
    agent_risk_summary,
    exposure_summary,
    trading_state,
)

__all__ = [
    "MODIFY_CHECKS",
    "OPEN_CHECKS",
    "AgentBook",
    "AgentRiskSummary",
    "CorrelationLookup",
    "DenialCode",
    "Detail",
    "ExposureSummary",
    "FillBreach",
    "PendingOrder",
    "Quote",
    "ReturnsWindow",
    "RiskContext",
    "RiskDecision",
    "TradingState",
    "agent_risk_summary",
    "check_close",
    "check_fill",
    "check_modify",
    "check_open",
    "emergency_denial",
    "enabled_denial",
    "exposure_summary",
    "floor_to_step",
    "normalise_lots",
    "open_risk",
    "size_for_signal",
    "trading_state",
]
