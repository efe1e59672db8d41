"""A tiny Starlette app serving channels.Session on a real uvicorn socket, per test.

Hubs run on the in-process broker and on Redis (TEST_REDIS_URL, or a private redis-server;
without one the Redis variants skip, and fail under CI=true).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import msgspec
import pytest
import uvicorn
import websockets
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from channels.asgi import StarletteTransport, bearer_token, wants_batch
from channels.broker import Broker
from channels.memory import MemoryBroker
from channels.node import Node
from channels.protocol import CommandOp
from channels.redis import RedisBroker
from channels.session import Access, CommandReply, Session, SessionLimits
from tests.rediskit import redis_prefix
from tests.timing import eventually, units

TOKENS = {
    "read-t": Access(name="dash", role="read"),
    "trade-t": Access(name="ml", role="trade"),
    "admin-t": Access(name="ops", role="admin"),
    "scoped-t": Access(name="ml1", role="trade", agents=frozenset({"agent_1"})),
}


async def authenticate(token: str) -> Access | None:
    return TOKENS.get(token)


COMMANDS = frozenset({"trade", "close_all", "emergency_stop"})


def on_command(
    op: CommandOp, access: Access
) -> CommandReply | Callable[[], Awaitable[CommandReply]]:
    """A stand-in for the hub's command table: roles and the rest are the server's to judge."""
    if op.name == "emergency_stop" and access.role != "admin":
        return CommandReply.refusal("forbidden", "op 'emergency_stop' needs the 'admin' role")

    async def run() -> CommandReply:
        if op.fields.get("comment") == "fail":
            return CommandReply.failure(
                "risk_rejected", "too risky", {"check": "max_risk_per_trade"}
            )
        return CommandReply.success({"op": op.name, "by": access.name, "fields": op.fields})

    return run


class Hub:
    def __init__(self, url: str, node: Node, broker: Broker, server: uvicorn.Server) -> None:
        self.url = url
        self.node = node
        self.broker = broker
        self.server = server


def build_app(node: Node, limits: SessionLimits) -> Starlette:
    async def ws_endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        session = Session(
            node,
            StarletteTransport(websocket),
            authenticate=authenticate,
            on_command=on_command,
            commands=COMMANDS,
            token=bearer_token(websocket.headers, websocket.scope["query_string"]),
            batch=wants_batch(websocket.query_params),
            limits=limits,
        )
        await session.run()

    return Starlette(routes=[WebSocketRoute("/ws", ws_endpoint)])


@asynccontextmanager
async def serve_app(app: Any, port: int = 0) -> AsyncIterator[tuple[uvicorn.Server, int]]:
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    await eventually(
        lambda: server.started or task.done(), timeout=units(100), message="uvicorn to start"
    )
    if not server.started:
        task.result()
        raise RuntimeError("uvicorn did not start")
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield server, bound
    finally:
        server.should_exit = True
        server.force_exit = True
        await task


HubFactory = Callable[..., Awaitable[Hub]]


@pytest.fixture(params=["memory", "redis"])
async def make_hub(request: pytest.FixtureRequest) -> AsyncIterator[HubFactory]:
    """Hubs on the in-process broker, or on one Redis (hubs of one test share it, as instances)."""
    stack: list[Any] = []
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    prefix = redis_prefix()
    brokers: list[RedisBroker] = []

    async def factory(limits: SessionLimits | None = None, history_size: int = 100) -> Hub:
        broker: Broker
        if redis_url is None:
            broker = MemoryBroker(history_size=history_size)
        else:
            redis = RedisBroker(redis_url, history_size=history_size, prefix=prefix)
            await redis.connect()
            brokers.append(redis)
            broker = redis
        node = Node(broker)
        app = build_app(node, limits or SessionLimits(heartbeat=units(50), auth_timeout=units(3)))
        ctx = serve_app(app)
        server, port = await ctx.__aenter__()
        stack.append(ctx)
        return Hub(f"ws://127.0.0.1:{port}/ws", node, broker, server)

    yield factory
    for ctx in reversed(stack):
        await ctx.__aexit__(None, None, None)
    for redis in brokers:
        await redis.close()


@pytest.fixture
async def hub(make_hub: HubFactory) -> Hub:
    return await make_hub()


async def recv(ws: websockets.ClientConnection, within: float | None = None) -> dict[str, Any]:
    """The next message (first of a frame; tests that batch split frames themselves)."""
    raw = await asyncio.wait_for(ws.recv(), within or units(20))
    value: dict[str, Any] = json.loads(raw)
    return value


async def recv_type(
    ws: websockets.ClientConnection, kind: str, within: float | None = None
) -> dict[str, Any]:
    """Skip messages until one of type ``kind``."""
    while True:
        msg = await recv(ws, within)
        if msg["type"] == kind:
            return msg


async def connect(hub: Hub, token: str = "admin-t", query: str = "") -> websockets.ClientConnection:
    ws = await websockets.connect(
        f"{hub.url}?token={token}{query}", compression=None, open_timeout=units(20)
    )
    welcome = await recv(ws)
    assert welcome["type"] == "welcome"
    return ws


def dumps(value: Any) -> str:
    return msgspec.json.encode(value).decode()


# -- Redis (issue 7) --------------------------------------------------------------------------
