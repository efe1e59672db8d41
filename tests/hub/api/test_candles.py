"""Candles end to end on SQLite and Postgres: bars of the bid built from the ticks the hub
published (pinned through the simulator's ``/sim/price``), served oldest first, and
continued across a restart."""

from __future__ import annotations

import tempfile
from typing import Any

import msgspec

from hub.bridge.models import Tick
from tests.hubkit import RunningHub, run_hub
from tests.timing import eventually

PERIOD = {"M1": 60_000, "M5": 300_000, "M15": 900_000, "H1": 3_600_000}


async def pin(h: RunningHub, bid: float) -> None:
    """Pin XAUUSD's bid and wait until the hub has published it."""
    await h.sim("agent_1", "/sim/price", {"symbol": "XAUUSD", "bid": bid, "ask": bid + 0.3})
    ticks = h.hub.registry.agents["agent_1"].ticks
    await eventually(lambda: "XAUUSD" in ticks and ticks["XAUUSD"].bid == bid)


async def published_ticks(h: RunningHub) -> list[Tick]:
    """Every XAUUSD tick the hub published, from the channel's history."""
    resp = await h.get("/api/channels/agent:agent_1:ticks/history")
    assert resp.status_code == 200, resp.text
    ticks = [msgspec.convert(e["data"], Tick) for e in resp.json()["events"]]
    return [t for t in ticks if t.symbol == "XAUUSD"]


def expected_bars(runs: list[list[Tick]], tf: str) -> list[dict[str, Any]]:
    """OHLC of the bid per period; within a run a tick that did not move the bid is no new
    bid (a new run — a restarted hub — starts without a last bid)."""
    bars: dict[int, dict[str, Any]] = {}
    for ticks in runs:
        last = None
        for tick in ticks:
            if tick.bid == last:
                continue
            last = tick.bid
            t = tick.time - tick.time % PERIOD[tf]
            bar = bars.get(t)
            if bar is None:
                bars[t] = {"symbol": "XAUUSD", "tf": tf, "t": t, "o": tick.bid, "h": tick.bid,
                           "l": tick.bid, "c": tick.bid, "ticks": 1}  # fmt: skip
            else:
                bar.update(h=max(bar["h"], tick.bid), l=min(bar["l"], tick.bid), c=tick.bid)
                bar["ticks"] += 1
    return [bars[t] for t in sorted(bars)]


async def candles(h: RunningHub, tf: str, **params: Any) -> list[dict[str, Any]]:
    resp = await h.get("/api/agents/agent_1/candles/XAUUSD", params={"tf": tf, **params})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["symbol"], body["tf"]) == ("XAUUSD", tf)
    bars: list[dict[str, Any]] = body["candles"]
    return bars


async def test_bars_match_the_pinned_ticks(store_url: str) -> None:
    async with run_hub(env={"DATABASE_URL": store_url}) as h:
        for bid in (2650.0, 2700.0, 2600.0, 2651.5):
            await pin(h, bid)
        ticks = await published_ticks(h)
        for tf in PERIOD:
            assert await candles(h, tf, limit=5000) == expected_bars([ticks], tf), tf
        *_, h1 = await candles(h, "H1")
        assert (h1["h"], h1["l"], h1["c"]) == (2700.0, 2600.0, 2651.5)


async def test_a_restart_keeps_closed_bars_and_continues_the_current_one(store_url: str) -> None:
    with tempfile.TemporaryDirectory(prefix="mt4hub-test-") as data_dir:
        env = {"DATABASE_URL": store_url}
        async with run_hub(env=env, data_dir=data_dir) as h:
            config = h.hub.config
            for bid in (2650.0, 2710.0, 2649.0):
                await pin(h, bid)
            before = await published_ticks(h)
            closed_m1 = (await candles(h, "M1"))[:-1]
        async with run_hub(config, env=env, data_dir=data_dir) as h:
            for bid in (2590.0, 2652.0):
                await pin(h, bid)
            after = [t for t in await published_ticks(h) if t.time > before[-1].time]
            for tf in PERIOD:
                assert await candles(h, tf, limit=5000) == expected_bars([before, after], tf), tf
            assert (await candles(h, "M1"))[: len(closed_m1)] == closed_m1
            *_, h1 = await candles(h, "H1")
            assert (h1["h"], h1["l"], h1["c"]) == (2710.0, 2590.0, 2652.0)


async def test_bars_go_out_on_the_candles_channel(store_url: str) -> None:
    async with run_hub(env={"DATABASE_URL": store_url}) as h:
        await pin(h, 2655.5)
        resp = await h.get("/api/channels/agent:agent_1:candles/history")
        assert resp.status_code == 200, resp.text
        data = [e["data"] for e in resp.json()["events"]]
        assert {"M1", "M5", "M15", "H1"} <= {d["tf"] for d in data if d["c"] == 2655.5}
        assert set(data[-1]) == {"symbol", "tf", "t", "o", "h", "l", "c", "ticks"}


async def test_candle_queries_name_the_bad_field() -> None:
    async with run_hub() as h:
        base = "/api/agents/agent_1/candles"
        for path, params, field in [
            (f"{base}/XAUUSD", {"tf": "M2"}, "tf"),
            (f"{base}/XAUUSD", {"limit": "0"}, "limit"),
            (f"{base}/XAUUSD", {"limit": "x"}, "limit"),
            (f"{base}/XAUUSD", {"before": "-5"}, "before"),
        ]:
            resp = await h.get(path, params=params)
            assert resp.status_code == 400, (params, resp.text)
            assert resp.json()["error"]["message"].startswith(f"{field}:"), resp.text
        assert (await h.get(f"{base}/NOPE")).status_code == 404
        assert (await h.get("/api/agents/nobody/candles/XAUUSD")).status_code == 404
