"""A token limited to agents sees and touches only its agents, everywhere (real hub, sockets).

Global ops need an unlimited token; the cross-agent channels ``summary`` and ``signals``
are refused to a limited token (also through a pattern); ``system`` stays open; list
answers (``/api/risk``, ``/api/signals``…) carry only what its agents contribute.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import httpx
import websockets

from tests.hubkit import RunningHub, hub_config, run_hub
from tests.timing import eventually, units

TOKENS = """
auth:
  tokens:
    - {name: a1-admin, role: admin, secret_env: T_A1_ADMIN, agents: [agent_1]}
    - {name: a1-trade, role: trade, secret_env: T_A1_TRADE, agents: [agent_1]}
"""
A1_ADMIN = "a1-admin-secret-0123"
A1_TRADE = "a1-trade-secret-0123"
ENV = {"T_A1_ADMIN": A1_ADMIN, "T_A1_TRADE": A1_TRADE}
XAU = {"symbol": "XAUUSD", "bid": 2650.0, "ask": 2650.3}
EUR = {"symbol": "EURUSD", "bid": 1.1, "ask": 1.1001}
XAU_BUY = {"symbol": "XAUUSD", "action": "buy", "lots": 0.01, "sl": 2648.5}  # risks 1.80 <= 2
EUR_BUY = {"symbol": "EURUSD", "action": "buy", "lots": 0.01, "sl": 1.095}  # risks 5.10 <= 7.5


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def pinned(h: RunningHub) -> None:
    """Every agent online, agent_1's XAUUSD and agent_2's EURUSD pinned (exact risk)."""
    await eventually(lambda: all(a.online for a in h.hub.registry.agents.values()))
    await h.sim("agent_1", "/sim/price", XAU)
    await h.sim("agent_2", "/sim/price", EUR)
    agents = h.hub.registry.agents
    await eventually(lambda: agents["agent_1"].ticks["XAUUSD"].ask == XAU["ask"])
    await eventually(lambda: agents["agent_2"].ticks["EURUSD"].ask == EUR["ask"])


async def ws_ask(h: RunningHub, token: str, frame: dict[str, Any]) -> dict[str, Any]:
    async with websockets.connect(h.ws_url, additional_headers=bearer(token)) as ws:
        assert json.loads(await ws.recv())["type"] == "welcome"
        await ws.send(json.dumps(frame))
        reply: dict[str, Any] = json.loads(await ws.recv())
        return reply


async def collect(ws: Any, seconds: float, until: Any = None) -> list[dict[str, Any]]:
    """Messages received for ``seconds``, or until one for which ``until`` is true."""
    out: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while (left := end - loop.time()) > 0:
        try:
            frame = await asyncio.wait_for(ws.recv(), left)
        except TimeoutError:
            break
        out.extend(json.loads(line) for line in frame.split("\n"))
        if until is not None and any(until(m) for m in out):
            break
    return out


# -- item 1: global ops ---------------------------------------------------------------


async def test_an_admin_token_limited_to_agent_1_cannot_stop_or_resume_everything() -> None:
    async with run_hub(hub_config(TOKENS), env=ENV) as h:
        await pinned(h)
        r = await h.post("/api/agents/agent_2/trade", EUR_BUY)
        assert r.status_code == 200, r.text
        r = await h.post(
            "/api/emergency/stop-all", {"close_positions": True}, headers=bearer(A1_ADMIN)
        )
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", r.text
        assert "closed" not in r.text
        reply = await ws_ask(
            h, A1_ADMIN, {"op": "emergency_stop", "id": "e", "close_positions": True}
        )
        assert reply == {"type": "error", "id": "e", "error": reply["error"]}
        assert reply["error"]["code"] == "forbidden"
        assert not h.hub.emergency.stopped
        r = await h.post("/api/emergency/stop-all", {"reason": "drill"})  # the unlimited admin
        assert r.status_code == 200
        r = await h.post("/api/emergency/resume", {}, headers=bearer(A1_ADMIN))
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
        reply = await ws_ask(h, A1_ADMIN, {"op": "resume", "id": "r"})
        assert reply["type"] == "error" and reply["error"]["code"] == "forbidden"
        assert h.hub.emergency.stopped
        positions = (await h.get("/api/agents/agent_2/positions")).json()["positions"]
        assert len(positions) == 1  # agent_2's position was never touched


# -- item 3: idempotency keys per agent ---------------------------------------------------


async def test_a_limited_token_cannot_block_another_agents_order_id() -> None:
    async with run_hub(hub_config(TOKENS), env=ENV) as h:
        await pinned(h)
        squatted = {**XAU_BUY, "client_order_id": "sig-9:agent_2"}
        first = await h.post("/api/agents/agent_1/trade", squatted, headers=bearer(A1_TRADE))
        assert first.status_code == 200, first.text
        again = await h.post("/api/agents/agent_1/trade", squatted, headers=bearer(A1_TRADE))
        assert again.json() == first.json()  # its own repeat: the first result
        theirs = {**EUR_BUY, "client_order_id": "sig-9:agent_2"}
        r = await h.post("/api/agents/agent_2/trade", theirs)
        assert r.status_code == 200, r.text  # neither duplicate nor agent_1's answer
        assert r.json()["symbol"] == "EURUSD"
        positions = (await h.get("/api/agents/agent_2/positions")).json()["positions"]
        assert [p["symbol"] for p in positions] == ["EURUSD"]


# -- item 2: cross-agent channels -------------------------------------------------------

SIGNAL = {"signal_id": "s-1", "symbol": "XAUUSD", "direction": "long", "confidence": 0.9}


def resumed(message: dict[str, Any]) -> bool:
    """The ``system`` event of a resume: the last of ``cross_agent_traffic``."""
    return message.get("ch") == "system" and message["data"].get("event") == "resume"


async def sse_messages(
    h: RunningHub, token: str, channels: str, during: float, act: Any = None
) -> tuple[int, list[dict[str, Any]]]:
    """Status and the JSON messages of ``/api/stream`` read for ``during`` seconds or until
    a resume event; ``act()`` runs once the stream is connected."""
    messages: list[dict[str, Any]] = []

    async def read(resp: httpx.Response) -> None:
        async for line in resp.aiter_lines():
            if line == ": connected" and act is not None:
                await act()
            if line.startswith("data: "):
                messages.append(json.loads(line[len("data: ") :]))
                if resumed(messages[-1]):
                    return

    async with h.http.stream(
        "GET", "/api/stream", params={"channels": channels}, headers=bearer(token)
    ) as resp:
        if resp.status_code != 200:
            await resp.aread()
            return resp.status_code, [resp.json()]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(read(resp), during)
    return 200, messages


async def test_summary_and_signals_are_refused_to_a_limited_token_everywhere() -> None:
    async with run_hub(hub_config(TOKENS), env=ENV) as h:
        await eventually(lambda: h.hub.summary_leader, message="the summary published")
        for channel in ("summary", "signals"):
            reply = await ws_ask(h, A1_TRADE, {"op": "subscribe", "id": "s", "channels": [channel]})
            assert reply["type"] == "error" and reply["error"]["code"] == "forbidden", reply
            status, body = await sse_messages(h, A1_TRADE, channel, units(10))
            assert status == 403 and body[0]["error"]["code"] == "forbidden", body
            r = await h.get(f"/api/channels/{channel}/history", headers=bearer(A1_TRADE))
            assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", r.text
            assert (await h.get(f"/api/channels/{channel}/history")).status_code == 200
        r = await h.get("/api/channels/system/history", headers=bearer(A1_TRADE))
        assert r.status_code == 200


async def test_a_pattern_never_delivers_summary_or_signals_to_a_limited_token() -> None:
    async with run_hub(hub_config(TOKENS), env=ENV) as h:
        await pinned(h)
        await eventually(lambda: h.hub.summary_leader, message="the summary published")

        async def cross_agent_traffic() -> None:
            r = await h.post("/api/signals", {**SIGNAL, "sl": 2648.5})
            assert r.status_code == 200, r.text
            assert (await h.post("/api/emergency/stop-all", {"reason": "drill"})).status_code == 200
            assert (await h.post("/api/emergency/resume", {})).status_code == 200

        async with websockets.connect(h.ws_url, additional_headers=bearer(A1_TRADE)) as ws:
            await ws.recv()
            await ws.send(json.dumps({"op": "subscribe", "id": "p", "channels": ["*"]}))
            subscribed = json.loads(await ws.recv())
            assert subscribed["type"] == "subscribed", subscribed
            assert set(subscribed["recovered"]) <= {"system"}
            await cross_agent_traffic()
            seen = await collect(ws, units(50), until=resumed)
        channels = {m["ch"] for m in seen if m["type"] in ("snapshot", "event")}
        assert channels == {"system"}, channels
        status, messages = await sse_messages(h, A1_TRADE, "*", units(50), cross_agent_traffic)
        assert status == 200
        channels = {m["ch"] for m in messages if m["type"] in ("snapshot", "event")}
        assert channels == {"system"}, channels


# -- item 8: list answers -------------------------------------------------------------


async def test_risk_and_list_answers_carry_only_the_tokens_agents() -> None:
    async with run_hub(hub_config(TOKENS), env=ENV) as h:
        await pinned(h)
        assert (await h.post("/api/agents/agent_2/trade", EUR_BUY)).status_code == 200
        r = await h.post("/api/signals", {**SIGNAL, "sl": 2648.5, "agents": ["agent_1", "agent_3"]})
        assert {route["agent"] for route in r.json()["routes"]} == {"agent_1", "agent_3"}
        await eventually(lambda: h.hub.registry.agents["agent_2"].positions, message="the fill")
        mine = bearer(A1_TRADE)
        risk = (await h.get("/api/risk", headers=mine)).json()
        assert set(risk["agents"]) == {"agent_1"}
        assert risk["global"]["total_equity"] == risk["agents"]["agent_1"]["equity"]
        assert risk["global"]["open_risk"] == risk["agents"]["agent_1"]["open_risk"]
        everything = (await h.get("/api/risk")).json()["global"]
        assert everything["open_risk"] > 0 and everything["total_equity"] > 1000
        rows = (await h.get("/api/signals", headers=mine)).json()["signals"]
        assert rows, "the signal reached agent_1"
        for row in rows:
            assert {route["agent"] for route in row["outcome"]["routes"]} == {"agent_1"}
            assert row["payload"]["agents"] == ["agent_1"]
        listed = [a["agent_id"] for a in (await h.get("/api/agents", headers=mine)).json()]
        assert listed == ["agent_1"]
        symbols = (await h.get("/api/symbols", headers=mine)).json()
        assert set(symbols) == {"XAUUSD"}
        for path in ("/api/trades", "/api/logs"):
            rows = next(iter((await h.get(path, headers=mine)).json().values()))
            assert {row["agent_id"] for row in rows} <= {"agent_1"}, path
