"""Hub configurations for the benchmarks, written as YAML files like a user's."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from pathlib import Path

__all__ = ["closed_port", "fanout_config", "poller_config", "trade_config", "write"]

_SYMBOLS = """\
symbols:
  XAUUSD: {contract_size: 100, digits: 2}
  EURUSD: {contract_size: 100000, digits: 5}
  GBPUSD: {contract_size: 100000, digits: 5}
  USDJPY: {contract_size: 100000, digits: 3, quote_currency: JPY}
"""


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def fanout_config() -> str:
    """One agent whose bridge refuses connections: no polling load, only injected ticks."""
    return (
        "server: {max_connections_per_token: 20000}  # every load connection shares one token\n"
        + _SYMBOLS
        + f"""\
agents:
  agent_1:
    name: Bench
    strategy: bench
    bridge: http://127.0.0.1:{closed_port()}
    symbols: [XAUUSD, EURUSD, GBPUSD, USDJPY]
    risk: {{max_risk_per_trade: 1%, max_daily_loss: 5%, max_positions: 1}}
"""
    )


def trade_config(sim_port: int) -> str:
    """One agent on an in-process simulator, with room for many positions."""
    return (
        "server: {command_rate: 1000}  # measure the round trip, not the rate limit\n"
        + _SYMBOLS
        + f"""\
agents:
  agent_1:
    name: Bench
    strategy: bench
    bridge: sim://127.0.0.1:{sim_port}
    symbols: [XAUUSD]
    initial_balance: 100000
    risk: {{max_risk_per_trade: 2%, max_daily_loss: 50%, max_positions: 100}}
global_risk: {{max_total_exposure: 50%}}
"""
    )


def poller_config(
    ports: Sequence[int], *, symbols: Sequence[str], tick_interval: float, account_interval: float
) -> str:
    """One agent per simulated bridge (``http://``: the simulators run elsewhere)."""
    lines = [
        f"polling: {{tick_interval: {tick_interval}, account_interval: {account_interval}}}",
        _SYMBOLS.rstrip(),
        "agents:",
    ]
    for i, port in enumerate(ports, 1):
        lines.append(
            f"  agent_{i}: {{name: Bench{i}, strategy: bench, bridge: http://127.0.0.1:{port},"
            f" symbols: [{', '.join(symbols)}], initial_balance: 10000,"
            " risk: {max_risk_per_trade: 1%, max_daily_loss: 5%, max_positions: 3}}"
        )
    return "\n".join(lines) + "\n"


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text)
    return path
