"""The server under test, in its own process: ``python -m bench.serve KIND [--config PATH]``.

Kinds:

- ``hub``: the real app (``hub.app.create_app``) under uvicorn with the options of
  ``mt4hub run`` (``hub.server.uvicorn_options``, ``tune_gc()`` after start-up); ticks go
  through ``hub.publisher.tick()`` on ``agent:agent_1:ticks``. ``--redis URL`` puts it on
  a Redis (broker and coordination, as several instances run: :mod:`bench.redis_path`).
- ``broadcaster``: encode/broadcaster ``memory://`` + Starlette, one
  ``send_text`` per message per connection (the common tutorial approach).
- ``websockets``: the ``websockets`` library, ``websockets.broadcast`` of one
  pre-encoded frame to every connection.
- ``websockets-batch``: the same, packing what was published into one frame
  (newline-delimited) every ``--flush-ms`` (default 10 ms).

Commands on stdin (JSON lines): ``{"cmd":"subscribers"}``,
``{"cmd":"inject","rate":R,"duration":D}`` (with ``"profile": PATH``, the injection window
runs under cProfile and its stats are written there; with ``"probe": true`` the reply adds
how late the event loop ran a 1 ms timer meanwhile, see :class:`bench._control.LoopProbe`),
``{"cmd":"quit"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import logging
import os
import socket
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import uvicorn
import uvloop

from bench._control import LoopProbe, raise_fd_limit, serve_commands
from bench._ticks import Publish, event_frame, inject
from hub.server import uvicorn_options

__all__ = ["CHANNEL", "KINDS", "TOKEN", "main"]

CHANNEL = "agent:agent_1:ticks"
TOKEN = "bench-admin-token"
KINDS = ("hub", "broadcaster", "websockets", "websockets-batch")

Subscribers = Callable[[], int]


class _GcWatch:
    """Collector pauses of this process (they stall the whole event loop)."""

    def __init__(self) -> None:
        self._started = 0.0
        self.pauses = 0
        self.max_ms = 0.0
        self.total_ms = 0.0
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        ms = (time.perf_counter() - self._started) * 1000
        self.pauses += 1
        self.total_ms += ms
        self.max_ms = max(self.max_ms, ms)

    def take(self) -> dict[str, float]:
        out = {"gc_pauses": self.pauses, "gc_max_ms": self.max_ms, "gc_total_ms": self.total_ms}
        self.pauses, self.max_ms, self.total_ms = 0, 0.0, 0.0
        return out


def _bind() -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(4096)
    sock.setblocking(False)
    return sock


def _uvicorn(app: Any, *, like_hub: bool) -> uvicorn.Server:
    """uvicorn as ``mt4hub run`` configures it, or its defaults; permessage-deflate off."""
    options: dict[str, Any] = (
        uvicorn_options(app.state.hub.config.server)
        if like_hub
        else {
            "log_config": None,
            "ws_per_message_deflate": False,
            "ws_ping_interval": 15.0,
            "ws_ping_timeout": 15.0,
            "access_log": False,
        }
    )
    config = uvicorn.Config(app, lifespan="on", backlog=4096, **options)
    return uvicorn.Server(config)


@contextlib.asynccontextmanager
async def _run_uvicorn(app: Any, *, like_hub: bool) -> AsyncIterator[int]:
    sock = _bind()
    server = _uvicorn(app, like_hub=like_hub)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("uvicorn did not start")
        await asyncio.sleep(0.01)
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def _hub(
    config_path: str,
    *,
    records: bool = True,
    redis: str | None = None,
    redis_prefix: str | None = None,
) -> AsyncIterator[tuple[int, Publish, Subscribers, Any]]:
    from hub.app import create_app
    from hub.bridge.models import Tick
    from hub.config import load_config

    # A data dir of its own: the day records, kill switch and order log of one run must not
    # carry over into the next (a halt is kept for the whole UTC day, by design).
    with tempfile.TemporaryDirectory(prefix="mt4hub-bench-") as data_dir:
        env = {**os.environ, "HUB_ADMIN_TOKEN": TOKEN, "HUB_DATA_DIR": data_dir}
        if redis:
            env["REDIS_URL"] = redis
            env["HUB_REDIS_PREFIX"] = redis_prefix or "mt4hub"
        app = create_app(load_config(config_path), env=env, tune_gc=True)  # as mt4hub run
        hub = app.state.hub
        tick = hub.publisher.tick
        if not records:  # diagnostic only (as bench/records.py's baseline): no tick rows
            hub.journal._submit = lambda record: None

        async def publish(i: int, symbol: str, bid: float, ask: float, time_us: int) -> None:
            await tick("agent_1", Tick(symbol=symbol, bid=bid, ask=ask, time=time_us))

        async with _run_uvicorn(app, like_hub=True) as port:
            yield port, publish, lambda: int(hub.node.subscribers), hub


@contextlib.asynccontextmanager
async def _broadcaster() -> AsyncIterator[tuple[int, Publish, Subscribers, Any]]:
    from broadcaster import Broadcast
    from broadcaster._base import Unsubscribed
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket

    broadcast = Broadcast("memory://")
    live: set[WebSocket] = set()

    async def sender(websocket: WebSocket) -> None:
        async with broadcast.subscribe(channel="ticks") as subscriber:
            live.add(websocket)
            try:
                while True:  # `async for event in subscriber`, which mypy cannot type
                    event = await subscriber.get()
                    await websocket.send_text(event.message)
            except Unsubscribed:
                return
            finally:
                live.discard(websocket)

    async def receiver(websocket: WebSocket) -> None:
        async for _ in websocket.iter_text():
            pass

    async def endpoint(websocket: WebSocket) -> None:
        # As in broadcaster's README: a sender and a receiver; the first to end stops both.
        await websocket.accept()
        tasks = {asyncio.create_task(sender(websocket)), asyncio.create_task(receiver(websocket))}
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with broadcast:
            yield

    app = Starlette(routes=[WebSocketRoute("/ws", endpoint)], lifespan=lifespan)

    async def publish(i: int, symbol: str, bid: float, ask: float, time_us: int) -> None:
        await broadcast.publish("ticks", event_frame(CHANNEL, i + 1, symbol, bid, ask, time_us))

    async with _run_uvicorn(app, like_hub=False) as port:
        yield port, publish, lambda: len(live), None


@contextlib.asynccontextmanager
async def _websockets(
    flush_ms: float | None,
) -> AsyncIterator[tuple[int, Publish, Subscribers, Any]]:
    from websockets.asyncio.server import ServerConnection, broadcast, serve

    live: set[ServerConnection] = set()
    pending: list[str] = []

    async def handler(connection: ServerConnection) -> None:
        live.add(connection)
        try:
            await connection.wait_closed()
        finally:
            live.discard(connection)

    async def publish(i: int, symbol: str, bid: float, ask: float, time_us: int) -> None:
        frame = event_frame(CHANNEL, i + 1, symbol, bid, ask, time_us)
        if flush_ms is None:
            broadcast(live, frame)
        else:
            pending.append(frame)

    async def flusher(interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            if pending:
                frame = "\n".join(pending)
                pending.clear()
                broadcast(live, frame)

    sock = _bind()
    async with serve(handler, sock=sock, compression=None, max_queue=16, backlog=4096):
        task = None if flush_ms is None else asyncio.create_task(flusher(flush_ms / 1000))
        try:
            yield sock.getsockname()[1], publish, lambda: len(live), None
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


def _server(args: argparse.Namespace) -> contextlib.AbstractAsyncContextManager[Any]:
    if args.kind == "hub":
        if not args.config:
            raise SystemExit("bench.serve hub: --config is required")
        return _hub(
            args.config,
            records=args.records == "on",
            redis=args.redis,
            redis_prefix=args.redis_prefix,
        )
    if args.kind == "broadcaster":
        return _broadcaster()
    if args.kind == "websockets":
        return _websockets(None)
    return _websockets(args.flush_ms)


async def _main(args: argparse.Namespace) -> None:
    limit = raise_fd_limit()
    watch = _GcWatch()
    probe = LoopProbe()
    async with _server(args) as (port, publish, subscribers, _):

        async def handle(command: dict[str, Any]) -> dict[str, Any]:
            cmd = command.get("cmd")
            if cmd == "subscribers":
                return {"subscribers": subscribers()}
            if cmd == "inject":
                watch.take()
                profile = cProfile.Profile() if command.get("profile") else None
                if profile is not None:
                    profile.enable()  # every Python call on this thread: the whole loop
                if command.get("probe"):
                    probe.start()
                stats = await inject(publish, float(command["rate"]), float(command["duration"]))
                late = probe.stop() if command.get("probe") else {}
                if profile is not None:
                    profile.disable()
                    profile.dump_stats(command["profile"])
                return {
                    "sent": stats.sent,
                    "seconds": stats.seconds,
                    "max_lag_ms": stats.max_lag_ms,
                    **watch.take(),
                    **late,
                }
            raise ValueError(f"cmd: unknown command {cmd!r}")

        await serve_commands({"port": port, "pid": os.getpid(), "fd_limit": limit}, handle)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.serve", description=__doc__)
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--config", help="hub config file (kind hub)")
    parser.add_argument("--flush-ms", type=float, default=10.0)
    parser.add_argument("--redis", help="hub: REDIS_URL (the broker and coordination)")
    parser.add_argument("--redis-prefix", help="hub: HUB_REDIS_PREFIX (with --redis)")
    parser.add_argument(
        "--records",
        choices=("on", "off"),
        default="on",
        help="hub: off replaces the journal's submit by a no-op (diagnostics only)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    uvloop.run(_main(args))


if __name__ == "__main__":
    main()
