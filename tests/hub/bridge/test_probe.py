"""``mt4hub probe``: read-only checks of a live bridge against a profile, every mismatch
printed, exit 0 when the hub can work with the bridge."""

from __future__ import annotations

import asyncio
import io
import sys
from collections.abc import AsyncIterator

import pytest

from hub.bridge.probe import probe
from hub.bridge.profile import builtin_names, load_profile, parse_profile
from hub.bridge.sim_server import SimServer, start_sim
from tests.hub.bridge.quirky import SPECS


@pytest.fixture(params=builtin_names())
async def sim(request: pytest.FixtureRequest) -> AsyncIterator[SimServer]:
    server = await start_sim(
        "127.0.0.1", 0, symbols=SPECS, balance=500.0, seed=2, profile=load_profile(request.param)
    )
    server.model.close(server.model.trade("XAUUSD", "sell", 0.01, tp=2000.0).ticket)
    server.model.trade("XAUUSD", "buy", 0.02, sl=2600.0, comment="manual")
    try:
        yield server
    finally:
        await server.close()


def profile_of(sim: SimServer, request: pytest.FixtureRequest) -> str:
    return str(request.node.callspec.params["sim"])


async def test_every_built_in_dialect_probes_clean(
    sim: SimServer, request: pytest.FixtureRequest
) -> None:
    out = io.StringIO()
    code = await probe(sim.url, load_profile(profile_of(sim, request)), symbol="XAUUSD", out=out)
    text = out.getvalue()
    assert code == 0, text
    assert "1 open" in text and "1 closed" in text
    assert "mismatches with the profile: 0" in text
    assert text.rstrip().endswith("result: the hub can work with this bridge")


async def test_trade_opens_and_closes_the_minimum_lot(
    sim: SimServer, request: pytest.FixtureRequest
) -> None:
    name = profile_of(sim, request)
    out = io.StringIO()
    code = await probe(sim.url, load_profile(name), symbol="XAUUSD", trade=True, out=out)
    assert code == 0, out.getvalue()
    opened = [p for p in sim.model.positions() if p.lots == 0.01]
    if name == "minimal":  # no close at that bridge: the probe says so and leaves it open
        assert len(opened) == 1 and "close it in the terminal" in out.getvalue()
    else:
        assert opened == [] and len(sim.model.history()) == 2


MISMATCHED = """
name: mismatched
operations:
  account: {path: /account, fields: {free_margin: freeMargin, equity: eq}}
  tick: {path: "/tick/{symbol}", fields: {bid: Bid}}
  positions: {path: /positions, fields: {lots: volume, sl: stoploss}}
  history: {path: /closed}
  open: {method: POST, path: /trade, body: {symbol: symbol, action: action, lots: lots}}
"""


async def test_a_mismatched_profile_prints_every_mismatch() -> None:
    server = await start_sim("127.0.0.1", 0, symbols=SPECS, balance=500.0, seed=2)
    server.model.trade("XAUUSD", "buy", 0.02, sl=2600.0)
    out = io.StringIO()
    try:
        code = await probe(server.url, parse_profile(MISMATCHED), symbol="XAUUSD", out=out)
    finally:
        await server.close()
    text = out.getvalue()
    for line in (
        "/account: field free_margin missing (profile: freeMargin), found as 'free_margin'",
        "/account: field equity missing (profile: eq), found as 'equity'",
        "/tick/{symbol}: field bid missing (profile: Bid), found as 'bid'",
        "/positions: field lots missing (profile: volume), found as 'lots'",
        "/positions: field sl missing (profile: stoploss), found as 'sl'",
        "GET /closed: HTTP 404",
        "close: not in the profile: the hub answers not_supported (422)",
        "modify: not in the profile",
        "mismatches with the profile: 5",
    ):
        assert line in text, f"{line!r} not in:\n{text}"
    assert code == 1 and "result: the hub cannot work with this bridge (1 failed)" in text


async def test_the_command_exits_0_against_a_simulator_in_its_dialect() -> None:
    server = await start_sim(
        "127.0.0.1", 0, symbols=SPECS, balance=500.0, profile=load_profile("wrapped")
    )
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hub.cli", "probe", server.url, "--profile", "wrapped",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await proc.communicate()
        assert proc.returncode == 0, out.decode()
        assert b"GET /account/info: HTTP 200" in out
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hub.cli", "probe", server.url,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await proc.communicate()
        assert proc.returncode == 1, out.decode()  # the default profile is not its dialect
    finally:
        await server.close()


def test_an_unknown_profile_stops_probe_and_sim_with_its_name(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from hub.cli import main

    assert main(["probe", "127.0.0.1:9", "--profile", "nope"]) == 2
    assert "--profile: unknown profile 'nope' (built-in: minimal, mt4hub, wrapped" in (
        capsys.readouterr().err
    )
    assert main(["sim", "--port", "0", "--profile", "nope"]) == 1
    assert "--profile: unknown profile 'nope'" in capsys.readouterr().err
