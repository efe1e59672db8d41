"""REST read side: health, status, agents, summary, account, positions, ticks, bridge
history, risk."""

from __future__ import annotations

import time

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from channels.session import Access
from hub import __version__
from hub.agents import AgentRuntime
from hub.api.common import hub_of, json_response, require
from hub.bridge.client import BridgeError
from hub.bridge.models import PositionList
from hub.errors import HubError
from hub.risk import agent_risk_summary, exposure_summary

__all__ = ["routes"]


def _caller_and_agent(request: Request) -> tuple[Access, AgentRuntime]:
    agent_id = request.path_params["agent_id"]
    access = require(request, "read", agent_id)
    agent = hub_of(request).registry.get(agent_id)
    if agent is None:
        raise HubError("not_found", f"unknown agent {agent_id!r}")
    return access, agent


def _agent(request: Request) -> AgentRuntime:
    return _caller_and_agent(request)[1]


def _agent_view(request: Request, agent: AgentRuntime) -> dict[str, object]:
    hub = hub_of(request)
    cfg = agent.config
    return {
        "agent_id": agent.id,
        "name": cfg.name,
        "strategy": cfg.strategy,
        "bridge": cfg.bridge,
        "enabled": cfg.enabled,
        "symbols": cfg.symbols,
        "risk": msgspec.to_builtins(cfg.risk),
        "status": agent.status(hub.config.polling.stale_after, time.monotonic()),
        "account": agent.account,
        "open_positions": len(agent.positions),
    }


async def health(request: Request) -> Response:
    return json_response({"status": "ok"})


async def status(request: Request) -> Response:
    hub = hub_of(request)
    now = time.monotonic()
    stale_after = hub.config.polling.stale_after
    return json_response(
        {
            "version": __version__,
            "instance": hub.instance_id,
            "polling": hub.supervisor.polled,
            "coordination": hub.coordination.status(),
            "uptime_s": round(now - hub.started, 1),
            "broker": hub.broker.status(),
            "store": hub.store_status(),
            "connections": hub.connection_count(),
            "agents": {
                agent.id: {
                    "status": agent.status(stale_after, now),
                    "loop": agent.stats,
                    "bridge": agent.client.status(),
                }
                for agent in hub.registry.agents.values()
            },
        }
    )


async def agents(request: Request) -> Response:
    access = require(request, "read")
    hub = hub_of(request)
    return json_response(
        [
            _agent_view(request, agent)
            for agent in hub.registry.agents.values()
            if access.agents is None or agent.id in access.agents
        ]
    )


async def summary(request: Request) -> Response:
    access = require(request, "read")
    return json_response(hub_of(request).registry.summary(access.agents))


async def agent(request: Request) -> Response:
    return json_response(_agent_view(request, _agent(request)))


async def account(request: Request) -> Response:
    agent = _agent(request)
    if agent.account is None:
        raise HubError("agent_offline", f"no account data from {agent.id} yet: {agent.error}")
    return json_response(agent.account)


async def positions(request: Request) -> Response:
    agent = _agent(request)
    return json_response(PositionList(positions=agent.positions, unreadable=agent.unreadable))


async def tick(request: Request) -> Response:
    agent = _agent(request)
    symbol = request.path_params["symbol"]
    if symbol not in agent.config.symbols:
        symbols = ", ".join(agent.config.symbols)
        raise HubError("not_found", f"agent {agent.id} does not trade {symbol!r} (only {symbols})")
    last = agent.ticks.get(symbol)
    if last is None:
        raise HubError("agent_offline", f"no tick for {symbol} from {agent.id} yet: {agent.error}")
    return json_response(last)


async def whoami(request: Request) -> Response:
    access = require(request, "read")
    agents = sorted(access.agents) if access.agents is not None else None
    return json_response({"name": access.name, "role": access.role, "agents": agents})


async def symbols(request: Request) -> Response:
    access = require(request, "read")
    config = hub_of(request).config
    mine = [agent for agent_id, agent in config.agents.items() if access.may_touch(agent_id)]
    traded = {symbol for agent in mine for symbol in agent.symbols}
    return json_response({name: spec for name, spec in config.symbols.items() if name in traded})


async def history(request: Request) -> Response:
    """Closed trades read from the bridge: a read shared for ``polling.history_interval``
    seconds and counted against the token's command rate (the bridge's connections are
    polling's and trading's first)."""
    access, agent = _caller_and_agent(request)
    since = request.query_params.get("since")
    if since is not None and not since.isdigit():
        raise HubError("bad_request", "since: must be epoch milliseconds")
    hub = hub_of(request)
    hub.limiter.check(access)
    try:
        trades = await agent.client.recent_history(
            int(since) if since else None, hub.config.polling.history_interval
        )
    except BridgeError as exc:
        raise HubError(exc.code, f"{agent.id} bridge: {exc}") from None
    return json_response({"trades": trades})


async def risk(request: Request) -> Response:
    access = require(request, "read")
    hub = hub_of(request)
    ctx = hub.risk.context()
    # The global block too counts only the token's agents: a limited token learns nothing
    # of the others (not even their totals).
    mine = msgspec.structs.replace(
        ctx, agents={a: book for a, book in ctx.agents.items() if access.may_touch(a)}
    )
    agents = {agent_id: agent_risk_summary(mine, agent_id) for agent_id in mine.agents}
    return json_response(
        {"agents": agents, "global": exposure_summary(mine), "emergency": hub.emergency.state}
    )


routes = [
    Route("/health", health),
    Route("/api/status", status),
    Route("/api/whoami", whoami),
    Route("/api/symbols", symbols),
    Route("/api/agents", agents),
    Route("/api/agents/summary", summary),
    Route("/api/agents/{agent_id}", agent),
    Route("/api/agents/{agent_id}/account", account),
    Route("/api/agents/{agent_id}/positions", positions),
    Route("/api/agents/{agent_id}/tick/{symbol}", tick),
    Route("/api/agents/{agent_id}/history", history),
    Route("/api/risk", risk),
]
