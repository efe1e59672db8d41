"""A faulty EA Bridge (down, slow, 5xx, garbage): only its agent goes offline, soon, with a
clear error; nothing bad is published; its trades get ``agent_offline``; recovery is automatic.

The ``down`` case alone is also ``tests/hub/api/test_rest.py::
test_bridge_down_goes_offline_fast_others_unaffected_then_recovers``.
"""

from __future__ import annotations

import asyncio
import math

import pytest

from tests.faults.kit import Recorder
from tests.hubkit import RunningHub, run_hub
from tests.timing import eventually, units

SLOW_MS = 3000  # longer than the poll timeout of tests.hubkit.hub_config (0.5 s)


async def ready(h: RunningHub, *agents: str) -> None:
    reg = h.hub.registry.agents
    await eventually(lambda: all(reg[a].online and reg[a].account is not None for a in agents))


def buy(h: RunningHub, agent: str, symbol: str, distance: float) -> dict[str, object]:
    bid = h.hub.registry.agents[agent].ticks[symbol].bid
    return {"symbol": symbol, "action": "buy", "lots": 0.01, "sl": round(bid - distance, 2)}


def sane(tick: dict[str, float]) -> bool:
    bid, ask = tick["bid"], tick["ask"]
    return all(isinstance(v, float) and math.isfinite(v) for v in (bid, ask)) and 0 < bid <= ask


@pytest.mark.parametrize("mode", ["down", "slow", "error", "garbage"])
async def test_a_faulty_bridge_takes_only_its_agent_offline_and_it_recovers(mode: str) -> None:
    async with run_hub() as h:
        await ready(h, "agent_1", "agent_2", "agent_3")
        reg = h.hub.registry.agents
        cfg = h.hub.config.polling
        others_errors = {a: reg[a].stats.errors for a in ("agent_2", "agent_3")}
        channels = ["agent:agent_1:status", "agent:*:ticks"]
        async with Recorder(f"{h.ws_url}?token={h.token}&batch=1", channels) as rec:
            loop = asyncio.get_running_loop()
            polls = {a: reg[a].stats.polls for a in ("agent_2", "agent_3")}
            await h.sim("agent_1", "/sim/fault", {"mode": mode, "delay_ms": SLOW_MS})
            t0 = loop.time()
            await eventually(lambda: not reg["agent_1"].online, timeout=units(50))
            # Two poll intervals, plus the poll timeout when the bridge is slow to answer,
            # plus scheduling slack on a loaded 2-core machine.
            bound = 2 * cfg.tick_interval + (cfg.timeout if mode == "slow" else 0) + units(2)
            assert loop.time() - t0 <= bound, f"offline after {loop.time() - t0:.2f} s"
            offline_at = loop.time()

            status = (await h.get("/api/agents/agent_1")).json()["status"]
            assert status["status"] == "offline" and status["error"], status
            r = await h.post("/api/agents/agent_1/trade", buy(h, "agent_1", "XAUUSD", 1.5))
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] == "agent_offline"
            assert "agent_1" in r.json()["error"]["message"]

            # The other agents: polled on, never an error, and they still trade.
            await eventually(lambda: all(reg[a].stats.polls > polls[a] + 5 for a in polls))
            r = await h.post("/api/agents/agent_3/trade", buy(h, "agent_3", "XAUUSD", 5.0))
            assert r.status_code == 200, r.text
            assert {a: reg[a].stats.errors for a in others_errors} == others_errors
            assert reg["agent_2"].online and reg["agent_3"].online

            ok_at = loop.time()
            await h.sim("agent_1", "/sim/fault", {"mode": "ok"})
            await eventually(lambda: reg["agent_1"].online, timeout=units(50))
            r = await h.post("/api/agents/agent_1/trade", buy(h, "agent_1", "XAUUSD", 1.5))
            assert r.status_code == 200, r.text
            await eventually(lambda: len(rec.on("agent:agent_1:ticks", ok_at)) > 0)
            for agent in ("agent_2", "agent_3"):  # the others' ticks kept flowing meanwhile
                ch = f"agent:{agent}:ticks"
                await eventually(
                    lambda ch=ch: any(m.get("ch") == ch for m in rec.on(ch, offline_at)),
                    timeout=units(50),
                )

        states = [m["data"]["status"] for m in rec.on("agent:agent_1:status")]
        assert states[-2:] == ["offline", "online"], states
        offline = [m["data"] for m in rec.on("agent:agent_1:status")]
        assert all(d["error"] for d in offline if d["status"] == "offline"), offline
        ticks_1 = rec.on("agent:agent_1:ticks")
        assert all(sane(m["data"]) for m in ticks_1), "a bad value was published as a tick"
        during = [t for t, m in rec.messages if m.get("ch") == "agent:agent_1:ticks"
                  and offline_at <= t < ok_at]  # fmt: skip
        assert during == [], "agent_1 ticks published while its bridge was faulty"
