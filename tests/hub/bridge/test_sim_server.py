"""The simulated EA Bridge over a real socket: the contract, the test controls, fault modes."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec
import pytest

from hub.bridge.models import Account, BridgeErrorBody, ClosedTrade, Position, Tick
from hub.bridge.sim_server import SimServer, SimState, serve_sim_forever, start_sim
from hub.config import SymbolSpec
from tests.timing import eventually, units

SYMBOLS = {
    "XAUUSD": SymbolSpec(contract_size=100, digits=2, max_lots=50),
    "EURUSD": SymbolSpec(contract_size=100_000, digits=5, max_lots=50),
}
MODES = ["ok", "down", "slow", "error", "garbage"]
JSON = {"Content-Type": "application/json"}


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    server = await start_sim("127.0.0.1", 0, symbols=SYMBOLS, balance=1000, seed=1)
    yield server
    await server.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=units(50))) as session:
        yield session


async def call(
    http: aiohttp.ClientSession, method: str, url: str, body: Any = None
) -> tuple[int, bytes]:
    data = None if body is None else msgspec.json.encode(body)
    headers = JSON if method == "POST" else None
    async with http.request(method, url, data=data, headers=headers) as resp:
        return resp.status, await resp.read()


async def state(http: aiohttp.ClientSession, sim: SimServer) -> SimState:
    status, raw = await call(http, "GET", sim.url + "/sim/state")
    assert status == 200
    return msgspec.json.decode(raw, type=SimState)


async def set_fault(
    http: aiohttp.ClientSession, sim: SimServer, mode: str, delay_ms: int | None = None
) -> None:
    body: dict[str, Any] = {"mode": mode}
    if delay_ms is not None:
        body["delay_ms"] = delay_ms
    status, raw = await call(http, "POST", sim.url + "/sim/fault", body)
    assert status == 200, raw


async def pin(
    http: aiohttp.ClientSession, sim: SimServer, symbol: str, bid: float, ask: float
) -> Tick:
    status, raw = await call(
        http, "POST", sim.url + "/sim/price", {"symbol": symbol, "bid": bid, "ask": ask}
    )
    assert status == 200, raw
    return msgspec.json.decode(raw, type=Tick)


def error_of(raw: bytes) -> str:
    return msgspec.json.decode(raw, type=BridgeErrorBody).error


BUY = {"symbol": "XAUUSD", "action": "buy", "lots": 0.01, "sl": 2640.0, "comment": "t"}


# -- the bridge contract ------------------------------------------------------


async def test_bridge_endpoints_speak_the_contract(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    await pin(http, sim, "XAUUSD", 2650.0, 2650.3)
    status, raw = await call(http, "GET", sim.url + "/tick/XAUUSD")
    assert status == 200
    assert msgspec.json.decode(raw, type=Tick).ask == 2650.3

    status, raw = await call(http, "POST", sim.url + "/trade", BUY)
    opened = msgspec.json.decode(raw, type=Position)
    assert (status, opened.ticket, opened.open_price, opened.comment) == (200, 1001, 2650.3, "t")

    status, raw = await call(http, "GET", sim.url + "/positions")
    assert msgspec.json.decode(raw, type=list[Position])[0].ticket == 1001

    body = {"ticket": 1001, "sl": 2645.0, "tp": 2660.0}
    status, raw = await call(http, "POST", sim.url + "/modify", body)
    assert (status, msgspec.json.decode(raw, type=Position).sl) == (200, 2645.0)

    await pin(http, sim, "XAUUSD", 2651.0, 2651.3)
    status, raw = await call(http, "POST", sim.url + "/close", {"ticket": 1001})
    closed = msgspec.json.decode(raw, type=ClosedTrade)
    assert (status, closed.profit, closed.reason) == (200, 0.7, "close")

    status, raw = await call(http, "GET", sim.url + "/history")
    assert msgspec.json.decode(raw, type=list[ClosedTrade]) == [closed]
    status, raw = await call(http, "GET", sim.url + f"/history?since={closed.close_time + 1}")
    assert msgspec.json.decode(raw, type=list[ClosedTrade]) == []

    status, raw = await call(http, "GET", sim.url + "/account")
    assert msgspec.json.decode(raw, type=Account).balance == 1000.7


async def test_refused_order_is_400_with_the_reason(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    await pin(http, sim, "XAUUSD", 2650.0, 2650.3)
    status, raw = await call(http, "POST", sim.url + "/trade", {**BUY, "sl": 2655.0})
    assert status == 400
    assert error_of(raw).startswith("sl: a buy's stop loss must be below bid 2650.0")
    assert (await state(http, sim)).orders_filled == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**BUY, "lots": -1}, "lots"),
        ({"action": "buy", "lots": 0.01}, "symbol"),
        ({**BUY, "action": "hold"}, "action"),
        (b"{not json", "body"),
    ],
)
async def test_bad_order_body_is_400_naming_the_field(
    sim: SimServer, http: aiohttp.ClientSession, body: Any, field: str
) -> None:
    data = body if isinstance(body, bytes) else msgspec.json.encode(body)
    async with http.post(sim.url + "/trade", data=data, headers=JSON) as resp:
        assert resp.status == 400
        assert error_of(await resp.read()).startswith(f"{field}: ")


async def test_unknown_symbol_and_ticket_are_404(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    status, raw = await call(http, "GET", sim.url + "/tick/NOPE")
    assert (status, error_of(raw)[:7]) == (404, "symbol:")
    status, raw = await call(http, "POST", sim.url + "/close", {"ticket": 4242})
    assert (status, error_of(raw)) == (404, "ticket: no open position 4242")
    status, raw = await call(http, "GET", sim.url + "/nowhere")
    assert status == 404
    assert "Not Found" in error_of(raw)


async def test_bad_history_since_is_400(sim: SimServer, http: aiohttp.ClientSession) -> None:
    status, raw = await call(http, "GET", sim.url + "/history?since=yesterday")
    assert (status, error_of(raw)[:6]) == (400, "since:")


async def test_one_order_is_received_and_filled_once(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    status, _ = await call(http, "POST", sim.url + "/trade", {**BUY, "sl": None})
    assert status == 200
    got = await state(http, sim)
    assert (got.orders_received, got.orders_filled, got.positions, got.history) == (1, 1, 1, 0)


# -- test controls ------------------------------------------------------------


async def test_pinned_price_through_the_stop_closes_the_position(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    await pin(http, sim, "XAUUSD", 2650.0, 2650.3)
    await call(http, "POST", sim.url + "/trade", {**BUY, "sl": 2649.0})
    await pin(http, sim, "XAUUSD", 2648.9, 2649.2)
    _, raw = await call(http, "GET", sim.url + "/history")
    [closed] = msgspec.json.decode(raw, type=list[ClosedTrade])
    assert (closed.reason, closed.close_price) == ("sl", 2648.9)
    assert (await state(http, sim)).positions == 0


async def test_walk_true_unpins_the_price(sim: SimServer, http: aiohttp.ClientSession) -> None:
    await pin(http, sim, "XAUUSD", 2600.0, 2600.3)
    status, _ = await call(http, "POST", sim.url + "/sim/price", {"symbol": "XAUUSD", "walk": True})
    assert status == 200
    await eventually(
        lambda: sim.model.tick("XAUUSD").bid != 2600.0,
        timeout=units(50),
        interval=units(1),
        message="the price to move",
    )


async def test_the_walk_advances_when_nobody_polls(sim: SimServer) -> None:
    before = sim.model.now_ms
    await eventually(
        lambda: sim.model.now_ms > before,
        timeout=units(50),
        interval=units(1),
        message="the model clock to advance",
    )


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/sim/fault", {"mode": "broken"}, "mode"),
        ("/sim/fault", {"mode": "slow", "delay_ms": -1}, "delay_ms"),
        ("/sim/fault", {"mode": "ok", "colour": "red"}, "colour"),
        ("/sim/fault", {}, "mode"),
        ("/sim/price", {"symbol": "XAUUSD", "bid": 2650.0}, "ask"),
        ("/sim/price", {"bid": 1.0, "ask": 2.0}, "symbol"),
        ("/sim/price", {"symbol": "NOPE", "bid": 1.0, "ask": 2.0}, "symbol"),
        ("/sim/price", {"symbol": "XAUUSD", "bid": -1.0, "ask": 2.0}, "bid"),
        ("/sim/price", {"symbol": "XAUUSD", "bid": 3.0, "ask": 2.0}, "ask"),
        ("/sim/price", {"symbol": "XAUUSD", "walk": True, "bid": 1.0}, "walk"),
    ],
)
async def test_bad_control_body_is_400_naming_the_field(
    sim: SimServer, http: aiohttp.ClientSession, path: str, body: Any, field: str
) -> None:
    status, raw = await call(http, "POST", sim.url + path, body)
    assert status == 400
    assert error_of(raw).startswith(f"{field}: ")


async def test_reset_restores_the_initial_account(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    await pin(http, sim, "XAUUSD", 2650.0, 2650.3)
    status, raw = await call(http, "POST", sim.url + "/trade", BUY)
    ticket = msgspec.json.decode(raw, type=Position).ticket
    await pin(http, sim, "XAUUSD", 2660.0, 2660.3)
    await call(http, "POST", sim.url + "/close", {"ticket": ticket})
    await call(http, "POST", sim.url + "/trade", BUY)
    await set_fault(http, sim, "error")
    status, raw = await call(http, "POST", sim.url + "/sim/reset")
    assert status == 200
    assert msgspec.json.decode(raw, type=SimState) == SimState(
        fault="ok", delay_ms=5000, orders_received=0, orders_filled=0, positions=0, history=0
    )
    status, raw = await call(http, "GET", sim.url + "/account")
    assert msgspec.json.decode(raw, type=Account).balance == 1000.0
    tick = msgspec.json.decode((await call(http, "GET", sim.url + "/tick/XAUUSD"))[1], type=Tick)
    assert abs(tick.bid - 2650.0) < 10  # a fresh walk, not the pinned 2660


@pytest.mark.parametrize("mode", MODES)
async def test_sim_controls_answer_in_every_fault_mode(
    sim: SimServer, http: aiohttp.ClientSession, mode: str
) -> None:
    await set_fault(http, sim, mode, delay_ms=60_000)
    async with asyncio.timeout(units(20)):
        assert (await state(http, sim)).fault == mode
        assert (await pin(http, sim, "EURUSD", 1.1, 1.1001)).bid == 1.1
        status, raw = await call(http, "POST", sim.url + "/sim/reset")
    assert (status, msgspec.json.decode(raw, type=SimState).fault) == (200, "ok")


# -- fault modes --------------------------------------------------------------


async def test_down_drops_the_connection_without_an_answer(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    await set_fault(http, sim, "down")
    for method, path, body in [("GET", "/account", None), ("POST", "/trade", BUY)]:
        with pytest.raises(aiohttp.ClientConnectionError):
            await call(http, method, sim.url + path, body)
    got = await state(http, sim)
    assert (got.orders_received, got.orders_filled) == (1, 0)


async def test_slow_fills_at_once_and_answers_late(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    await set_fault(http, sim, "slow", delay_ms=int(units(5) * 1000))
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(units(1)):
            await call(http, "POST", sim.url + "/trade", BUY)
    got = await state(http, sim)
    assert (got.orders_received, got.orders_filled, got.positions) == (1, 1, 1)
    async with asyncio.timeout(units(30)):
        status, raw = await call(http, "GET", sim.url + "/positions")
    assert status == 200
    assert [p.ticket for p in msgspec.json.decode(raw, type=list[Position])] == [1001]


async def test_error_answers_500_without_touching_the_account(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    await set_fault(http, sim, "error")
    status, raw = await call(http, "POST", sim.url + "/trade", BUY)
    assert (status, error_of(raw)) == (500, "simulated bridge failure")
    assert (await call(http, "GET", sim.url + "/account"))[0] == 500
    assert (await state(http, sim)).orders_filled == 0


async def test_garbage_answers_200_with_bodies_outside_the_contract(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    await set_fault(http, sim, "garbage")
    endpoints: list[tuple[str, str, Any, Any]] = [
        ("GET", "/account", None, Account),
        ("GET", "/tick/XAUUSD", None, Tick),
        ("GET", "/positions", None, list[Position]),
        ("GET", "/history", None, list[ClosedTrade]),
        ("POST", "/trade", BUY, Position),
        ("POST", "/close", {"ticket": 1001}, ClosedTrade),
        ("POST", "/modify", {"ticket": 1001, "sl": 1.0}, Position),
    ]
    bodies = set()
    for _ in range(4):
        for method, path, body, typ in endpoints:
            status, raw = await call(http, method, sim.url + path, body)
            assert status == 200
            bodies.add(raw)
            with pytest.raises((msgspec.DecodeError, msgspec.ValidationError)):
                msgspec.json.decode(raw, type=typ)
    assert len(bodies) >= 4  # it rotates
    assert (await state(http, sim)).orders_filled == 0


# -- lifecycle ----------------------------------------------------------------


async def test_starting_on_a_taken_port_fails_clearly(sim: SimServer) -> None:
    with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{sim.port}"):
        await start_sim("127.0.0.1", sim.port, symbols=SYMBOLS, balance=100)


async def test_serve_forever_listens_until_cancelled(
    http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    caplog.set_level(logging.INFO, logger="hub.bridge.sim_server")
    task = asyncio.create_task(
        serve_sim_forever("127.0.0.1", port, symbols=SYMBOLS, balance=200, seed=3)
    )
    for _ in range(100):
        await asyncio.sleep(units(0.5))
        if f"listening on {url}" in caplog.text:
            break
    status, raw = await call(http, "GET", url + "/account")
    assert (status, msgspec.json.decode(raw, type=Account).balance) == (200, 200.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(aiohttp.ClientConnectionError):
        await call(http, "GET", url + "/account")


# -- who may call it ------------------------------------------------------------


async def test_a_web_page_cannot_post_an_order_as_text_plain(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    body = msgspec.json.encode({**BUY, "lots": 0.3, "sl": None})  # 0.3 lot, no stop
    for headers in ({"Content-Type": "text/plain"}, {}):  # a "simple" cross-site request
        async with http.post(sim.url + "/trade", data=body, headers=headers) as resp:
            assert resp.status == 415, await resp.text()
    assert (await state(http, sim)).orders_received == 0


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/trade"), ("GET", "/account"), ("POST", "/sim/price"), ("POST", "/sim/reset")],
)
async def test_requests_from_a_web_page_are_refused(
    sim: SimServer, http: aiohttp.ClientSession, method: str, path: str
) -> None:
    body = msgspec.json.encode(
        {"symbol": "XAUUSD", "bid": 1.0, "ask": 1.1} if "price" in path else BUY
    )
    headers = {**JSON, "Origin": "https://evil.example"}
    async with http.request(method, sim.url + path, data=body, headers=headers) as resp:
        assert resp.status == 403, await resp.text()
    assert (await state(http, sim)).orders_received == 0


async def test_controls_off_loopback_need_the_control_token(http: aiohttp.ClientSession) -> None:
    async with await start_sim("0.0.0.0", 0, symbols=SYMBOLS, balance=100) as open_sim:
        url = f"http://127.0.0.1:{open_sim.port}"
        status, raw = await call(http, "POST", url + "/sim/reset")
        assert status == 403 and "control token" in error_of(raw)
        assert (await call(http, "GET", url + "/account"))[0] == 200  # the bridge itself works
    secret = "sim-control-token-0123"
    guarded = await start_sim("0.0.0.0", 0, symbols=SYMBOLS, balance=100, control_token=secret)
    async with guarded:
        url = f"http://127.0.0.1:{guarded.port}"
        assert (await call(http, "POST", url + "/sim/reset"))[0] == 403
        wrong = {**JSON, "Authorization": "Bearer nope"}
        async with http.post(url + "/sim/reset", headers=wrong) as resp:
            assert resp.status == 403
        right = {**JSON, "Authorization": f"Bearer {secret}"}
        async with http.post(url + "/sim/reset", headers=right) as resp:
            assert resp.status == 200


def test_the_hub_s_own_dialect_answers_the_model_s_structs_as_written_field_by_field() -> None:
    """The simulator's shortcut for the default profile (no per-field writing) gives the
    same documents as the general path."""
    from hub.bridge.profile import load_profile
    from hub.bridge.sim_dialect import SimDialect

    native = SimDialect(load_profile())
    general = SimDialect(load_profile())
    general.native = False
    assert native.native
    position = Position(
        ticket=1001, symbol="XAUUSD", action="buy", lots=0.01, open_price=2650.3, sl=2640.0,
        tp=None, profit=0.5, open_time=1764500000000, comment="habc1234567 x",
    )  # fmt: skip
    closed = ClosedTrade(
        ticket=1001, symbol="XAUUSD", action="sell", lots=0.01, open_price=2650.3,
        close_price=2651.0, sl=None, tp=2600.0, profit=-0.7, open_time=1764500000000,
        close_time=1764500100000, comment="", reason="sl",
    )  # fmt: skip
    answers = [
        ("account", Account(balance=200, equity=199.5, margin=5, free_margin=194.5, profit=-0.5)),
        ("tick", Tick(symbol="XAUUSD", bid=2650.0, ask=2650.3, time=1764500000000)),
        ("positions", [position]),
        ("history", [closed]),
        ("open", position),
        ("close", closed),
    ]
    for name, obj in answers:
        assert native.answer(name, obj) == general.answer(name, obj), name
