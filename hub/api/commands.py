"""One dispatcher for trading commands from the socket (ops) and REST (bodies)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from channels.protocol import (
    Close,
    CloseAll,
    Command,
    EmergencyStop,
    Modify,
    Resume,
    SignalOp,
    Trade,
)
from channels.session import Access, CommandReply
from hub.api.common import field_message
from hub.errors import HubError
from hub.trading.models import CloseRequest, ModifyRequest, SignalRequest, TradeRequest

if TYPE_CHECKING:
    from hub.app import Hub

__all__ = ["execute", "run_command"]


def _convert(op: msgspec.Struct, typ: type[Any], drop: tuple[str, ...]) -> Any:
    fields = {
        f: getattr(op, f)
        for f in op.__struct_fields__
        if f not in drop and getattr(op, f) is not None
    }
    try:
        return msgspec.convert(fields, typ)
    except msgspec.ValidationError as exc:
        raise HubError("bad_request", field_message(str(exc))) from None


async def execute(hub: Hub, op: Command, access: Access) -> Any:
    """Run one command op for ``access``; raises HubError with a SPEC code."""
    hub.limiter.check(access)
    trading, by = hub.trading, access.name
    if isinstance(op, Trade):
        return await trading.open(op.agent, _convert(op, TradeRequest, ("id", "agent")), by=by)
    if isinstance(op, Close):
        return await trading.close(op.agent, _convert(op, CloseRequest, ("id", "agent")), by=by)
    if isinstance(op, Modify):
        return await trading.modify(op.agent, _convert(op, ModifyRequest, ("id", "agent")), by=by)
    if isinstance(op, CloseAll):
        return await trading.close_all(op.agent, by=by)
    if isinstance(op, SignalOp):
        sig = _convert(op, SignalRequest, ("id", "entry"))
        if sig.agents is not None and access.agents is not None:
            sig = msgspec.structs.replace(sig, agents=[a for a in sig.agents if a in access.agents])
        elif access.agents is not None:
            sig = msgspec.structs.replace(sig, agents=sorted(access.agents))
        return await hub.signals.submit(sig, by=by)
    if isinstance(op, EmergencyStop):
        return await trading.emergency_stop(
            reason=op.reason, close_positions=op.close_positions, by=by
        )
    if isinstance(op, Resume):
        return await trading.resume(by=by)
    raise HubError("bad_request", f"unknown command {type(op).__name__}")


async def run_command(hub: Hub, op: Command, access: Access) -> CommandReply:
    """The WebSocket side: the same outcome as a ``result`` message."""
    try:
        return CommandReply.success(await execute(hub, op, access))
    except HubError as exc:
        return CommandReply.failure(exc.code, exc.message, exc.details)
