"""The one command path: every trading op is declared once in :data:`OPS`.

A declaration names the op, its request struct (with its ``Meta`` constraints), the role
it needs, its scope rule, its handler, and its REST route. The socket (``/ws`` ops), the
REST routes, OpenAPI and README's op table are all derived from this list, and both
transports run :func:`execute`: the same checks in the same order, the same error bodies.

Order of checks: role (403) → scope (the ``agent`` field or path: 403 when the token may
not touch it, 404 when unknown; global ops need a token not limited to agents) → the
request struct (400, ``field: problem``) → the token's command rate (429) → the handler.

Adding an op: one :class:`OpSpec` here plus its handler (and its request struct in
``hub/trading/models.py``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from channels.protocol import CommandOp
from channels.session import Access, CommandReply, Role
from channels.validation import describe
from hub.api.common import authenticate, hub_of, json_response, read_body
from hub.errors import HubError
from hub.trading.models import (
    CloseAllRequest,
    CloseRequest,
    EmergencyRequest,
    LiftHaltRequest,
    ModifyRequest,
    ResumeRequest,
    SignalRequest,
    TradeRequest,
)

if TYPE_CHECKING:
    from hub.app import Hub

__all__ = [
    "OPS",
    "Call",
    "OpSpec",
    "Refused",
    "execute",
    "op_table",
    "prepare",
    "routes",
    "ws_command",
]

Scope = Literal["agent", "signal", "global"]


class Refused(HubError):
    """The op was refused before it ran (bad input, not allowed): a WS ``error`` message."""


@dataclass(frozen=True)
class Call:
    """Who asked, and for which agent (``agent`` scope)."""

    access: Access
    agent: str = ""


Handler = Callable[["Hub", Call, Any], Awaitable[Any]]


@dataclass(frozen=True)
class OpSpec:
    """One op: ``name`` on the socket, ``path`` (POST) over REST.

    ``scope``: ``agent`` — the op names one agent (``agent`` field on the socket, the
    path over REST); ``signal`` — the op may reach several agents, narrowed to the token's;
    ``global`` — the op touches every agent and needs a token not limited to agents."""

    name: str
    request: type[msgspec.Struct]
    role: Role
    scope: Scope
    handler: Handler
    path: str
    summary: str
    idempotency_header: bool = False
    query_flags: tuple[str, ...] = ()  # boolean request fields REST also takes as ?name=true


async def _trade(hub: Hub, call: Call, req: TradeRequest) -> Any:
    return await hub.trading.open(call.agent, req, by=call.access.name)


async def _close(hub: Hub, call: Call, req: CloseRequest) -> Any:
    return await hub.trading.close(call.agent, req, by=call.access.name)


async def _modify(hub: Hub, call: Call, req: ModifyRequest) -> Any:
    return await hub.trading.modify(call.agent, req, by=call.access.name)


async def _close_all(hub: Hub, call: Call, req: CloseAllRequest) -> Any:
    return await hub.trading.close_all(call.agent, by=call.access.name)


async def _signal(hub: Hub, call: Call, req: SignalRequest) -> Any:
    return await hub.signals.submit(req, by=call.access.name)


async def _emergency_stop(hub: Hub, call: Call, req: EmergencyRequest) -> Any:
    return await hub.emergency.stop(
        reason=req.reason,
        close_positions=req.close_positions,
        by=call.access.name,
        close_all=hub.trading.close_all_held,
    )


async def _resume(hub: Hub, call: Call, req: ResumeRequest) -> Any:
    return await hub.emergency.resume(by=call.access.name)


async def _lift_halt(hub: Hub, call: Call, req: LiftHaltRequest) -> Any:
    return await hub.daily.lift(call.agent, by=call.access.name, reason=req.reason)


AGENT_PATH = "/api/agents/{agent_id}"

OPS: tuple[OpSpec, ...] = (
    OpSpec("trade", TradeRequest, "trade", "agent", _trade, f"{AGENT_PATH}/trade",
           "Open a position (dry_run: only check it)", idempotency_header=True,
           query_flags=("dry_run",)),
    OpSpec("close", CloseRequest, "trade", "agent", _close, f"{AGENT_PATH}/close",
           "Close a position, fully or partly (lots)"),
    OpSpec("modify", ModifyRequest, "trade", "agent", _modify, f"{AGENT_PATH}/modify",
           "Change a position's SL/TP"),
    OpSpec("close_all", CloseAllRequest, "trade", "agent", _close_all, f"{AGENT_PATH}/close-all",
           "Close every position of an agent"),
    OpSpec("signal", SignalRequest, "trade", "signal", _signal, "/api/signals",
           "Submit an ML signal: routed, sized and risk-checked per agent"),
    OpSpec("emergency_stop", EmergencyRequest, "admin", "global", _emergency_stop,
           "/api/emergency/stop-all", "Emergency stop (kill switch), optionally closing all"),
    OpSpec("resume", ResumeRequest, "admin", "global", _resume, "/api/emergency/resume",
           "Lift the emergency stop"),
    OpSpec("lift_halt", LiftHaltRequest, "admin", "agent", _lift_halt,
           f"{AGENT_PATH}/lift-halt", "Lift an agent's daily-loss halt before 00:00 UTC"),
)  # fmt: skip

BY_NAME = {op.name: op for op in OPS}


def prepare(
    hub: Hub, op: OpSpec, fields: dict[str, Any], access: Access
) -> Callable[[], Awaitable[Any]]:
    """Check ``op`` with the request ``fields`` for ``access`` and return the command to
    run; raises :class:`HubError` (:class:`Refused` when it may not run at all).

    Synchronous, so that the socket answers a refusal in order with the frames around it."""
    if not access.allows(op.role):
        raise Refused("forbidden", f"op {op.name!r} needs the {op.role!r} role")
    call = Call(access=access)
    if op.scope == "agent":
        call = Call(access=access, agent=_agent_field(hub, fields, access))
    elif op.scope == "global" and access.agents is not None:
        raise Refused(
            "forbidden",
            f"op {op.name!r} touches every agent: token {access.name!r} is limited to "
            f"{', '.join(sorted(access.agents))}",
        )
    try:
        req = msgspec.convert(fields, op.request)
    except msgspec.ValidationError as exc:
        raise Refused("bad_request", describe(exc)) from None
    if isinstance(req, SignalRequest):
        req = _signal_scope(req, access)
    hub.limiter.check(access)  # only commands that would run count against the rate
    return lambda: op.handler(hub, call, req)


async def execute(hub: Hub, op: OpSpec, fields: dict[str, Any], access: Access) -> Any:
    """Check and run ``op``: the REST side, and what the socket does in two steps."""
    return await prepare(hub, op, fields, access)()


def _agent_field(hub: Hub, fields: dict[str, Any], access: Access) -> str:
    if "agent" not in fields:
        raise Refused("bad_request", "agent: required field missing")
    agent = fields.pop("agent")
    if not isinstance(agent, str):
        raise Refused("bad_request", f"agent: expected str, got {_json_type(agent)}")
    if not access.may_touch(agent):
        raise Refused("forbidden", f"agent: token {access.name!r} may not touch {agent!r}")
    if hub.registry.get(agent) is None:
        raise HubError("not_found", f"unknown agent {agent!r}")
    return agent


def _json_type(value: Any) -> str:
    names = {bool: "bool", int: "int", float: "float", str: "str", list: "array", dict: "object"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _signal_scope(sig: SignalRequest, access: Access) -> SignalRequest:
    """A limited token's signal reaches only its agents; naming another one is refused."""
    if access.agents is None:
        return sig
    for agent in sig.agents or []:
        if not access.may_touch(agent):
            raise Refused("forbidden", f"agents: token {access.name!r} may not touch {agent!r}")
    return msgspec.structs.replace(sig, agents=sig.agents or sorted(access.agents))


