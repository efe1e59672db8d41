"""Command round trip (WS ``trade`` -> ``result``, ``close`` -> ``result``) and risk check time.

The hub runs in its own process with an in-process simulated EA Bridge (``sim://``),
as ``mt4hub run`` does; the client runs here, on the other core. Trades and closes
alternate, one in flight at a time, spread over a few connections so that no
connection exceeds the per-connection message rate limit.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Any

import msgspec
from websockets.asyncio.client import ClientConnection, connect

from bench._riskctx import realistic_context
from bench._stats import summarize
from bench.configs import closed_port, trade_config
from bench.rig import Rig, Scale
from bench.serve import TOKEN
from hub.risk import check_open

__all__ = ["RiskResult", "RoundTripResult", "run_risk", "run_round_trip"]

_CONNECTIONS = 8
_MIN_GAP = 0.03  # s between two ops on one connection (the hub allows 50 messages/s)
_TIMEOUT = 10.0


class RoundTripResult(msgspec.Struct, frozen=True, kw_only=True):
    ops: int
    errors: int
    first_error: str | None
    trade: dict[str, float | int | None]  # ms: samples, p50, p99, max
    close: dict[str, float | int | None]


class RiskResult(msgspec.Struct, frozen=True, kw_only=True):
    iterations: int
    allowed: bool
    check: str | None
    mean_us: float
    p50_us: float
    p99_us: float


class _Client:
    """One connection: replies by id, the latest XAUUSD bid from the ticks channel."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.bid: float | None = None
        self.last_op = 0.0
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            for line in str(raw).splitlines():
                msg = json.loads(line)
                if msg.get("type") in ("snapshot", "event") and "bid" in msg.get("data", {}):
                    self.bid = float(msg["data"]["bid"])
                future = self.waiting.pop(str(msg.get("id")), None)
                if future is not None and not future.done():
                    future.set_result(msg)

    async def call(self, op: dict[str, Any]) -> tuple[dict[str, Any], float]:
        pause = self.last_op + _MIN_GAP - time.monotonic()
        if pause > 0:
            await asyncio.sleep(pause)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiting[str(op["id"])] = future
        started = time.perf_counter()
        await self.ws.send(json.dumps(op))
        async with asyncio.timeout(_TIMEOUT):
            reply = await future
        self.last_op = time.monotonic()
        return reply, (time.perf_counter() - started) * 1000

    async def close(self) -> None:
        await self.ws.close()
        self.reader.cancel()
        await asyncio.gather(self.reader, return_exceptions=True)


async def _open_clients(port: int) -> list[_Client]:
    url = f"ws://127.0.0.1:{port}/ws?token={TOKEN}"
    clients = []
    for _ in range(_CONNECTIONS):
        ws = await connect(url, compression=None, open_timeout=_TIMEOUT)
        clients.append(_Client(ws))
    first = clients[0]
    reply, _ = await first.call({"op": "subscribe", "id": "t", "channels": ["agent:agent_1:ticks"]})
    if reply.get("type") != "subscribed":
        raise RuntimeError(f"subscribe failed: {reply}")
    deadline = time.monotonic() + 30
    while first.bid is None:
        if time.monotonic() > deadline:
            raise TimeoutError("no XAUUSD tick from the simulated bridge within 30 s")
        await asyncio.sleep(0.05)
    return clients


async def run_round_trip(rig: Rig, scale: Scale) -> RoundTripResult:
    """``scale.rtt_ops`` commands, alternating trade and close."""
    server = await rig.server("hub", trade_config(closed_port()), name="hub-trade")
    trade_ms: list[float] = []
    close_ms: list[float] = []
    errors: list[str] = []
    try:
        clients = await _open_clients(int(server.ready["port"]))
        await asyncio.sleep(scale.settle)  # the poller has read the account and positions
        ticket: int | None = None
        try:
            for i in range(scale.rtt_ops):
                client = clients[i % len(clients)]
                bid = clients[0].bid
                assert bid is not None
                if ticket is None:
                    op = {
                        "op": "trade",
                        "id": f"o{i}",
                        "agent": "agent_1",
                        "symbol": "XAUUSD",
                        "action": "buy",
                        "lots": 0.01,
                        "sl": round(bid - 5.0, 2),
                        "client_order_id": f"bench-{i}-{random.getrandbits(32)}",
                    }
                else:
                    op = {"op": "close", "id": f"o{i}", "agent": "agent_1", "ticket": ticket}
                reply, ms = await client.call(op)
                if not reply.get("ok"):
                    errors.append(json.dumps(reply.get("error") or reply))
                    ticket = None
                    continue
                if ticket is None:
                    trade_ms.append(ms)
                    ticket = int(reply["data"]["ticket"])
                else:
                    close_ms.append(ms)
                    ticket = None
        finally:
            for client in clients:
                await client.close()
    finally:
        await rig.stop(server)
    if len(errors) > max(2, scale.rtt_ops // 10):
        raise RuntimeError(f"{len(errors)} of {scale.rtt_ops} commands failed; first: {errors[0]}")
    return RoundTripResult(
        ops=scale.rtt_ops,
        errors=len(errors),
        first_error=errors[0] if errors else None,
        trade=summarize(trade_ms),
        close=summarize(close_ms),
    )


def run_risk(scale: Scale) -> RiskResult:
    """``hub.risk.check_open`` on a context like the shipped config's, all checks passing."""
    ctx, agent_id, order = realistic_context()
    decision = check_open(ctx, agent_id, order)
    timings: list[float] = []
    clock = time.perf_counter_ns
    for _ in range(scale.risk_iterations):
        t0 = clock()
        check_open(ctx, agent_id, order)
        timings.append((clock() - t0) / 1000)
    stats = summarize(timings)
    return RiskResult(
        iterations=scale.risk_iterations,
        allowed=decision.allowed,
        check=decision.check,
        mean_us=round(sum(timings) / len(timings), 2),
        p50_us=float(stats["p50"] or 0.0),
        p99_us=float(stats["p99"] or 0.0),
    )
