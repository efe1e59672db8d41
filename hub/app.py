"""The Starlette app factory and its lifespan: the one place that wires every service."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from channels import cancellation, names
from channels.broker import Broker, create_broker
from channels.node import Node
from channels.session import Session
from hub import gc_policy
from hub.agents import AgentRuntime, Registry
from hub.api import asyncapi, commands, notifications, openapi, read, records, stream
from hub.api.asyncapi import build_asyncapi
from hub.api.common import json_response
from hub.api.middleware import AccessLog
from hub.api.openapi import build_openapi
from hub.auth import Authenticator, CommandLimiter, ConnectionSlots
from hub.bridge.models import Account, Tick
from hub.bridge.sim_server import SimServer, start_sim
from hub.candle_feed import CandleFeed
from hub.config import HubConfig, shipped_path
from hub.errors import STATUS, HubError
from hub.metrics import Metrics
from hub.notify import Notifier, Outbox
from hub.polling import AgentPoller
from hub.publisher import Publisher
from hub.records import RecordWriter, Spool, SpoolInUse, open_store
from hub.supervisor import Mirror, PollSupervisor
from hub.trading.coordination import open_coordination
from hub.trading.daily import DailyLimits
from hub.trading.emergency import EmergencyControl
from hub.trading.events import OrderEvents
from hub.trading.history import ClosedTrades
from hub.trading.journal import RecordsJournal
from hub.trading.last_positions import LastPositions
from hub.trading.models import OrderEvent
from hub.trading.risk_inputs import RiskInputs
from hub.trading.service import TradingService
from hub.trading.signals import SignalRouter

__all__ = ["Hub", "create_app", "data_dir_for"]

log = logging.getLogger("mt4hub.app")

STOP_TIMEOUT = 5.0  # seconds the background tasks get to stop on shutdown


def data_dir_for(env: Mapping[str, str], port: int | None = None) -> Path:
    """Where an instance keeps its files (record spool, SQLite, emergency and day state):
    ``$HUB_DATA_DIR``, else ``data/$HUB_INSTANCE_ID``, else ``data/<port>``, so two
    instances on one machine never share a spool by accident; ``data`` with neither."""
    if env.get("HUB_DATA_DIR"):
        return Path(env["HUB_DATA_DIR"])
    if env.get("HUB_INSTANCE_ID"):
        return Path("data") / env["HUB_INSTANCE_ID"]
    return Path("data") / str(port) if port else Path("data")


class Hub:
    """Every long-lived service of one hub instance, built in the lifespan."""

    def __init__(self, config: HubConfig, env: Mapping[str, str], port: int | None = None) -> None:
        self.config = config
        self.env = env
        self.instance_id = env.get("HUB_INSTANCE_ID") or secrets.token_hex(4)
        self.started = time.monotonic()
        self.auth = Authenticator(config.auth, env)
        self.limiter = CommandLimiter(config.server.command_rate, config.server.command_burst)
        self.registry = Registry(config)
        prefix = env.get("HUB_REDIS_PREFIX") or "mt4hub"  # several hubs apart on one Redis
        self.broker: Broker = create_broker(
            env.get("REDIS_URL") or None, history_size=config.server.history_size, prefix=prefix
        )
        self.node = Node(self.broker)
        self.publisher = Publisher(self.broker)
        self.sims: list[SimServer] = []
        self.sessions: set[Session] = set()
        self.slots = ConnectionSlots(config.server.max_connections_per_token)  # WS and SSE
        self.data_dir = data_dir = data_dir_for(env, port)
        self.coordination = open_coordination(
            env.get("REDIS_URL") or None, self.instance_id, data_dir, prefix
        )
        self.store = open_store(
            env.get("DATABASE_URL") or None, default_path=data_dir / "mt4hub.db"
        )
        self.writer = RecordWriter(self.store, Spool(data_dir / "spool"))
        self.journal = RecordsJournal(self.writer.submit)
        self.candles = CandleFeed(self.publisher, self.writer.submit, self.store)
        self.emergency = EmergencyControl(
            self.coordination,
            self.publisher,
            self.journal,
            self.registry.agents,
            stopped_by_config=config.global_risk.emergency_stop_all,
        )
        self.daily = DailyLimits(self.coordination, self.registry, self.journal)
        self.risk = RiskInputs(self.registry, lambda: self.emergency.stopped, self.daily)
        events = OrderEvents(self.publisher, self.journal)
        self.closed_trades = ClosedTrades(events, self.coordination)
        self.trading = TradingService(
            self.registry,
            self.publisher,
            self.coordination,
            events,
            self.risk,
            self.emergency,
            self.closed_trades,
        )
        self.last_positions = LastPositions(data_dir / "positions.json")
        self.last_positions.restore(self.registry)
        self.publisher.observers.append(self.last_positions.observe)
        self.pollers = {
            agent.id: AgentPoller(
                agent,
                config.polling,
                self.publisher,
                self._agent_changed,
                trading_state=self.risk.state_of,
                on_history=self.closed_trades.seen,
                on_account=self._account_read,
                on_tick=self.candles.tick,
                on_start=self.candles.resume,
            )
            for agent in self.registry.agents.values()
        }
        self.supervisor = PollSupervisor(
            self.coordination, self.pollers, lease_ttl=3.0, on_leader=self._set_leader
        )
        # Another instance's publication on an agent polled here (a fill or close it made):
        # the poller then compares with it, so the bridge's next state is always published.
        self.mirror = Mirror(
            self.registry, self._polled_here, self._agent_changed, self.publisher.remember
        )
        self.summary_leader = False
        self.metrics = Metrics(self)
        self.openapi = build_openapi()
        self.asyncapi = build_asyncapi()
        self.signals = SignalRouter(self.trading, self.risk, self.journal)
        self.publisher.observers.append(self._observe)
        self.notifier = Notifier(
            config.notifications, Outbox(data_dir / "notifications.db"), self.env
        )
        self.publisher.observers.append(self.notifier.observe)
        self.tasks: list[asyncio.Task[None]] = []
        self._summary_dirty = False
        self._summary_task: asyncio.Task[None] | None = None

    def _observe(self, channel: str, key: str | None, data: Any) -> None:
        """Every publication of this instance: risk inputs, metrics and records (never blocks)."""
        agent_id = names.agent_of(channel)
        if agent_id is None:
            return
        self.journal.published(agent_id, data)
        if isinstance(data, OrderEvent):
            self.metrics.order_events.labels(agent_id, data.event).inc()
        elif isinstance(data, Tick):
            self.risk.observe_tick(agent_id, data.symbol, data.bid, data.ask, data.time)
        elif names.kind_of(channel) == "positions":
            self._agent_changed(None)  # the summary counts positions

    async def _account_read(self, agent: AgentRuntime, account: Account) -> None:
        """Every polled equity: the day's start (once) and its halt, kept durably."""
        try:
            await self.daily.observe(agent.id, account.equity)
        except HubError as exc:  # trades re-check under their lock and fail safe
            log.warning("day_record_failed agent=%s error=%r", agent.id, exc.message)

    async def _watch_shared_state(self) -> None:
        """Every second: the kill switch as other instances set it (and a copy on disk, so
        a Redis restart cannot lift it)."""
        while True:
            try:
                await self.emergency.refresh()
                for agent_id in self.registry.agents:
                    await self.daily.refresh(agent_id)
            except HubError as exc:
                log.warning("shared_state_refresh_failed error=%r", exc.message)
            await cancellation.sleep(1.0)

    def _polled_here(self, agent_id: str) -> bool:
        return agent_id in self.supervisor.running

    def _set_leader(self, leader: bool) -> None:
        if leader and not self.summary_leader:
            self._agent_changed(None)
        self.summary_leader = leader

    def store_status(self) -> dict[str, Any]:
        return msgspec.to_builtins(self.writer.health())  # type: ignore[no-any-return]

    def connection_count(self) -> int:
        return len(self.sessions)

    async def start(self, *, start_sims: bool = True) -> None:
        if start_sims:
            await self._start_sims()
        log.info("data_dir instance=%s path=%s", self.instance_id, self.data_dir)
        try:
            await self.writer.start()
        except SpoolInUse as exc:
            raise SpoolInUse(
                f"{exc}: another hub instance uses the data dir {self.data_dir}; give each "
                "instance its own HUB_DATA_DIR (or HUB_INSTANCE_ID, which picks "
                "data/<instance id>)"
            ) from exc
        self.journal.log(
            None,
            "config_loaded",
            f"{len(self.config.agents)} agents: {', '.join(self.config.agents)}",
            {"instance": self.instance_id, "agents": list(self.config.agents)},
        )
        await self.broker.connect()
        await self.coordination.start()
        await self.emergency.start()
        if self.coordination.shared:
            await self.mirror.attach(self.node)
            self.tasks.append(asyncio.create_task(self._watch_shared_state(), name="shared"))
        self.tasks.append(asyncio.create_task(self.supervisor.run(), name="poll-supervisor"))
        await self.notifier.start()  # last: nothing to close if an earlier step fails

    async def _start_sims(self) -> None:
        for agent_id, agent in self.config.agents.items():
            if not agent.is_simulated:
                continue
            host, _, port = agent.bridge_http_url.removeprefix("http://").rpartition(":")
            try:
                sim = await start_sim(
                    host,
                    int(port),
                    symbols={s: self.config.symbols[s] for s in agent.symbols},
                    balance=agent.initial_balance,
                    leverage=agent.leverage,
                    currency=agent.currency,
                    control_token=self.env.get("HUB_SIM_CONTROL_TOKEN") or None,
                    profile=self.registry.agents[agent_id].client.profile,
                    names=agent.symbol_names,
                )
            except OSError as exc:
                if not (self.coordination.shared and exc.errno == errno.EADDRINUSE):
                    raise
                # Several instances on one Redis and one shipped config: the first one
                # started serves this simulator; the others talk to it.
                log.info(
                    "sim_shared agent=%s url=%s (served by another instance)",
                    agent_id,
                    agent.bridge_http_url,
                )
                continue
            self.sims.append(sim)
            log.info("sim_started agent=%s url=%s", agent_id, sim.url)

    def _agent_changed(self, agent: AgentRuntime | None) -> None:
        # Recompute the summary after any account/positions/status change; published in order.
        self._summary_dirty = True
        if self._summary_task is None or self._summary_task.done():
            self._summary_task = asyncio.create_task(self._publish_summary())

    async def _publish_summary(self) -> None:
        while self._summary_dirty:
            self._summary_dirty = False
            if self.summary_leader:
                await self.publisher.summary(self.registry.summary())

    async def stop(self) -> None:
        if self._summary_task is not None:
            self.tasks.append(self._summary_task)
        for task in self.tasks:
            task.cancel()
        if self.tasks:
            # Bounded: a task that ignores its cancel must not keep the process from exiting
            # (the records still get flushed and the connections closed below).
            _, stuck = await asyncio.wait(self.tasks, timeout=STOP_TIMEOUT)
            for task in stuck:
                log.error("shutdown_task_stuck task=%s: still running after %ss", task.get_name(),
                          STOP_TIMEOUT)  # fmt: skip
        for task in self.tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.error("task_failed task=%s error=%r", task.get_name(), task.exception())
        self.tasks.clear()
        await self.notifier.stop()
        await self.coordination.close()
        await self.broker.close()
        await self.writer.close()
        await self.store.close()
        await self.registry.close()
        for sim in self.sims:
            await sim.close()
        self.sims.clear()


