"""What is worth a notification: the hub's own publications turned into notices (pure).

Order events (``agent:{id}:orders``) keep their names (``filled``, ``closed``,
``rejected``, ``risk_breach`` …); an agent's status becomes ``agent_offline`` /
``agent_online`` when its bridge stops or starts answering, and ``halted`` /
``halt_lifted`` when its trading state enters or leaves ``halted``; ``system``
gives ``emergency_stop`` and ``resume`` (its ``risk_breach`` copy is skipped: the
agent's own one counts). Every notice carries a one-line text for chat targets.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from channels import names
from hub.agents import AgentStatus
from hub.trading.models import OrderEvent

__all__ = ["Notice", "Notices", "one_line"]


class Notice(msgspec.Struct, frozen=True, kw_only=True):
    event: str
    agent_id: str | None
    data: dict[str, Any]
    text: str


def _num(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def one_line(event: str, agent_id: str | None, data: Mapping[str, Any]) -> str:
    """A short human line: ``filled agent_1: buy 0.01 XAUUSD @ 2650.3 sl 2648.5 (ticket 1001)``."""
    who = f"{event} {agent_id}" if agent_id else event
    parts: list[str] = []
    if data.get("action") and data.get("symbol"):
        lots = f" {_num(data['lots'])}" if data.get("lots") is not None else ""
        parts.append(f"{data['action']}{lots} {data['symbol']}")
    elif data.get("symbol"):
        parts.append(str(data["symbol"]))
    for key, label in (("price", "@"), ("sl", "sl"), ("tp", "tp"), ("profit", "profit")):
        if data.get(key) is not None:
            parts.append(f"{label} {_num(data[key])}")
    if data.get("ticket") is not None:
        parts.append(f"(ticket {data['ticket']})")
    error = data.get("error")
    if isinstance(error, Mapping) and error.get("message"):
        parts.append(f"- {error['message']}")
    elif isinstance(error, str) and error:  # an agent status's bridge error
        parts.append(f"- {error}")
    for key in ("reason", "by"):
        if data.get(key) and event in ("emergency_stop", "resume", "halted", "halt_lifted"):
            parts.append(f"{key} {data[key]}")
    if data.get("message") and not error:
        parts.append(f"- {data['message']}")
    detail = " ".join(parts).removeprefix("- ")
    line = f"{who}: {detail}" if detail else who
    return " ".join(line.split())[:400]  # one line, whatever the payload held


class Notices:
    """Turns publications into notices; remembers each agent's last status for transitions
    (an agent is taken as online and active until its first status says otherwise)."""

    def __init__(self) -> None:
        self._online: dict[str, bool] = {}
        self._halted: dict[str, bool] = {}

    def of(self, channel: str, data: Any) -> list[Notice]:
        agent_id = names.agent_of(channel)
        if agent_id is None:
            if channel == names.SYSTEM and isinstance(data, Mapping):
                event = data.get("event")
                if event in ("emergency_stop", "resume"):
                    return [self._notice(str(event), None, dict(data))]
            return []
        kind = names.kind_of(channel)
        if kind == "orders" and isinstance(data, OrderEvent):
            payload = msgspec.structs.asdict(data)
            payload = {k: v for k, v in payload.items() if v is not None}
            return [self._notice(data.event, agent_id, payload)]
        if kind == "status" and isinstance(data, AgentStatus):
            return self._status(agent_id, data)
        return []

    def _status(self, agent_id: str, status: AgentStatus) -> list[Notice]:
        out: list[Notice] = []
        payload = {k: v for k, v in msgspec.structs.asdict(status).items() if v is not None}
        online = status.status == "online"
        if online != self._online.get(agent_id, True):
            out.append(self._notice("agent_online" if online else "agent_offline", agent_id,
                                    payload))  # fmt: skip
        self._online[agent_id] = online
        halted = status.trading == "halted"
        if halted != self._halted.get(agent_id, False):
            out.append(self._notice("halted" if halted else "halt_lifted", agent_id, payload))
        self._halted[agent_id] = halted
        return out

    @staticmethod
    def _notice(event: str, agent_id: str | None, data: dict[str, Any]) -> Notice:
        return Notice(event=event, agent_id=agent_id, data=data,
                      text=one_line(event, agent_id, data))  # fmt: skip
