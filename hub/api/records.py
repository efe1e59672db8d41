"""REST on records: trades, logs, signals (newest first, keyset pages), equity series and
candles (oldest first, pages by bar open time).

A token limited to agents reads only its agents' rows, and of a signal only its agents'
routes and targets."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hub.api.common import hub_of, json_response, require
from hub.candles import TIMEFRAMES, Timeframe
from hub.errors import HubError
from hub.records import QueryError, SignalRow, StoreUnavailable

__all__ = ["page", "routes"]


def _int(request: Request, name: str, default: int | None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise HubError("bad_request", f"{name}: must be an integer, got {raw!r}") from None


async def page(
    request: Request,
    key: str,
    query: Callable[..., Awaitable[Sequence[Any]]],
    narrow: Callable[[Any, frozenset[str]], Any] | None = None,
    filters: Callable[[Request], dict[str, str | None]] | None = None,
) -> Response:
    access = require(request, "read")  # before any parameter is judged
    extra = filters(request) if filters is not None else {}
    agent = request.query_params.get("agent") or None
    if agent is not None and access.agents is not None and agent not in access.agents:
        raise HubError("forbidden", f"this token may not read agent {agent!r}")
    if agent is None and access.agents is not None and len(access.agents) == 1:
        agent = next(iter(access.agents))
    elif agent is None and access.agents is not None:
        raise HubError("bad_request", "agent: required for a token limited to some agents")
    limit = _int(request, "limit", 100)
    before = _int(request, "before", None)
    try:
        rows = await query(agent=agent, limit=limit, before=before, **extra)
    except QueryError as exc:
        raise HubError("bad_request", str(exc)) from None
    except StoreUnavailable as exc:
        raise HubError("service_unavailable", f"records store unavailable: {exc}") from None
    next_before = rows[-1].id if rows and len(rows) == limit else None
    if narrow is not None and access.agents is not None:
        rows = [narrow(row, access.agents) for row in rows]
    return json_response({key: rows, "next_before": next_before})


_EVENT = re.compile(r"[A-Za-z0-9_]{1,64}")
TRADE_STATUSES = ("accepted", "open", "closed", "rejected", "failed")


def _trade_filters(request: Request) -> dict[str, str | None]:
    """``?status=closed`` keeps one status (the dashboard's history)."""
    status = request.query_params.get("status")
    if status is not None and status not in TRADE_STATUSES:
        raise HubError(
            "bad_request", f"status: must be one of {', '.join(TRADE_STATUSES)}, got {status!r}"
        )
    return {"status": status}


def _log_filters(request: Request) -> dict[str, str | None]:
    """``?event=order_rejected`` keeps one event type (the dashboard's journal)."""
    event = request.query_params.get("event")
    if event is not None and not _EVENT.fullmatch(event):
        raise HubError("bad_request", f"event: must be an event type (order_filled), got {event!r}")
    return {"event_type": event}


async def trades(request: Request) -> Response:
    return await page(request, "trades", hub_of(request).store.trades, filters=_trade_filters)


async def logs(request: Request) -> Response:
    return await page(request, "logs", hub_of(request).store.logs, filters=_log_filters)


def _signal_for(row: SignalRow, agents: frozenset[str]) -> SignalRow:
    """A signal as a token limited to ``agents`` sees it: its agents' routes and targets."""
    outcome = row.outcome
    if outcome is not None and isinstance(outcome.get("routes"), list):
        routes = [r for r in outcome["routes"] if isinstance(r, dict) and r.get("agent") in agents]
        outcome = {**outcome, "routes": routes}
    payload = row.payload
    if isinstance(payload.get("agents"), list):
        payload = {**payload, "agents": [a for a in payload["agents"] if a in agents]}
    return msgspec.structs.replace(row, outcome=outcome, payload=payload)


async def signals(request: Request) -> Response:
    return await page(request, "signals", hub_of(request).store.signals, _signal_for)


async def equity(request: Request) -> Response:
    agent_id = request.path_params["agent_id"]
    require(request, "read", agent_id)
    hub = hub_of(request)
    if hub.registry.get(agent_id) is None:
        raise HubError("not_found", f"unknown agent {agent_id!r}")
    since = _int(request, "since", None)
    limit = _int(request, "limit", 1000)
    try:
        rows = await hub.store.equity(agent_id, since_ms=since, limit=limit or 1000)
    except QueryError as exc:
        raise HubError("bad_request", str(exc)) from None
    except StoreUnavailable as exc:
        raise HubError("service_unavailable", f"records store unavailable: {exc}") from None
    points = [
        {
            "time": r.created_at,
            "balance": r.balance,
            "equity": r.equity,
            "margin": r.margin,
            "profit": r.profit,
        }
        for r in rows
    ]
    return json_response({"agent_id": agent_id, "points": points})


MAX_CANDLES = 5000


async def candles(request: Request) -> Response:
    """Bars of one agent's symbol, oldest first: the stored ones and the current one."""
    agent_id = request.path_params["agent_id"]
    symbol = request.path_params["symbol"]
    require(request, "read", agent_id)
    hub = hub_of(request)
    agent = hub.registry.get(agent_id)
    if agent is None:
        raise HubError("not_found", f"unknown agent {agent_id!r}")
    if symbol not in agent.config.symbols:
        symbols = ", ".join(agent.config.symbols)
        raise HubError("not_found", f"agent {agent_id} does not trade {symbol!r} (only {symbols})")
    tf = request.query_params.get("tf", "M1")
    if tf not in TIMEFRAMES:
        raise HubError("bad_request", f"tf: must be one of {', '.join(TIMEFRAMES)}, got {tf!r}")
    timeframe: Timeframe = tf
    limit = _int(request, "limit", 500)
    before = _int(request, "before", None)
    if limit is None or not 1 <= limit <= MAX_CANDLES:
        raise HubError("bad_request", f"limit: must be from 1 to {MAX_CANDLES}, got {limit}")
    if before is not None and before < 1:
        raise HubError("bad_request", f"before: must be a bar open time (epoch ms), got {before}")
    try:
        rows = await hub.store.candles(agent_id, symbol, tf, limit=limit, before=before)
    except QueryError as exc:
        raise HubError("bad_request", str(exc)) from None
    except StoreUnavailable as exc:
        raise HubError("service_unavailable", f"records store unavailable: {exc}") from None
    bars: list[Any] = list(rows)
    current = hub.candles.current(agent_id, symbol, timeframe)
    if current is not None and (before is None or current.t < before):
        # The writer stores bars a moment later: the live bar wins over its stored copy.
        if bars and bars[-1].t == current.t:
            bars[-1] = current
        elif not bars or bars[-1].t < current.t:
            bars.append(current)
            bars = bars[-limit:]
    next_before = bars[0].t if len(bars) == limit else None
    body = {"agent_id": agent_id, "symbol": symbol, "tf": tf, "candles": bars}
    return json_response({**body, "next_before": next_before})


routes = [
    Route("/api/trades", trades),
    Route("/api/logs", logs),
    Route("/api/signals", signals),
    Route("/api/agents/{agent_id}/equity", equity),
    Route("/api/agents/{agent_id}/candles/{symbol}", candles),
]
