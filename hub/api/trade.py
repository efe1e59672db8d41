"""REST trading: the same commands and result bodies as the socket ops."""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hub.api.common import command, hub_of, json_response, read_body, require
from hub.errors import HubError
from hub.risk import agent_risk_summary, exposure_summary
from hub.trading.models import (
    CloseRequest,
    EmergencyRequest,
    ModifyRequest,
    SignalRequest,
    TradeRequest,
)

__all__ = ["routes"]


def _agent_id(request: Request, role: str = "trade") -> tuple[str, str]:
    agent_id: str = request.path_params["agent_id"]
    access = command(request, role, agent_id)
    if hub_of(request).registry.get(agent_id) is None:
        raise HubError("not_found", f"unknown agent {agent_id!r}")
    return agent_id, access.name


async def trade(request: Request) -> Response:
    agent_id, by = _agent_id(request)
    req: TradeRequest = await read_body(request, TradeRequest)
    key = request.headers.get("idempotency-key")
    if key is not None:
        if req.client_order_id is not None and req.client_order_id != key:
            raise HubError(
                "bad_request", "Idempotency-Key and client_order_id differ: send one of them"
            )
        if not 1 <= len(key) <= 64:
            raise HubError("bad_request", "Idempotency-Key: must be 1 to 64 characters")
        req = msgspec.structs.replace(req, client_order_id=key)
    return json_response(await hub_of(request).trading.open(agent_id, req, by=by))


async def close(request: Request) -> Response:
    agent_id, by = _agent_id(request)
    req = await read_body(request, CloseRequest)
    return json_response(await hub_of(request).trading.close(agent_id, req, by=by))


async def modify(request: Request) -> Response:
    agent_id, by = _agent_id(request)
    req = await read_body(request, ModifyRequest)
    return json_response(await hub_of(request).trading.modify(agent_id, req, by=by))


async def close_all(request: Request) -> Response:
    agent_id, by = _agent_id(request)
    return json_response(await hub_of(request).trading.close_all(agent_id, by=by))


async def emergency_stop(request: Request) -> Response:
    access = command(request, "admin")
    req: EmergencyRequest = await read_body(request, EmergencyRequest)
    result = await hub_of(request).trading.emergency_stop(
        reason=req.reason, close_positions=req.close_positions, by=access.name
    )
    return json_response(result)


async def resume(request: Request) -> Response:
    access = command(request, "admin")
    return json_response(await hub_of(request).trading.resume(by=access.name))


async def post_signal(request: Request) -> Response:
    access = command(request, "trade")
    sig: SignalRequest = await read_body(request, SignalRequest)
    if access.agents is not None:
        allowed = [a for a in (sig.agents or sorted(access.agents)) if a in access.agents]
        sig = msgspec.structs.replace(sig, agents=allowed)
    return json_response(await hub_of(request).signals.submit(sig, by=access.name))


async def risk(request: Request) -> Response:
    access = require(request, "read")
    trading = hub_of(request).trading
    ctx = trading.context()
    agents = {
        agent_id: agent_risk_summary(ctx, agent_id)
        for agent_id in ctx.agents
        if access.agents is None or agent_id in access.agents
    }
    return json_response(
        {
            "agents": agents,
            "global": exposure_summary(ctx),
            "emergency": trading.emergency,
        }
    )


routes = [
    Route("/api/agents/{agent_id}/trade", trade, methods=["POST"]),
    Route("/api/agents/{agent_id}/close", close, methods=["POST"]),
    Route("/api/agents/{agent_id}/modify", modify, methods=["POST"]),
    Route("/api/agents/{agent_id}/close-all", close_all, methods=["POST"]),
    Route("/api/emergency/stop-all", emergency_stop, methods=["POST"]),
    Route("/api/emergency/resume", resume, methods=["POST"]),
    Route("/api/risk", risk),
]
