"""``/asyncapi.json``: the WebSocket protocol (``/ws``) as an AsyncAPI 3.0 document.

Derived, never written by hand: the transport's ops and the server's messages are the
members of the tagged unions in :mod:`channels.protocol`, the trading ops are
:data:`hub.api.commands.OPS`, and every schema is msgspec's JSON Schema of the struct the
code decodes or encodes. A new op or message type is described as soon as it is
declared. The document speaks for the hub: client ops are operations it ``receive``\\s,
server messages operations it ``send``\\s.
"""

from __future__ import annotations

import copy
from typing import Any, get_args

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from channels import protocol
from hub import __version__
from hub.agents import AgentStatus, GlobalSummary
from hub.api.commands import OPS, OpSpec
from hub.api.common import hub_of, json_response
from hub.bridge.models import Account, PositionList, Tick
from hub.trading.models import OrderEvent

__all__ = ["build_asyncapi", "client_ops", "routes", "server_messages"]

_SCHEMAS = "#/components/schemas/{name}"
_CHANNEL = "#/channels/ws"

# What the data of a snapshot or event is, per channel (SPEC 4; docs/protocol.md).
_PAYLOADS: dict[str, type[msgspec.Struct]] = {
    "agent:{id}:ticks": Tick,
    "agent:{id}:account": Account,
    "agent:{id}:positions": PositionList,
    "agent:{id}:status": AgentStatus,
    "agent:{id}:orders": OrderEvent,
    "summary": GlobalSummary,
}

# The messages that answer each transport op (every command answers result or error).
_REPLIES: dict[str, tuple[str, ...]] = {
    "auth": ("welcome", "error"),
    "subscribe": ("subscribed", "snapshot", "error"),
    "unsubscribe": ("unsubscribed", "error"),
    "ping": ("pong",),
}
_COMMAND_REPLIES = ("result", "error")
# Sent without being asked: live publications, idle heartbeats, a changed epoch
# (``subscribed`` without id), a slow consumer's last word (``error``).
_PUSHED = ("snapshot", "event", "heartbeat", "subscribed", "error")


def _tag(struct: type[msgspec.Struct]) -> str:
    tag = struct.__struct_config__.tag
    assert isinstance(tag, str), struct
    return tag


def client_ops() -> dict[str, type[msgspec.Struct] | OpSpec]:
    """Every op the hub accepts on ``/ws``: the transport's own, then the commands."""
    ops: dict[str, type[msgspec.Struct] | OpSpec] = {_tag(s): s for s in get_args(protocol.Op)}
    ops.update({op.name: op for op in OPS})
    return ops


def server_messages() -> dict[str, type[msgspec.Struct]]:
    """Every message type the hub sends on ``/ws``."""
    return {_tag(s): s for s in get_args(protocol.ServerMessage)}


def _summary(struct: type[Any]) -> str:
    doc = (struct.__doc__ or "").strip()
    return doc.split("\n\n")[0].replace("\n", " ") if doc else struct.__name__


def _command_schema(op: OpSpec, request: dict[str, Any], id_schema: Any) -> dict[str, Any]:
    """A command frame: ``op``, ``id``, ``agent`` (agent scope) and the request's fields."""
    schema = copy.deepcopy(request)
    schema["title"] = f"{op.name} op"
    properties = {"op": {"enum": [op.name]}, "id": id_schema}
    required = ["op"]
    if op.scope == "agent":
        properties["agent"] = {"type": "string", "description": "the agent's id"}
        required.append("agent")
    schema["properties"] = {**properties, **request.get("properties", {})}
    schema["required"] = [*required, *request.get("required", [])]
    schema.setdefault("description", op.summary)
    return schema


