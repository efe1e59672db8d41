"""Redis killed and restarted under a 2-process cluster (a private redis-server, no
persistence: its data is gone). Both hubs stay up and report Redis health; every client
either continues gap-free or is told of the new epoch and gets fresh snapshots."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import websockets

from tests.faults.kit import Recorder
from tests.hub.test_scaleout import HubProcess, cluster, wait_all_polled
from tests.rediskit import RedisServer
from tests.timing import eventually, units

TICKS = ["agent:agent_1:ticks", "agent:agent_2:ticks"]


def check_stream(messages: list[dict[str, Any]], channel: str) -> list[str]:
    """The epochs ``channel`` went through on one connection; fails on any seq gap or
    duplicate, and on an epoch change not announced by an id-less ``subscribed``."""
    epochs: list[str] = []
    announced: str | None = None
    last: int | None = None
    for m in messages:
        if m["type"] == "subscribed" and channel in m.get("epochs", {}):
            announced = m["epochs"][channel]
            if epochs and announced != epochs[-1]:
                assert "id" not in m, f"{channel}: epoch change in a reply to a request: {m}"
                last = None  # a fresh snapshot starts the new stream
        elif m.get("ch") == channel and m["type"] == "snapshot":
            assert m["epoch"] == announced, f"{channel}: snapshot of an unannounced epoch {m}"
            if not epochs or epochs[-1] != m["epoch"]:
                epochs.append(m["epoch"])
            last = m["seq"] if last is None else max(last, m["seq"])
        elif m.get("ch") == channel and m["type"] == "event":
            assert last is not None, f"{channel}: an event before any snapshot of its epoch: {m}"
            assert m["seq"] == last + 1, f"{channel}: seq {m['seq']} after {last}"
            last = m["seq"]
    return epochs


async def test_hubs_survive_a_redis_restart_and_clients_resume_or_resnapshot(
    private_redis: RedisServer, tmp_path: Path
) -> None:
    async with cluster(private_redis.url, tmp_path) as (hubs, _sims, http):
        await wait_all_polled(hubs, http)
        recorders = [Recorder(h.ws, TICKS) for h in hubs]
        async with recorders[0] as a, recorders[1] as b:
            for rec in (a, b):
                for ch in TICKS:
                    await eventually(
                        lambda r=rec, c=ch: len(r.on(c)) > 3,
                        timeout=units(100),
                        message=f"{ch} flowing",
                    )
            await asyncio.to_thread(private_redis.kill)

            async def unhealthy(h: HubProcess) -> bool:
                return (await h.status(http))["broker"].get("healthy") is False

            for h in hubs:
                await eventually(
                    lambda h=h: unhealthy(h),
                    timeout=units(100),
                    interval=units(0.5),
                    message=f"{h.name} to report Redis down",
                )
                assert (await http.get(f"{h.url}/health")).status_code == 200
            await asyncio.sleep(units(10))
            for h in hubs:
                assert h.proc.poll() is None, f"{h.name} died with Redis"
                assert (await h.status(http))["broker"]["last_error"]

            await asyncio.to_thread(private_redis.start)
            restarted = asyncio.get_running_loop().time()
            for h in hubs:
                await eventually(
                    lambda h=h: healthy(h, http),
                    timeout=units(100),
                    interval=units(0.5),
                    message=f"{h.name} to report Redis back",
                )
            for rec in (a, b):
                for ch in TICKS:
                    await eventually(
                        lambda r=rec, c=ch: any(m["type"] == "event" for m in r.on(c, restarted)),
                        timeout=units(150),
                        message=f"{ch} flowing again",
                    )
        for rec in (a, b):
            msgs = [m for _, m in rec.messages]
            for ch in TICKS:
                epochs = check_stream(msgs, ch)
                assert len(epochs) == 2, f"{ch}: expected one new epoch, got {epochs}"
        old = a.on(TICKS[0])[0]
        async with websockets.connect(hubs[1].ws) as ws:  # a client back with a stale seq
            since = {TICKS[0]: {"seq": old["seq"], "epoch": old["epoch"]}}
            await ws.send(json.dumps({"op": "subscribe", "id": "r", "channels": TICKS[:1],
                                      "since": since}))  # fmt: skip
            got = await read_until(ws, lambda m: m["type"] == "snapshot")
            reply = next(m for m in got if m.get("id") == "r")
            assert reply["recovered"] == {TICKS[0]: False}
            assert got[-1]["epoch"] != old["epoch"]


async def healthy(h: HubProcess, http: Any) -> bool:
    return (await h.status(http))["broker"].get("healthy") is True


async def read_until(ws: Any, want: Any) -> list[dict[str, Any]]:
    """Messages received up to and including the first one ``want`` accepts."""
    got: list[dict[str, Any]] = []
    async with asyncio.timeout(units(50)):
        while True:
            for line in str(await ws.recv()).split("\n"):
                got.append(json.loads(line))
                if want(got[-1]):
                    return got


async def test_the_emergency_stop_survives_a_redis_restart(
    private_redis: RedisServer, tmp_path: Path
) -> None:
    async with cluster(private_redis.url, tmp_path) as (hubs, _sims, http):
        await wait_all_polled(hubs, http)
        r = await http.post(f"{hubs[0].url}/api/emergency/stop-all", json={"reason": "test"})
        assert r.status_code == 200
        await asyncio.to_thread(private_redis.kill)
        await asyncio.to_thread(private_redis.start)
        for h in hubs:
            await eventually(
                lambda h=h: healthy(h, http),
                timeout=units(100),
                interval=units(0.5),
                message=f"{h.name} to report Redis back",
            )
        body = {"symbol": "XAUUSD", "action": "buy", "lots": 0.01, "sl": 1.0}

        async def refused() -> bool:
            r = await http.post(f"{hubs[1].url}/api/agents/agent_1/trade", json=body)
            assert r.status_code in (423, 503), r.text  # never past the kill switch
            return r.status_code == 423

        await eventually(
            refused,
            timeout=units(100),
            interval=units(0.5),
            message="a trade refused by the kill switch",
        )


async def test_the_first_commands_after_a_redis_restart_do_not_fail_internally(
    private_redis: RedisServer, tmp_path: Path
) -> None:
    async with cluster(private_redis.url, tmp_path) as (hubs, _sims, http):
        await wait_all_polled(hubs, http)
        await asyncio.to_thread(private_redis.kill)
        await asyncio.to_thread(private_redis.start)
        body = {"symbol": "XAUUSD", "action": "buy", "lots": 0.01, "sl": 1.0}
        for h in hubs:
            r = await http.post(f"{h.url}/api/agents/agent_1/trade", json=body)
            assert r.status_code != 500, f"{h.name}: {r.text}"
