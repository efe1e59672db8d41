"""The hub end to end: real simulators over HTTP, real pollers, REST read side."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest

from tests.hubkit import RunningHub, hub_config, run_hub
from tests.timing import eventually, units


async def wait_online(h: RunningHub, *agents: str) -> None:
    await eventually(lambda: all(h.hub.registry.agents[a].online for a in agents))


async def test_health_and_status_are_open() -> None:
    async with run_hub() as h:
        r = await h.http.get("/health")
        assert (r.status_code, r.json()) == (200, {"status": "ok"})
        await wait_online(h, "agent_1", "agent_2", "agent_3")
        r = await h.http.get("/api/status")
        body = r.json()
        assert r.status_code == 200
        assert set(body["agents"]) == {"agent_1", "agent_2", "agent_3"}
        loop = body["agents"]["agent_1"]["loop"]
        assert loop["polls"] >= 1 and loop["running"] is True
        assert body["agents"]["agent_1"]["status"]["status"] == "online"
        assert {"version", "uptime_s", "broker", "store", "connections"} <= body.keys()
        assert body["broker"]["kind"] == "memory" and body["broker"]["healthy"] is True


async def test_no_token_is_401_and_bad_token_is_401() -> None:
    async with run_hub() as h:
        r = await h.http.get("/api/agents")
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
        r = await h.get("/api/agents", headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"


async def test_unknown_agent_and_symbol_are_404() -> None:
    async with run_hub() as h:
        r = await h.get("/api/agents/agent_9")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        r = await h.get("/api/agents/agent_1/tick/EURUSD")
        assert r.status_code == 404 and "EURUSD" in r.json()["error"]["message"]
        r = await h.get("/api/nothing-here")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


async def test_ticks_change_within_a_second_of_start() -> None:
    async with run_hub() as h:
        await wait_online(h, "agent_1")
        first = (await h.get("/api/agents/agent_1/tick/XAUUSD")).json()
        assert {"symbol", "bid", "ask", "time"} == first.keys() and first["bid"] < first["ask"]

        async def changed() -> bool:
            now = (await h.get("/api/agents/agent_1/tick/XAUUSD")).json()
            return bool((now["bid"], now["ask"]) != (first["bid"], first["ask"]))

        await eventually(changed, timeout=units(10), interval=units(0.5), message="a new tick")


async def test_agent_views_account_positions_history() -> None:
    async with run_hub() as h:
        await wait_online(h, "agent_1", "agent_2", "agent_3")
        await eventually(lambda: h.hub.registry.agents["agent_1"].account is not None)
        agents = (await h.get("/api/agents")).json()
        assert [a["agent_id"] for a in agents] == ["agent_1", "agent_2", "agent_3"]
        one = (await h.get("/api/agents/agent_1")).json()
        assert one["name"] == "Atlas" and one["enabled"] is True
        assert one["status"]["status"] == "online" and one["symbols"] == ["XAUUSD"]
        acc = (await h.get("/api/agents/agent_1/account")).json()
        assert acc["balance"] == 200.0 and acc["currency"] == "USD"
        assert {"balance", "equity", "margin", "free_margin", "profit", "leverage"} <= acc.keys()
        assert (await h.get("/api/agents/agent_1/positions")).json() == {"positions": []}
        assert (await h.get("/api/agents/agent_1/history")).json() == {"trades": []}


async def test_summary_has_the_spec_shape_and_totals_are_sums() -> None:
    async with run_hub() as h:
        await wait_online(h, "agent_1", "agent_2", "agent_3")
        await eventually(lambda: all(a.account is not None for a in h.hub.registry.agents.values()))
        s = (await h.get("/api/agents/summary")).json()
        assert set(s) == {
            "total_balance",
            "total_equity",
            "total_profit",
            "total_positions",
            "agents_online",
            "agents_offline",
            "agents",
        }
        rows = s["agents"]
        assert set(rows[0]) == {
            "agent_id",
            "name",
            "status",
            "balance",
            "equity",
            "profit",
            "open_positions",
            "strategy",
        }
        assert s["total_balance"] == round(sum(r["balance"] for r in rows), 2) == 1700.0
        assert s["total_equity"] == round(sum(r["equity"] for r in rows), 2)
        assert s["total_positions"] == sum(r["open_positions"] for r in rows)
        assert (s["agents_online"], s["agents_offline"]) == (3, 0)


async def test_bridge_down_goes_offline_fast_others_unaffected_then_recovers() -> None:
    async with run_hub() as h:
        await wait_online(h, "agent_1", "agent_2", "agent_3")
        reg = h.hub.registry.agents
        interval = h.hub.config.polling.tick_interval
        polls_before = reg["agent_2"].stats.polls
        await h.sim("agent_1", "/sim/fault", {"mode": "down"})
        t0 = asyncio.get_running_loop().time()
        await eventually(lambda: not reg["agent_1"].online, timeout=units(20))
        # within two poll intervals (plus scheduling slack on a loaded 2-core machine)
        assert asyncio.get_running_loop().time() - t0 <= 2 * interval + units(1)
        status = (await h.get("/api/agents/agent_1")).json()["status"]
        assert status["status"] == "offline" and status["error"]
        assert reg["agent_2"].online and reg["agent_3"].online
        await eventually(lambda: reg["agent_2"].stats.polls > polls_before + 3)
        s = (await h.get("/api/agents/summary")).json()
        assert (s["agents_online"], s["agents_offline"]) == (2, 1)
        await h.sim("agent_1", "/sim/fault", {"mode": "ok"})
        await eventually(lambda: reg["agent_1"].online, timeout=units(30))
        assert (await h.get("/api/agents/agent_1")).json()["status"]["status"] == "online"


async def test_a_price_that_stops_moving_is_listed_as_stale() -> None:
    cfg = hub_config("")
    cfg = msgspec.structs.replace(
        cfg, polling=msgspec.structs.replace(cfg.polling, stale_after=units(3))
    )
    async with run_hub(cfg) as h:
        await wait_online(h, "agent_1")
        agent = h.hub.registry.agents["agent_1"]
        assert (await h.get("/api/agents/agent_1")).json()["status"]["stale"] == []
        await h.sim("agent_1", "/sim/price", {"symbol": "XAUUSD", "bid": 2650.0, "ask": 2650.3})
        await asyncio.sleep(units(3) + 0.2)
        status = (await h.get("/api/agents/agent_1")).json()["status"]
        assert status["stale"] == ["XAUUSD"] and status["status"] == "online"
        await h.sim("agent_1", "/sim/price", {"symbol": "XAUUSD", "walk": True})
        await eventually(lambda: agent.ticks["XAUUSD"].bid != 2650.0)
        assert (await h.get("/api/agents/agent_1")).json()["status"]["stale"] == []


async def test_bridge_history_over_rest_is_shared_and_counts_against_the_token_rate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with run_hub(hub_config("server: {command_rate: 0.01, command_burst: 5}\n")) as h:
        await wait_online(h, "agent_1")
        client = h.hub.registry.agents["agent_1"].client
        real, calls = client.history, []

        async def counted(since_ms: int | None = None) -> Any:
            if since_ms == 12345:  # the REST reads of this test, not the poller's
                calls.append(since_ms)
            return await real(since_ms)

        monkeypatch.setattr(client, "history", counted)
        path, params = "/api/agents/agent_1/history", {"since": "12345"}
        burst = await asyncio.gather(*(h.get(path, params=params) for _ in range(5)))
        assert [r.status_code for r in burst] == [200] * 5
        assert len(calls) == 1  # one bridge read for the burst
        r = await h.get(path, params=params)
        assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