async def _hub_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HubError)
    return json_response(exc.body(), status=exc.status)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {v: k for k, v in STATUS.items()}.get(exc.status_code, "bad_request")
    message = exc.detail if exc.status_code != 404 else f"no such endpoint: {request.url.path}"
    if exc.status_code == 405:
        message = f"method {request.method} not allowed on {request.url.path}"
    return json_response(
        {"error": {"code": code, "message": message}},
        status=exc.status_code,
        headers=dict(exc.headers or {}),
    )


class _HubApp(Starlette):
    """Starlette, with ``/ws`` served from the ASGI entry point: a socket then holds no
    middleware or router frames for its whole life (the HTTP middlewares pass WebSocket
    scopes through untouched anyway). See BENCHMARKS.md, idle connections."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] == "/ws":
            scope["app"] = self
            await stream.ws_endpoint(WebSocket(scope, receive, send))
            return
        await super().__call__(scope, receive, send)


def create_app(
    config: HubConfig,
    *,
    env: Mapping[str, str] | None = None,
    start_sims: bool = True,
    tune_gc: bool = False,
    port: int | None = None,
) -> Starlette:
    """A hub for ``config``; ``env`` defaults to ``os.environ`` (tests pass their own).
    ``port`` (the one it will listen on) names its data dir when the env does not
    (:func:`data_dir_for`).

    ``tune_gc`` (for the one hub of a process, as ``mt4hub run``): after start-up, freeze
    what exists and collect less often, so GC pauses stay out of the fan-out's latency, and
    on a clock too, so a quiet hub's garbage does not wait hours (:mod:`hub.gc_policy`).
    """
    hub = Hub(config, dict(os.environ if env is None else env), port)
    web_dir = shipped_path("web")

    async def _dashboard(request: Request) -> Response:
        index = web_dir / "index.html"
        if not index.exists():
            raise HubError("not_found", f"dashboard not installed ({index} missing)")
        return FileResponse(index, headers={"Cache-Control": "no-cache"})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await hub.start(start_sims=start_sims)
        collector = None
        if tune_gc:
            gc_policy.tune_gc()
            collector = asyncio.create_task(gc_policy.Schedule().run(), name="gc-schedule")
        try:
            yield
        finally:
            if collector is not None:
                collector.cancel()
            await hub.stop()

    app = _HubApp(
        routes=[
            *read.routes,
            *commands.routes,
            *records.routes,
            *notifications.routes,
            *stream.routes,
            *openapi.routes,
            *asyncapi.routes,
            Route("/", _dashboard),
            Mount("/static", StaticFiles(directory=web_dir, check_dir=False), name="static"),
        ],
        lifespan=lifespan,
        exception_handlers={HubError: _hub_error, HTTPException: _http_error},
        middleware=[
            Middleware(AccessLog),
            Middleware(
                CORSMiddleware,
                allow_origins=config.auth.allowed_origins,
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID"],
            ),
        ],
    )
    app.state.hub = hub
    return app
