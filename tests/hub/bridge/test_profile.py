"""Bridge profiles: the built-ins load, a bad profile lists every problem with its key path,
``mt4hub check`` validates an agent's profile, and a profile's rules shape the dialect."""

from __future__ import annotations

import textwrap
from pathlib import Path

import msgspec
import pytest

from hub.bridge.dialect import Dialect
from hub.bridge.errors import BridgeRejected
from hub.bridge.profile import ProfileError, builtin_names, load_profile, parse_profile
from hub.config import ConfigError, load_config

NESTED = """
name: nested
envelope: {data: result.payload, success: result.ok, message: result.error.text,
           code: result.error.number}
time: {format: text, text: "%Y.%m.%d %H:%M:%S", timezone: "+02:00"}
numbers_as_strings: true
actions: {buy: LONG, sell: SHORT}
operations:
  account: {path: /acct, fields: {balance: money.balance, equity: [money.equity, eq]}}
  tick: {path: "/q/{symbol}"}
  positions: {path: /open, rows: items}
  history: {path: /closed, query: {from: "{since}"}}
  open:
    method: POST
    path: /orders
    body: {symbol: order.symbol, action: order.side, lots: order.volume, sl: order.sl}
    const: {order.kind: market}
"""


def test_every_built_in_profile_loads_and_the_default_is_mt4hub() -> None:
    assert builtin_names() == ["minimal", "mt4hub", "wrapped"]
    for name in builtin_names():
        assert load_profile(name).name == name
    assert load_profile().name == "mt4hub"
    assert load_profile("minimal").close is None and load_profile("minimal").modify is None
    assert load_profile("wrapped").tag_in_magic and not load_profile("mt4hub").tag_in_magic


def test_a_bad_profile_lists_every_problem_with_its_key_path() -> None:
    bad = """
name: bad profile
envelope: {data: 3}
time: {timezone: Nowhere/X}
numbers_as_strings: maybe
operations:
  account: {method: GOT, path: /account}
  tick: {path: "tick/{sym}"}
  open: {method: POST, path: /trade, body: {symbol: s, colour: c}}
  closer: {path: /x}
"""
    with pytest.raises(ProfileError) as info:
        parse_profile(bad, "bad.yml")
    problems = info.value.problems
    for expected in (
        "bad.yml: name: must match",
        "bad.yml: envelope.data: expected str | null, got int",
        "bad.yml: numbers_as_strings: expected bool, got str",
        "bad.yml: operations.account.method: invalid value 'GOT'",
        "bad.yml: operations.tick.path: must match",
        "bad.yml: operations.tick: unknown value {sym} (known here: symbol)",
        "bad.yml: operations.positions: required key missing",
        "bad.yml: operations.open.body.colour: unknown hub value",
        "bad.yml: operations.closer: unknown operation",
        "bad.yml: time.timezone: unknown time zone 'Nowhere/X'",
    ):
        assert any(p.startswith(expected) for p in problems), (expected, problems)


def write_config(tmp_path: Path, profile: str, extra: str = "") -> Path:
    path = tmp_path / "agents.yml"
    path.write_text(
        textwrap.dedent(
            f"""
            symbols: {{XAUUSD: {{contract_size: 100, digits: 2}}}}
            agents:
              agent_1: {{name: A, strategy: s, bridge: "http://127.0.0.1:9999", symbols: [XAUUSD],
                        bridge_profile: {profile}, {extra}
                        risk: {{max_risk_per_trade: 1%, max_daily_loss: 5%, max_positions: 1}}}}
            """
        )
    )
    return path


def test_check_names_an_unknown_profile_and_a_profile_files_problems(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write_config(tmp_path, "nope"))
    [line] = info.value.problems
    assert line.endswith(
        "agents.agent_1.bridge_profile: unknown profile 'nope' (built-in: minimal, mt4hub, "
        "wrapped; or a path to a .yml file)"
    )
    (tmp_path / "mine.yml").write_text("name: mine\noperations: {account: {path: /a}}\n")
    extra = "server_timezone: Mars/Base, bridge_symbols: {EURUSD: EURUSD.m},"
    with pytest.raises(ConfigError) as info:
        load_config(write_config(tmp_path, "mine.yml", extra))
    text = "\n".join(info.value.problems)
    assert f"agents.agent_1.bridge_profile: {tmp_path}/mine.yml: operations.tick: required" in text
    assert "agents.agent_1.server_timezone: unknown time zone 'Mars/Base'" in text
    assert "agents.agent_1.bridge_symbols.EURUSD: not one of the agent's symbols" in text


def test_a_profile_file_is_found_beside_the_config(tmp_path: Path) -> None:
    (tmp_path / "mine.yml").write_text(NESTED)
    config = load_config(write_config(tmp_path, "mine.yml", "symbol_suffix: .m,"))
    agent = config.agents["agent_1"]
    assert agent.bridge_profile == str(tmp_path / "mine.yml")
    assert agent.symbol_names == {"XAUUSD": "XAUUSD.m"}


def test_nested_paths_envelopes_text_times_and_numbers_as_strings() -> None:
    dialect = Dialect(parse_profile(NESTED), {"XAUUSD": "XAUUSD.m"})
    account = {"result": {"ok": True, "payload": {"money": {"balance": "100.5"}, "eq": 99}}}
    data = dialect.payload("account", 200, msgspec.json.encode(account))
    parsed = dialect.account(data)
    assert (parsed.balance, parsed.equity, parsed.free_margin) == (100.5, 99.0, 99.0)
    request = dialect.request("open", {"symbol": "XAUUSD", "action": "sell", "lots": 0.1,
                                       "sl": 2700.0, "tp": None})  # fmt: skip
    assert (request.method, request.path) == ("POST", "/orders")
    assert msgspec.json.decode(request.body or b"") == {
        "order": {"kind": "market", "symbol": "XAUUSD.m", "side": "SHORT", "volume": "0.1",
                  "sl": "2700.0"}
    }  # fmt: skip
    since = dialect.request("history", {"since": 1_704_189_600_000})  # 10:00 UTC
    assert since.query == {"from": "2024.01.02 12:00:00"}  # the server's +02:00
    assert dialect.request("tick", {"symbol": "XAUUSD"}).path == "/q/XAUUSD.m"
    refused = {"result": {"ok": False, "error": {"text": "off quotes", "number": "136"}}}
    with pytest.raises(BridgeRejected) as rejected:
        dialect.payload("open", 200, msgspec.json.encode(refused))
    assert str(rejected.value) == "off quotes" and rejected.value.mt4_code == 136
    rows = {"result": {"ok": True, "payload": {"items": [
        {"ticket": 7, "symbol": "XAUUSD.m", "action": "LONG", "lots": "0.1",
         "open_price": "2650.5", "open_time": "2024.01.02 12:00:00"}]}}}  # fmt: skip
    [pos] = dialect.positions(dialect.payload("positions", 200, msgspec.json.encode(rows)))
    assert (pos.symbol, pos.action, pos.open_time) == ("XAUUSD", "buy", 1_704_189_600_000)
