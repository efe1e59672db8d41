"""A tiny Starlette app serving channels.Session on a real uvicorn socket, per test."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec
import pytest
import uvicorn
import websockets
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from channels.asgi import StarletteTransport, bearer_token, wants_batch
from channels.memory import MemoryBroker
from channels.node import Node
from channels.protocol import Command
from channels.session import Access, CommandReply, Session, SessionLimits
from tests.timing import units

TOKENS = {
    "read-t": Access(name="dash", role="read"),
    "trade-t": Access(name="ml", role="trade"),
    "admin-t": Access(name="ops", role="admin"),
    "scoped-t": Access(name="ml1", role="trade", agents=frozenset({"agent_1"})),
}


async def authenticate(token: str) -> Access | None:
    return TOKENS.get(token)


async def on_command(op: Command, access: Access) -> CommandReply:
    tag = type(op).__struct_config__.tag
    if getattr(op, "comment", None) == "fail":
        return CommandReply.failure("risk_rejected", "too risky", {"check": "max_risk_per_trade"})
    return CommandReply.success({"op": tag, "by": access.name})


class Hub:
    def __init__(self, url: str, node: Node, broker: MemoryBroker, server: uvicorn.Server) -> None:
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
            token=bearer_token(websocket.headers, websocket.query_params),
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
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield server, bound
    finally:
        server.should_exit = True
        server.force_exit = True
        await task


HubFactory = Callable[..., Awaitable[Hub]]


@pytest.fixture
async def make_hub() -> AsyncIterator[HubFactory]:
    stack: list[Any] = []

    async def factory(limits: SessionLimits | None = None, history_size: int = 100) -> Hub:
        broker = MemoryBroker(history_size=history_size)
        node = Node(broker)
        app = build_app(node, limits or SessionLimits(heartbeat=units(50), auth_timeout=units(3)))
        ctx = serve_app(app)
        server, port = await ctx.__aenter__()
        stack.append(ctx)
        return Hub(f"ws://127.0.0.1:{port}/ws", node, broker, server)

    yield factory
    for ctx in reversed(stack):
        await ctx.__aexit__(None, None, None)


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

REDIS_HOW_TO = (
    "install redis-server, or run the test command (make test), which starts one and sets "
    "TEST_REDIS_URL (scripts/services.sh start .services redis && . .services/env)"
)


def require_redis_server() -> str:
    """The redis-server binary; skips the test when missing (fails it under CI=true)."""
    binary = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"no redis-server found: CI must run the Redis tests; {REDIS_HOW_TO}")
        pytest.skip(f"no redis-server found: {REDIS_HOW_TO}")
    return binary


def redis_prefix() -> str:
    """A key prefix of its own, so tests sharing one Redis never see each other's channels."""
    return f"t{uuid.uuid4().hex[:12]}"


class RedisServer:
    """A private redis-server without persistence on a fixed free port (restartable there)."""

    def __init__(self, binary: str, directory: Path) -> None:
        self.binary = binary
        self.directory = directory
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port: int = probe.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def pidfile(self) -> Path:
        return self.directory / "redis.pid"

    def start(self) -> None:
        subprocess.run(
            [
                self.binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--daemonize", "yes",
                "--dir", str(self.directory),
                "--pidfile", str(self.pidfile),
                "--logfile", str(self.directory / "redis.log"),
            ],
            check=True,
            timeout=10,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not self._answers():
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {self.port} did not answer PING")
            time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL the server (no persistence: its data is gone) and wait until it is."""
        if not self.pidfile.exists():
            return
        pid = int(self.pidfile.read_text())
        self.pidfile.unlink()
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 10
        while self._answers() or _alive(pid):
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server pid {pid} did not die")
            time.sleep(0.02)

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """TEST_REDIS_URL when set, else a private redis-server for the whole session."""
    url = os.environ.get("TEST_REDIS_URL")
    if url:
        yield url
        return
    server = RedisServer(require_redis_server(), tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server.url
    finally:
        server.kill()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, for tests that kill and restart it."""
    server = RedisServer(require_redis_server(), tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.kill()