# -- the socket ------------------------------------------------------------------------


def ws_command(
    hub: Hub, op: CommandOp, access: Access
) -> CommandReply | Callable[[], Awaitable[CommandReply]]:
    """A ``CommandOp`` from the socket: a refusal at once, or the command to run, whose
    outcome comes back as a ``result``."""
    try:
        command = prepare(hub, BY_NAME[op.name], op.fields, access)
    except Refused as exc:
        return CommandReply.refusal(exc.code, exc.message)
    except HubError as exc:
        return CommandReply.failure(exc.code, exc.message, exc.details)

    async def run() -> CommandReply:
        try:
            return CommandReply.success(await command())
        except HubError as exc:
            return CommandReply.failure(exc.code, exc.message, exc.details)

    return run


# -- REST ------------------------------------------------------------------------------


def _endpoint(op: OpSpec) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        access = authenticate(request)
        fields = await read_body(request, dict[str, Any])
        if op.scope == "agent":
            if "agent" in fields:
                raise Refused("bad_request", "agent: unknown field (the agent is in the path)")
            fields["agent"] = request.path_params["agent_id"]
        for flag in op.query_flags:
            value = request.query_params.get(flag)
            if value is not None:
                if value.lower() not in _BOOLEANS:
                    raise Refused("bad_request", f"{flag}: expected true or false, got {value!r}")
                fields[flag] = _BOOLEANS[value.lower()]
        key = request.headers.get("idempotency-key")
        if op.idempotency_header and key is not None:
            if fields.get("client_order_id", key) != key:
                raise Refused(
                    "bad_request", "Idempotency-Key and client_order_id differ: send one of them"
                )
            fields["client_order_id"] = key
        return json_response(await execute(hub_of(request), op, fields, access))

    endpoint.__name__ = op.name
    return endpoint


_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}

routes = [Route(op.path, _endpoint(op), methods=["POST"]) for op in OPS]


# -- documentation ---------------------------------------------------------------------


def op_table() -> str:
    """README's table of commands, as Markdown (checked against README by a test)."""
    rows = [
        "| op (WebSocket) | REST | role | scope | request fields |",
        "|---|---|---|---|---|",
    ]
    for op in OPS:
        fields = [*(["agent"] if op.scope == "agent" else []), *_field_names(op.request)]
        where = {"agent": "one agent", "signal": "the token's agents", "global": "every agent"}
        rows.append(
            f"| `{op.name}` | `POST {op.path}` | {op.role} | {where[op.scope]} | "
            f"{', '.join(f'`{f}`' for f in fields) or '—'} |"
        )
    return "\n".join(rows) + "\n"


def _field_names(struct: type[msgspec.Struct]) -> list[str]:
    return [f.name if f.required else f"{f.name}?" for f in msgspec.structs.fields(struct)]


if __name__ == "__main__":  # README's table: python -m hub.api.commands
    print(op_table(), end="")
