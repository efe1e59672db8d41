"""``/openapi.json`` (built from the same msgspec structs the endpoints decode and encode),
``/docs`` (a page listing it, no external assets) and ``/metrics`` (Prometheus text)."""

from __future__ import annotations

import html
from typing import Any

import msgspec
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from channels.protocol import ErrorBody
from hub import __version__
from hub.agents import AgentStatus, GlobalSummary
from hub.api.commands import OPS
from hub.api.common import hub_of, json_response
from hub.bridge.models import Account, ClosedTrade, PositionList, Tick
from hub.records.rows import MAX_LIMIT

__all__ = ["build_openapi", "routes"]


class Error(msgspec.Struct, frozen=True, kw_only=True):
    error: ErrorBody


class TradeList(msgspec.Struct, frozen=True, kw_only=True):
    trades: list[ClosedTrade]


_TYPES: list[Any] = [
    Error,
    GlobalSummary,
    Account,
    Tick,
    PositionList,
    TradeList,
    AgentStatus,
    *(op.request for op in OPS),
]

AGENT = {"name": "agent_id", "in": "path", "required": True, "schema": {"type": "string"}}
SYMBOL = {"name": "symbol", "in": "path", "required": True, "schema": {"type": "string"}}
CHANNEL = {"name": "channel", "in": "path", "required": True, "schema": {"type": "string"}}
PAGE = [
    {"name": "agent", "in": "query", "schema": {"type": "string"}},
    {
        "name": "limit",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
    },
    {"name": "before", "in": "query", "schema": {"type": "integer", "minimum": 1}},
]

NOTIFY_FILTERS = [
    {"name": "target", "in": "query", "schema": {"type": "string"}},
    {"name": "status", "in": "query", "schema": {"enum": ["pending", "delivered"]}},
    {"name": "event", "in": "query", "schema": {"type": "string"}},
]

IDEMPOTENCY_KEY = {"name": "Idempotency-Key", "in": "header", "schema": {"type": "string"}}

# (method, path, summary, auth role or None, body struct, 200 schema name or None, params)
_Entry = tuple[str, str, str, str | None, str | None, str | None, list[dict[str, Any]]]
_READS: list[_Entry] = [
    ("get", "/health", "Liveness", None, None, None, []),
    ("get", "/api/status", "Version, uptime, broker, store, loops, connections", None, None, None, []),
    ("get", "/api/whoami", "The caller's token name, role and agents", "read", None, None, []),
    ("get", "/api/symbols", "Symbol contract specs", "read", None, None, []),
    ("get", "/api/agents", "Agents with config and status", "read", None, None, []),
    ("get", "/api/agents/summary", "GlobalSummary", "read", None, "GlobalSummary", []),
    ("get", "/api/agents/{agent_id}", "One agent", "read", None, None, [AGENT]),
    ("get", "/api/agents/{agent_id}/account", "Last polled account", "read", None, "Account", [AGENT]),
    ("get", "/api/agents/{agent_id}/positions", "Open positions", "read", None, "PositionList", [AGENT]),
    ("get", "/api/agents/{agent_id}/tick/{symbol}", "Last tick", "read", None, "Tick", [AGENT, SYMBOL]),
    ("get", "/api/agents/{agent_id}/history", "Closed trades from the bridge", "read", None, "TradeList", [AGENT]),
    ("get", "/api/agents/{agent_id}/equity", "Equity snapshots for charts", "read", None, None, [AGENT, {"name": "since", "in": "query", "schema": {"type": "integer"}}]),
    ("get", "/api/agents/{agent_id}/candles/{symbol}", "OHLC bars of the bid, oldest first", "read", None, None, [AGENT, SYMBOL, {"name": "tf", "in": "query", "schema": {"type": "string", "enum": ["M1", "M5", "M15", "H1"]}}, {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 5000}}, {"name": "before", "in": "query", "schema": {"type": "integer", "minimum": 1}}]),
    ("get", "/api/signals", "Signals, newest first", "read", None, None, PAGE),
    ("get", "/api/trades", "Trade records, newest first", "read", None, None, [*PAGE, {"name": "status", "in": "query", "schema": {"type": "string", "enum": ["accepted", "open", "closed", "rejected", "failed"]}}]),
    ("get", "/api/logs", "Log records, newest first", "read", None, None, [*PAGE, {"name": "event", "in": "query", "schema": {"type": "string", "pattern": "^[A-Za-z0-9_]{1,64}$"}}]),
    ("get", "/api/notifications", "Notification deliveries, newest first", "read", None, None, [*PAGE, *NOTIFY_FILTERS]),
    ("get", "/api/risk", "Per-agent risk state and global exposure", "read", None, None, []),
    ("get", "/api/channels/{channel}/history", "A channel's bounded history", "read", None, None, [CHANNEL, {"name": "since", "in": "query", "schema": {"type": "integer", "minimum": 0}}]),
    ("get", "/api/stream", "Server-Sent Events", "read", None, None, [{"name": "channels", "in": "query", "required": True, "schema": {"type": "string"}}]),
    ("get", "/metrics", "Prometheus metrics", None, None, None, []),
    ("get", "/asyncapi.json", "The WebSocket protocol (/ws) as an AsyncAPI 3.0 document", None, None, None, []),
]  # fmt: skip
_COMMANDS: list[_Entry] = [
    (
        "post",
        op.path,
        op.summary,
        op.role,
        op.request.__name__,
        None,
        [
            *([AGENT] if op.scope == "agent" else []),
            *([IDEMPOTENCY_KEY] if op.idempotency_header else []),
            *({"name": f, "in": "query", "schema": {"type": "boolean"}} for f in op.query_flags),
        ],
    )
    for op in OPS
]
_OPS = _READS + _COMMANDS
_REQUIRED_BODIES = {
    op.request.__name__ for op in OPS if any(f.required for f in msgspec.structs.fields(op.request))
}