def build_asyncapi() -> dict[str, Any]:
    """The document, without ``servers`` (the endpoint adds the address it was asked at)."""
    ops = client_ops()
    transport = [v for v in ops.values() if not isinstance(v, OpSpec)]
    commands = [v for v in ops.values() if isinstance(v, OpSpec)]
    structs: list[Any] = [
        *transport,
        *server_messages().values(),
        *(op.request for op in commands),
        *_PAYLOADS.values(),
    ]
    _, schemas = msgspec.json.schema_components(structs, ref_template=_SCHEMAS)
    id_schema = schemas[protocol.Ping.__name__]["properties"]["id"]
    messages: dict[str, Any] = {}
    for name, spec in ops.items():
        key = f"op.{name}"
        if isinstance(spec, OpSpec):
            frame = f"{spec.request.__name__}Op"
            schemas[frame] = _command_schema(spec, schemas[spec.request.__name__], id_schema)
            messages[key] = {"name": name, "title": f"{name} op", "summary": spec.summary,
                             "payload": {"$ref": _SCHEMAS.format(name=frame)},
                             "x-role": spec.role, "x-rest": f"POST {spec.path}"}  # fmt: skip
        else:
            messages[key] = {"name": name, "title": f"{name} op", "summary": _summary(spec),
                             "payload": {"$ref": _SCHEMAS.format(name=spec.__name__)}}  # fmt: skip
    for name, struct in server_messages().items():
        messages[f"message.{name}"] = {
            "name": name,
            "title": f"{name} message",
            "summary": _summary(struct),
            "payload": {"$ref": _SCHEMAS.format(name=struct.__name__)},
        }
    payloads = ", ".join(f"`{ch}`: {s.__name__}" for ch, s in _PAYLOADS.items())
    messages["message.snapshot"]["description"] = messages["message.event"]["description"] = (
        f"`data` is the channel's payload: {payloads} (components/schemas)."
    )

    def refs(*keys: str) -> list[dict[str, str]]:
        return [{"$ref": f"{_CHANNEL}/messages/{k}"} for k in keys]

    operations: dict[str, Any] = {}
    for name, spec in ops.items():
        replies = _COMMAND_REPLIES if isinstance(spec, OpSpec) else _REPLIES[name]
        operation: dict[str, Any] = {
            "action": "receive",
            "channel": {"$ref": _CHANNEL},
            "title": name,
            "summary": messages[f"op.{name}"]["summary"],
            "messages": refs(f"op.{name}"),
            "reply": {
                "channel": {"$ref": _CHANNEL},
                "messages": refs(*(f"message.{r}" for r in replies)),
            },
        }
        if isinstance(spec, OpSpec):
            operation["description"] = f"Needs a {spec.role!r} token. Also `POST {spec.path}`."
        operations[f"receive_{name}"] = operation
    operations["send_publications"] = {
        "action": "send",
        "channel": {"$ref": _CHANNEL},
        "title": "publications",
        "summary": "Snapshots and live events of subscribed channels, heartbeats, notices",
        "messages": refs(*(f"message.{m}" for m in _PUSHED)),
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "MT4 Hub WebSocket",
            "version": __version__,
            "description": (
                "JSON text frames, one object each (or one per line with `?batch=1`). "
                "Authenticate with `Authorization: Bearer T`, `?token=T` or a first `auth` op; "
                "every op may carry `id`, echoed in its reply. See docs/protocol.md."
            ),
        },
        "defaultContentType": "application/json",
        "channels": {
            "ws": {
                "address": "/ws",
                "title": "The hub's socket",
                "messages": {k: {"$ref": f"#/components/messages/{k}"} for k in messages},
            }
        },
        "operations": operations,
        "components": {
            "schemas": schemas,
            "messages": messages,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "token": {"type": "httpApiKey", "name": "token", "in": "query"},
            },
        },
    }


async def asyncapi(request: Request) -> Response:
    doc = hub_of(request).asyncapi
    scheme = "wss" if request.url.scheme == "https" else "ws"
    server = {
        "host": request.url.netloc,
        "protocol": scheme,
        "pathname": "/ws",
        "security": [
            {"$ref": "#/components/securitySchemes/bearer"},
            {"$ref": "#/components/securitySchemes/token"},
        ],
    }
    return json_response({**doc, "servers": {"hub": server}})


routes = [Route("/asyncapi.json", asyncapi)]
