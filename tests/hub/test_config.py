"""Config loading: the shipped file, and every kind of bad file with its key-path message."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hub.config import ConfigError, load_config, parse_config

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "config" / "agents.yml"

GOOD = textwrap.dedent(
    """
    symbols:
      XAUUSD: {contract_size: 100, digits: 2}
    agents:
      agent_1:
        name: Atlas
        strategy: amd
        bridge: sim://127.0.0.1:8081
        symbols: [XAUUSD]
        risk: {max_risk_per_trade: 1%, max_daily_loss: 5%, max_positions: 1}
    """
)


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "f.yml")
    return info.value.problems


def test_shipped_config_has_the_three_agents_of_the_original_design() -> None:
    cfg = load_config(SHIPPED)
    a1, a2, a3 = (cfg.agents[f"agent_{i}"] for i in (1, 2, 3))
    assert (a1.name, a1.strategy, a1.enabled, a1.symbols) == ("Atlas", "amd", True, ["XAUUSD"])
    assert (a1.risk.max_risk_per_trade, a1.risk.max_daily_loss, a1.risk.max_positions) == (
        0.01,
        0.05,
        1,
    )
    assert a1.initial_balance == 200 and a1.bridge == "sim://127.0.0.1:8081"
    assert (a2.name, a2.enabled, a2.symbols, a2.risk.max_risk_per_trade) == (
        "Orion",
        False,
        ["EURUSD", "GBPUSD"],
        0.015,
    )
    assert a2.risk.max_positions == 2 and a2.initial_balance == 500
    assert a3.symbols == ["XAUUSD", "EURUSD", "GBPUSD", "USDJPY"] and a3.risk.max_positions == 3
    assert a3.bridge == "sim://127.0.0.1:8083" and a3.initial_balance == 1000
    g = cfg.global_risk
    assert (g.emergency_stop_all, g.max_total_exposure, g.correlation_limit) == (False, 0.1, 0.5)
    assert cfg.symbols["XAUUSD"].contract_size == 100 and cfg.symbols["XAUUSD"].digits == 2
    assert cfg.symbols["EURUSD"].contract_size == 100000 and cfg.symbols["EURUSD"].digits == 5
    assert cfg.symbols["USDJPY"].quote_currency == "JPY" and cfg.symbols["USDJPY"].digits == 3


def test_good_minimal_config_parses_with_defaults() -> None:
    cfg = parse_config(GOOD, "f.yml")
    assert cfg.server.port == 8090
    assert cfg.polling.tick_interval == 0.25
    assert cfg.agents["agent_1"].bridge_http_url == "http://127.0.0.1:8081"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "max_positions: 1",
            "max_positions: 0",
            "f.yml: agents.agent_1.risk.max_positions: must be >= 1",
        ),
        (
            "max_positions: 1",
            "max_positions: 1, bogus: 2",
            "f.yml: agents.agent_1.risk.bogus: unknown key",
        ),
        (
            "max_positions: 1",
            "max_positions: one",
            "f.yml: agents.agent_1.risk.max_positions: expected int, got str",
        ),
        (
            "max_risk_per_trade: 1%",
            "max_risk_per_trade: 150%",
            "f.yml: agents.agent_1.risk.max_risk_per_trade: must be <= 1",
        ),
        (
            "max_risk_per_trade: 1%",
            "max_risk_per_trade: lots%",
            "f.yml: agents.agent_1.risk.max_risk_per_trade: expected float, got str",
        ),
        (
            "symbols: [XAUUSD]",
            "symbols: [EURUSD]",
            "f.yml: agents.agent_1.symbols[0]: unknown symbol 'EURUSD'",
        ),
        (
            "bridge: sim://127.0.0.1:8081",
            "bridge: ftp://x",
            "f.yml: agents.agent_1.bridge: must be a URL",
        ),
        (
            "bridge: sim://127.0.0.1:8081",
            "bridge: sim://127.0.0.1",
            "f.yml: agents.agent_1.bridge: a sim:// bridge needs a port",
        ),
        (
            "contract_size: 100",
            "contract_size: -5",
            "f.yml: symbols.XAUUSD.contract_size: must be > 0",
        ),
        ("strategy: amd", "enabled: true", "f.yml: agents.agent_1.strategy: required key missing"),
        ("symbols:\n", "symbolz:\n", "f.yml: symbolz: unknown key"),
    ],
)
def test_bad_values_name_file_and_key_path(old: str, new: str, expected: str) -> None:
    assert old in GOOD
    found = problems(GOOD.replace(old, new, 1))
    assert any(p.startswith(expected) for p in found), found


def test_new_risk_keys_default_to_two_tick_intervals_ten_percent_and_tighten() -> None:
    risk = parse_config(GOOD, "f.yml").agents["agent_1"].risk
    assert (risk.max_quote_age_ms, risk.slippage_tolerance, risk.on_breach) == (
        None,
        0.10,
        "tighten",
    )


def test_new_risk_keys_parse_when_valid() -> None:
    extra = "max_positions: 1, max_quote_age_ms: 1, slippage_tolerance: 5%, on_breach: close"
    risk = parse_config(GOOD.replace("max_positions: 1", extra, 1), "f.yml").agents["agent_1"].risk
    assert (risk.max_quote_age_ms, risk.slippage_tolerance, risk.on_breach) == (1, 0.05, "close")


@pytest.mark.parametrize(
    ("new", "expected"),
    [
        ("max_quote_age_ms: 0", "agents.agent_1.risk.max_quote_age_ms: must be >= 1"),
        ("max_quote_age_ms: 1.5", "agents.agent_1.risk.max_quote_age_ms: expected int"),
        ("slippage_tolerance: -1%", "agents.agent_1.risk.slippage_tolerance: must be >= 0"),
        ("slippage_tolerance: 2", "agents.agent_1.risk.slippage_tolerance: must be <= 1"),
        ("on_breach: ignore", "agents.agent_1.risk.on_breach: invalid value 'ignore'"),
        ("on_breech: close", "agents.agent_1.risk.on_breech: unknown key"),
    ],
)
def test_new_risk_keys_report_bad_values_with_their_path(new: str, expected: str) -> None:
    found = problems(GOOD.replace("max_positions: 1", f"max_positions: 1, {new}", 1))
    assert any(p.startswith(f"f.yml: {expected}") for p in found), found


@pytest.mark.parametrize(
    ("tokens", "expected"),
    [
        ("[{name: 'jwt:x', role: read, secret_env: T}]", "auth.tokens[0].name: must match"),
        ("[{name: admin, role: read, secret_env: T}]", "auth.tokens[0].name: 'admin' is taken"),
        (
            "[{name: a, role: read, secret_env: T}, {name: a, role: trade, secret_env: U}]",
            "auth.tokens[1].name: 'a' is taken",
        ),
    ],
)
def test_token_names_are_unique_and_never_like_a_jwt_subject(tokens: str, expected: str) -> None:
    found = problems(GOOD + f"auth: {{tokens: {tokens}}}\n")
    assert any(p.startswith(f"f.yml: {expected}") for p in found), found


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        ("header_timeout: 0", "server.header_timeout: must be > 0"),
        ("idle_timeout: 0.5", "server.idle_timeout: expected int, got float"),
        ("max_concurrency: 0", "server.max_concurrency: must be >= 1"),
        ("shutdown_timeout: 0", "server.shutdown_timeout: must be >= 1"),
    ],
)
def test_server_timeouts_and_concurrency_are_validated(server: str, expected: str) -> None:
    assert f"f.yml: {expected}" in problems(GOOD + f"server: {{{server}}}\n")


def test_every_bad_section_is_reported_at_once() -> None:
    text = GOOD + "server: {port: 0}\npolling: {tick_interval: -1}\n"
    found = problems(text)
    assert "f.yml: server.port: must be >= 1" in found
    assert "f.yml: polling.tick_interval: must be > 0" in found


def test_invalid_yaml_names_the_line() -> None:
    assert problems("agents: [1,\n")[0].startswith("f.yml: line ")


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.yml")


def test_cli_check_prints_ok_for_the_shipped_file() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "hub.cli", "check", "--config", str(SHIPPED)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (out.returncode, out.stdout.strip()) == (0, "ok")


def test_cli_check_prints_one_line_per_problem_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "agents.yml"
    bad.write_text(GOOD.replace("max_positions: 1", "max_positions: 0") + "extra: 1\n")
    out = subprocess.run(
        [sys.executable, "-m", "hub.cli", "check", "--config", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 1
    assert out.stderr.splitlines() == [
        f"{bad}: agents.agent_1.risk.max_positions: must be >= 1",
        f"{bad}: extra: unknown key",
    ]


def test_every_problem_of_one_agent_is_reported_at_once() -> None:
    """An unknown key and a bad value in the same section: both lines."""
    text = GOOD.replace("max_positions: 1", "max_positions: 0, max_risk: 2%")
    text = text.replace("strategy: amd", "strategy: amd\n    leverage: none")
    found = problems(text)
    assert found == [
        "f.yml: agents.agent_1.leverage: expected int, got str",
        "f.yml: agents.agent_1.risk.max_positions: must be >= 1",
        "f.yml: agents.agent_1.risk.max_risk: unknown key",
    ]


def test_cross_checks_are_reported_with_the_bad_values() -> None:
    text = GOOD.replace("symbols: [XAUUSD]", "symbols: [EURUSD]") + "server: {port: 0}\n"
    found = problems(text)
    assert "f.yml: agents.agent_1.symbols[0]: unknown symbol 'EURUSD'" in " ".join(found)
    assert "f.yml: server.port: must be >= 1" in found


def test_every_bad_token_entry_is_reported() -> None:
    text = GOOD + textwrap.dedent(
        """
        auth:
          tokens:
            - {name: a, role: boss, secret_env: A}
            - {name: b, role: read, secret_env: B, extra: 1}
        """
    )
    found = problems(text)
    assert "f.yml: auth.tokens[0].role: invalid value 'boss'" in found
    assert "f.yml: auth.tokens[1].extra: unknown key" in found


def test_cli_run_prints_the_same_lines_as_check(tmp_path: Path) -> None:
    bad = tmp_path / "agents.yml"
    bad.write_text(GOOD.replace("max_positions: 1", "max_positions: 0, max_risk: 2%"))
    runs = [
        subprocess.run(
            [sys.executable, "-m", "hub.cli", command, "--config", str(bad)],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        for command in ("check", "run")
    ]
    assert [r.returncode for r in runs] == [1, 1]
    assert runs[0].stderr.splitlines() == [
        f"{bad}: agents.agent_1.risk.max_positions: must be >= 1",
        f"{bad}: agents.agent_1.risk.max_risk: unknown key",
    ]
    assert runs[1].stderr == runs[0].stderr


def test_notification_targets_parse_with_defaults() -> None:
    cfg = parse_config(
        GOOD
        + "notifications:\n"
        + "  - {name: ops, url: 'http://127.0.0.1:9/hook', events: [filled, halted],"
        + " secret_env: OPS_SECRET}\n"
        + "  - {name: tg, type: telegram, events: ['*'], token_env: TG_TOKEN,"
        + " chat_id_env: TG_CHAT, agents: [agent_1]}\n",
        "f.yml",
    )
    ops, tg = cfg.notifications
    assert (ops.type, ops.events, ops.retry_initial, ops.retry_max) == (
        "webhook",
        ["filled", "halted"],
        1.0,
        300.0,
    )
    assert (tg.api_base, tg.agents) == ("https://api.telegram.org", ["agent_1"])


HOOK = "name: a, url: 'http://h/x', secret_env: S"
TG = "name: a, type: telegram, events: [filled], token_env: T"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (f"{{{HOOK}, events: [filed]}}", "events[0]: invalid value 'filed'"),
        (f"{{{HOOK}, events: []}}", "events: length must be >= 1"),
        ("{name: a, events: [filled], secret_env: S}", "url: required for a webhook target"),
        ("{name: a, url: 'http://h/x', events: [filled]}", "secret_env: required for a webhook"),
        ("{name: a, url: 'ftp://h/x', events: [filled], secret_env: S}", "url: must be an http"),
        ("{name: a, url: 'http://h', events: [filled], secret_env: 'no good'}", "secret_env: must"),
        (f"{{{TG}}}", "chat_id_env: required for a telegram"),
        (f"{{{TG}, chat_id_env: C, url: 'http://h'}}", "url: not for a telegram"),
        ("{name: a, type: sms, events: [filled]}", "type: invalid value 'sms'"),
        (
            f"{{{HOOK}, events: [filled], retry_initial: 10, retry_max: 5}}",
            "retry_initial: must be <= retry_max (5)",
        ),
        (f"{{{HOOK}, events: [filled], agents: [agent_9]}}", "agents: unknown agent 'agent_9'"),
        (f"{{{HOOK}, events: [filled], colour: red}}", "colour: unknown key"),
    ],
)
def test_bad_notification_targets_name_the_key(target: str, expected: str) -> None:
    found = problems(GOOD + f"notifications: [{target}]\n")
    assert any(p.startswith(f"f.yml: notifications[0].{expected}") for p in found), found


def test_notification_target_names_are_unique() -> None:
    target = "{name: a, url: 'http://h/x', events: [filled], secret_env: S}"
    found = problems(GOOD + f"notifications: [{target}, {target}]\n")
    assert "f.yml: notifications[1].name: 'a' is taken (each target needs its own name)" in found