def build_openapi() -> dict[str, Any]:
    _, components = msgspec.json.schema_components(
        _TYPES, ref_template="#/components/schemas/{name}"
    )
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    paths: dict[str, dict[str, Any]] = {}
    for method, path, summary, role, body, answer, params in _OPS:
        ok: dict[str, Any] = {"description": "OK"}
        if answer is not None:
            ok["content"] = {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{answer}"}}
            }
        op: dict[str, Any] = {
            "summary": summary,
            "responses": {
                "200": ok,
                "4XX": {"description": "Error", "content": error},
                "5XX": {"description": "Error", "content": error},
            },
        }
        if params:
            op["parameters"] = params
        if role is not None:
            op["security"] = [{"bearer": []}]
            op["description"] = f"Needs a {role!r} token."
        if body is not None:
            op["requestBody"] = {
                "required": body in _REQUIRED_BODIES,
                "content": {
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}
                },
            }
        paths.setdefault(path, {})[method] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "MT4 Hub", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


async def openapi(request: Request) -> Response:
    return json_response(hub_of(request).openapi)


async def docs(request: Request) -> Response:
    rows = "".join(
        f"<tr><td>{m.upper()}</td><td><code>{html.escape(p)}</code></td>"
        f"<td>{html.escape(s)}</td><td>{html.escape(r or 'open')}</td></tr>"
        for m, p, s, r, _, _, _ in _OPS
    )
    page = (
        "<!doctype html><meta charset=utf-8><title>MT4 Hub API</title>"
        "<style>body{font:14px system-ui;margin:2em}td{padding:2px 10px}</style>"
        f"<h1>MT4 Hub API {__version__}</h1><p>Schema: <a href=/openapi.json>/openapi.json</a>; "
        "WebSocket protocol at <code>/ws</code>: <a href=/asyncapi.json>/asyncapi.json</a>.</p>"
        f"<table><tr><th>method<th>path<th>what<th>token</tr>{rows}</table>"
    )
    return HTMLResponse(page)


async def metrics(request: Request) -> Response:
    hub_of(request).metrics.refresh()
    return Response(
        generate_latest(hub_of(request).metrics.registry), media_type=CONTENT_TYPE_LATEST
    )


routes = [
    Route("/openapi.json", openapi),
    Route("/docs", docs),
    Route("/metrics", metrics),
]
