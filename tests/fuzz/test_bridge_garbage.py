"""Garbage from an EA Bridge never becomes a tick or a risk input.

Two sources: the simulator's ``garbage`` fault mode (it rotates truncated JSON, wrong
types, NaN/negative prices and a non-object), and a tiny bridge of our own whose
``/tick/XAUUSD`` answers one bad body after another. Each time the agent goes
``offline`` with an error naming the call, on ``agent:{id}:status`` and in
``/api/agents/{id}``; every tick ever published is finite with ``0 < bid <= ask``; a
trade answers ``agent_offline``; and the agent is ``online`` again once the bridge heals.
"""

from __future__ import annotations

import asyncio
import json
import math
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import websockets
from aiohttp import web

from hub.config import parse_config
from tests.hubkit import RunningHub, free_port, run_hub
from tests.timing import eventually, units

TRADE = {"symbol": "XAUUSD", "action": "buy", "lots": 0.01, "sl": 2600.0}


class Tape:
    """A well-behaved subscriber that records everything it is sent."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.messages: list[dict[str, Any]] = []
        self.replies: dict[str, dict[str, Any]] = {}
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for frame in self.ws:
            for line in str(frame).split("\n"):
                message = json.loads(line)
                self.messages.append(message)
                if message["type"] == "result":
                    self.replies[message["id"]] = message

    def data(self, channel: str) -> list[dict[str, Any]]:
        return [
            m["data"]
            for m in self.messages
            if m["type"] in ("snapshot", "event") and m["ch"] == channel
        ]

    def status(self, agent: str) -> dict[str, Any] | None:
        statuses = self.data(f"agent:{agent}:status")
        return statuses[-1] if statuses else None

    async def request(self, h: RunningHub, op: dict[str, Any]) -> dict[str, Any]:
        await self.ws.send(json.dumps(op))
        await eventually(lambda: op["id"] in self.replies)
        return self.replies.pop(op["id"])

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


@asynccontextmanager
async def tape(h: RunningHub, channels: list[str]) -> AsyncIterator[Tape]:
    async with websockets.connect(f"{h.ws_url}?token={h.token}&batch=1") as ws:
        t = Tape(ws)
        await ws.send(json.dumps({"op": "subscribe", "id": "tape", "channels": channels}))
        try:
            yield t
        finally:
            await t.close()


def assert_good_ticks(ticks: list[dict[str, Any]], symbols: set[str]) -> None:
    assert ticks, "no ticks were published at all"
    for tick in ticks:
        bid, ask = tick["bid"], tick["ask"]
        assert tick["symbol"] in symbols, tick
        assert type(bid) is float and type(ask) is float, f"not a price: {tick}"
        assert math.isfinite(bid) and math.isfinite(ask), f"non-finite price: {tick}"
        assert 0 < bid <= ask, f"bad quote published: {tick}"


async def wait_status(h: RunningHub, t: Tape, agent: str, status: str) -> dict[str, Any]:
    await eventually(lambda: (t.status(agent) or {}).get("status") == status)
    last = t.status(agent)
    assert last is not None
    return last


async def assert_offline_everywhere(h: RunningHub, t: Tape, agent: str, fragment: str) -> None:
    """Offline with ``fragment`` in the error on the channel, in REST, and for trades."""
    try:
        await eventually(lambda: fragment in str((t.status(agent) or {}).get("error")))
    except AssertionError:
        raise AssertionError(f"{agent} status never had {fragment!r}: {t.status(agent)}") from None
    status = await wait_status(h, t, agent, "offline")
    assert fragment in status["error"], status
    view = (await h.get(f"/api/agents/{agent}")).json()
    assert view["status"]["status"] == "offline", view
    assert view["status"]["error"], view
    resp = await h.post(f"/api/agents/{agent}/trade", TRADE)
    assert resp.status_code == 503, resp.text
    assert resp.json()["error"]["code"] == "agent_offline", resp.text
    reply = await t.request(h, {"op": "trade", "id": f"t-{fragment}", "agent": agent, **TRADE})
    assert reply["ok"] is False and reply["error"]["code"] == "agent_offline", reply


async def test_sim_garbage_takes_the_agent_offline_and_nothing_bad_is_published() -> None:
    channels = ["agent:agent_1:ticks", "agent:agent_1:status", "agent:agent_2:ticks"]
    async with run_hub() as h:
        await eventually(lambda: all(a.online for a in h.hub.registry.agents.values()))
        async with tape(h, channels) as t:
            await wait_status(h, t, "agent_1", "online")
            await h.sim("agent_1", "/sim/fault", {"mode": "garbage"})
            await assert_offline_everywhere(h, t, "agent_1", "bad answer")

            errors: set[str] = set()  # the simulator rotates its garbage: see several kinds
            other_ticks = len(t.data("agent:agent_2:ticks"))

            def seen_kinds() -> bool:
                errors.update(str(s["error"]) for s in t.data("agent:agent_1:status"))
                return len(errors) >= 4

            await eventually(seen_kinds)
            assert all(s["status"] == "offline" for s in t.data("agent:agent_1:status")[-3:])
            await eventually(lambda: len(t.data("agent:agent_2:ticks")) > other_ticks)
            assert h.hub.registry.agents["agent_2"].online, "another agent was affected"

            mine = len(t.data("agent:agent_1:ticks"))
            await h.sim("agent_1", "/sim/fault", {"mode": "ok"})
            status = await wait_status(h, t, "agent_1", "online")
            assert status["error"] is None, status
            await eventually(lambda: len(t.data("agent:agent_1:ticks")) > mine)
            view = (await h.get("/api/agents/agent_1")).json()
            assert view["status"]["status"] == "online", view

        assert_good_ticks(t.data("agent:agent_1:ticks"), {"XAUUSD"})
        for tick in h.hub.registry.agents["agent_1"].ticks.values():  # the risk engine's prices
            assert math.isfinite(tick.bid) and 0 < tick.bid <= tick.ask, tick


class FakeBridge:
    """A tiny EA Bridge of our own: a valid account, no positions, and a settable tick body."""

    def __init__(self) -> None:
        self.tick_body = b""
        self.set_price(2650.0, 2650.3)

    def set_price(self, bid: float, ask: float) -> None:
        tick = {"symbol": "XAUUSD", "bid": bid, "ask": ask, "time": 1_700_000_000_000}
        self.tick_body = json.dumps(tick).encode()

    async def tick(self, request: web.Request) -> web.Response:
        if request.match_info["symbol"] != "XAUUSD":
            return web.json_response({"error": "unknown symbol"}, status=404)
        return web.Response(body=self.tick_body, content_type="application/json")

    async def account(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"balance": 200.0, "equity": 200.0, "margin": 0.0, "free_margin": 200.0, "profit": 0.0}
        )

    async def empty(self, request: web.Request) -> web.Response:
        return web.json_response([])

    @asynccontextmanager
    async def serve(self) -> AsyncIterator[int]:
        app = web.Application()
        app.router.add_get("/tick/{symbol}", self.tick)
        app.router.add_get("/account", self.account)
        app.router.add_get("/positions", self.empty)
        app.router.add_get("/history", self.empty)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            yield port
        finally:
            await runner.cleanup()


RISK = "{max_risk_per_trade: 1%, max_daily_loss: 5%, max_positions: 1}"


def fake_bridge_config(port: int, sim_port: int) -> Any:
    return parse_config(
        textwrap.dedent(
            f"""
            polling: {{tick_interval: 0.05, account_interval: 0.1, timeout: 0.5,
                      backoff_initial: 0.05, backoff_max: 0.2}}
            symbols:
              XAUUSD: {{contract_size: 100, digits: 2}}
              EURUSD: {{contract_size: 100000, digits: 5}}
            agents:
              agent_1:
                {{name: Atlas, strategy: amd, bridge: "http://127.0.0.1:{port}",
                 symbols: [XAUUSD], risk: {RISK}}}
              agent_2:
                {{name: Orion, strategy: ict, bridge: "sim://127.0.0.1:{sim_port}",
                 symbols: [EURUSD], initial_balance: 500, risk: {RISK}}}
            """
        ),
        "fake-bridge-config",
    )


T = '"time":1700000000000'
# (tick body, a fragment the agent's error must contain)
BAD_TICKS: list[tuple[bytes, str]] = [
    (b'{"symbol":"XAUUSD","bid":NaN,"ask":2650.3,' + T.encode() + b"}", "/tick/XAUUSD"),
    (b'{"symbol":"XAUUSD","bid":2650.0,"ask":Infinity,' + T.encode() + b"}", "/tick/XAUUSD"),
    (b'{"symbol":"XAUUSD","bid":1e400,"ask":2650.3,' + T.encode() + b"}", "out of range"),
    (b'{"symbol":"XAUUSD","bid":2651.0,"ask":2650.0,' + T.encode() + b"}", "above ask"),
    # A number as a string ("2650.0") is read (docs/bridges.md); one that is no number is not.
    (b'{"symbol":"XAUUSD","bid":"2650.0x","ask":2650.3,' + T.encode() + b"}", "bid"),
    (b'{"symbol":"XAUUSD","bid":-2650.0,"ask":2650.3,' + T.encode() + b"}", "bid"),
    (b'{"symbol":"XAUUSD","bid":0,"ask":2650.3,' + T.encode() + b"}", "bid"),
    (b'{"symbol":"XAUUSD","bid":2650.0,"ask":null,' + T.encode() + b"}", "ask"),
    (b'{"symbol":"XAUUSD","bid":2650.0,' + T.encode() + b"}", "ask"),
    (b'{"symbol":"EURUSD","bid":1.08,"ask":1.0801,' + T.encode() + b"}", "EURUSD"),
    (b'{"symbol":"XAUUSD","bid":2650.0,"ask":2650.3,"time":"now"}', "time"),
    (b'{"symbol":"XAUUSD","bid":2650.0,"ask":26', "/tick/XAUUSD"),
    (b'["XAUUSD",2650.0,2650.3]', "/tick/XAUUSD"),
    (b"", "/tick/XAUUSD"),
    (b"<html>maintenance</html>", "/tick/XAUUSD"),
]


async def test_own_bridge_bad_ticks_never_published_and_the_agent_recovers() -> None:
    bridge = FakeBridge()
    good: set[tuple[float, float]] = {(2650.0, 2650.3)}
    async with bridge.serve() as port:
        config = fake_bridge_config(port, free_port())
        channels = ["agent:agent_1:ticks", "agent:agent_1:status", "agent:agent_2:ticks"]
        async with run_hub(config) as h, tape(h, channels) as t:
            await wait_status(h, t, "agent_1", "online")
            for i, (body, fragment) in enumerate(BAD_TICKS):
                bridge.tick_body = body
                await assert_offline_everywhere(h, t, "agent_1", fragment)
                price = (2650.0 + i + 1, 2650.3 + i + 1)
                good.add(price)
                bridge.set_price(*price)
                status = await wait_status(h, t, "agent_1", "online")
                assert status["error"] is None, status
                await eventually(
                    lambda p=price: any(
                        (x["bid"], x["ask"]) == p for x in t.data("agent:agent_1:ticks")
                    )
                )
            assert h.hub.registry.agents["agent_2"].online, "another agent was affected"
            assert t.data("agent:agent_2:ticks"), "the other agent's ticks stopped"
    ticks = t.data("agent:agent_1:ticks")
    assert_good_ticks(ticks, {"XAUUSD"})
    assert {(x["bid"], x["ask"]) for x in ticks} <= good, "a price the bridge never quoted"


async def test_a_bridge_that_heals_mid_stream_loses_no_good_tick_order() -> None:
    """Alternating good and bad answers: published ticks are exactly a subsequence of the good."""
    bridge = FakeBridge()
    quoted: list[tuple[float, float]] = []
    async with bridge.serve() as port:
        config = fake_bridge_config(port, free_port())
        async with run_hub(config) as h, tape(h, ["agent:agent_1:ticks"]) as t:
            await eventually(lambda: bool(t.data("agent:agent_1:ticks")))
            for i in range(20):
                if i % 2:
                    bridge.tick_body = BAD_TICKS[i % len(BAD_TICKS)][0]
                else:
                    quoted.append((2600.0 + i, 2600.5 + i))
                    bridge.set_price(*quoted[-1])
                await asyncio.sleep(units(1))
            bridge.set_price(*quoted[-1])
            await eventually(
                lambda: any(
                    (x["bid"], x["ask"]) == quoted[-1] for x in t.data("agent:agent_1:ticks")
                )
            )
    published = [(x["bid"], x["ask"]) for x in t.data("agent:agent_1:ticks")][1:]
    assert_good_ticks(t.data("agent:agent_1:ticks"), {"XAUUSD"})
    it = iter(quoted)
    assert all(p in it for p in published), f"published {published}, quoted {quoted}"
