"""/ws on the real hub: live agent channels, gap-free seq, roles and scopes, channel history."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import websockets

from tests.hubkit import RunningHub, hub_config, run_hub
from tests.timing import eventually

TOKENS = """
auth:
  tokens:
    - {name: viewer, role: read, secret_env: T_READ}
    - {name: scoped, role: trade, secret_env: T_SCOPED, agents: [agent_1]}
"""
ENV = {"T_READ": "read-secret", "T_SCOPED": "scoped-secret"}


async def ready(h: RunningHub) -> None:
    await eventually(lambda: all(a.online for a in h.hub.registry.agents.values()))


async def collect(ws: Any, seconds: float) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while (left := end - loop.time()) > 0:
        try:
            frame = await asyncio.wait_for(ws.recv(), left)
        except TimeoutError:
            break
        out.extend(json.loads(line) for line in frame.split("\n"))
    return out


async def test_wildcard_ticks_and_summary_snapshots_then_gap_free_events() -> None:
    async with run_hub() as h:
        await ready(h)
        async with websockets.connect(f"{h.ws_url}?token={h.token}&batch=1") as ws:
            await ws.send(
                json.dumps({"op": "subscribe", "id": 1, "channels": ["agent:*:ticks", "summary"]})
            )
            msgs = await collect(ws, 1.5)
        kinds = [m["type"] for m in msgs]
        assert kinds[0] == "welcome" and kinds[1] == "subscribed"
        assert msgs[1]["id"] == 1
        snapshots = [m for m in msgs if m["type"] == "snapshot"]
        tick_snaps = {m["data"]["symbol"] for m in snapshots if m["ch"].endswith(":ticks")}
        assert tick_snaps >= {"XAUUSD", "EURUSD", "GBPUSD", "USDJPY"}
        assert any(m["ch"] == "summary" for m in snapshots)
        last_seen: dict[str, int] = {}
        for m in msgs:
            if m["type"] == "snapshot":
                last_seen[m["ch"]] = max(last_seen.get(m["ch"], 0), m["seq"])
            elif m["type"] == "event":
                assert m["ch"] in last_seen, "event before its channel's snapshot"
                assert m["seq"] == last_seen[m["ch"]] + 1, f"gap or duplicate on {m['ch']}"
                last_seen[m["ch"]] = m["seq"]
        events = [m for m in msgs if m["type"] == "event"]
        assert {m["ch"] for m in events} >= {"agent:agent_1:ticks", "agent:agent_3:ticks"}


async def test_read_token_subscribes_but_cannot_trade_over_ws() -> None:
    async with (
        run_hub(hub_config(TOKENS), env=ENV) as h,
        websockets.connect(
            h.ws_url, additional_headers={"Authorization": "Bearer read-secret"}
        ) as ws,
    ):
        assert json.loads(await ws.recv())["type"] == "welcome"
        await ws.send(
            json.dumps(
                {
                    "op": "trade",
                    "id": "t",
                    "agent": "agent_1",
                    "symbol": "XAUUSD",
                    "action": "buy",
                    "lots": 0.01,
                    "sl": 1.0,
                }
            )
        )
        reply = json.loads(await ws.recv())
        assert reply["id"] == "t" and reply["error"]["code"] == "forbidden"


async def test_scoped_token_sees_only_its_agents() -> None:
    async with run_hub(hub_config(TOKENS), env=ENV) as h:
        await ready(h)
        async with websockets.connect(f"{h.ws_url}?token=scoped-secret") as ws:
            await ws.recv()
            await ws.send(
                json.dumps({"op": "subscribe", "id": "a", "channels": ["agent:agent_3:ticks"]})
            )
            reply = json.loads(await ws.recv())
            assert reply["type"] == "error" and reply["error"]["code"] == "forbidden"
            await ws.send(json.dumps({"op": "subscribe", "id": "b", "channels": ["agent:*:ticks"]}))
            msgs = await collect(ws, 1.0)
        chans = {m["ch"] for m in msgs if m["type"] in ("snapshot", "event")}
        assert chans == {"agent:agent_1:ticks"}


async def test_auth_failures_close_4001() -> None:
    async with run_hub() as h, websockets.connect(f"{h.ws_url}?token=nope") as ws:
        msg = json.loads(await ws.recv())
        assert msg["error"]["code"] == "unauthorized"
        try:
            await ws.recv()
        except websockets.ConnectionClosed as exc:
            assert exc.rcvd is not None and exc.rcvd.code == 4001


async def test_channel_history_over_rest() -> None:
    async with run_hub() as h:
        await ready(h)
        await eventually(lambda: h.hub.node.published > 10)
        r = await h.get("/api/channels/agent:agent_1:ticks/history", params={"since": 0})
        body = r.json()
        assert r.status_code == 200 and body["recovered"] is True and body["epoch"]
        seqs = [e["seq"] for e in body["events"]]
        assert seqs == list(range(1, len(seqs) + 1))
        r = await h.get(
            "/api/channels/agent:agent_1:ticks/history", params={"since": 0, "epoch": "old"}
        )
        assert r.json()["recovered"] is False
        r = await h.get("/api/channels/bogus/history")
        assert r.status_code == 404


async def read_sse(h: RunningHub, n: int, headers: dict[str, str]) -> list[dict[str, str]]:
    events: list[dict[str, str]] = []
    current: dict[str, str] = {}
    async with h.http.stream(
        "GET",
        "/api/stream",
        params={"channels": "agent:agent_1:ticks"},
        headers={**h.headers, **headers},
    ) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        async for line in resp.aiter_lines():
            if not line:
                if current:
                    events.append(current)
                    current = {}
                if len(events) >= n:
                    break
                continue
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            current[field] = value.strip()
    return events


async def test_sse_streams_events_and_resumes_by_last_event_id() -> None:
    async with run_hub() as h:
        await ready(h)
        first = await read_sse(h, 4, {})
        ids = [int(e["id"]) for e in first]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        assert all(json.loads(e["data"])["ch"] == "agent:agent_1:ticks" for e in first)
        resumed = await read_sse(h, 3, {"Last-Event-ID": str(ids[-1])})
        assert int(resumed[0]["id"]) == ids[-1] + 1


async def test_mt4hub_tail_prints_json_lines() -> None:
    async with run_hub() as h:
        await ready(h)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "hub.cli",
            "tail",
            "summary",
            "agent:agent_1:ticks",
            "--url",
            h.ws_url,
            "--token",
            h.token,
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            assert proc.stdout is not None
            lines = [
                json.loads(await asyncio.wait_for(proc.stdout.readline(), 20)) for _ in range(4)
            ]
        finally:
            proc.terminate()
            await proc.wait()
        assert {m["type"] for m in lines} <= {"snapshot", "event"}
        assert {m["ch"] for m in lines} & {"summary", "agent:agent_1:ticks"}
