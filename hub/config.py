"""Configuration: msgspec structs loaded from ``config/agents.yml``.

Every bad value or unknown key becomes a :class:`ConfigError` holding one line
per problem, each naming the file and the key path
(``config/agents.yml: agents.agent_1.risk.max_positions: must be >= 1``).

Fractions (risk limits) may be written as numbers (``0.01``) or percentages
(``"1%"``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import msgspec
import yaml
from msgspec import Meta

from channels.validation import describe

__all__ = [
    "AgentConfig",
    "AgentId",
    "AgentRisk",
    "AuthConfig",
    "ConfigError",
    "GlobalRisk",
    "HubConfig",
    "PollingConfig",
    "Role",
    "ServerConfig",
    "SymbolSpec",
    "TokenConfig",
    "default_config_path",
    "load_config",
    "parse_config",
]

Role = Literal["read", "trade", "admin"]
Seconds = Annotated[float, Meta(gt=0)]
Fraction = Annotated[float, Meta(ge=0, le=1)]
PositiveFraction = Annotated[float, Meta(gt=0, le=1)]
AgentId = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_\-]{1,64}$")]
SymbolName = Annotated[str, Meta(pattern=r"^[A-Z0-9._]{2,20}$")]
# No ':' so that no token is ever named like a JWT subject (``jwt:<sub>``).
TokenName = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_.@\-]{1,64}$")]

_PERCENT_KEYS = {
    "max_risk_per_trade",
    "max_daily_loss",
    "max_total_exposure",
}


class ConfigError(Exception):
    """A configuration file is invalid; ``problems`` has one line per fault."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _Base(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class ServerConfig(_Base, frozen=True, kw_only=True):
    host: str = "127.0.0.1"
    port: Annotated[int, Meta(ge=1, le=65535)] = 8090
    max_frame_bytes: Annotated[int, Meta(ge=1024)] = 65536
    history_size: Annotated[int, Meta(ge=1, le=1_000_000)] = 1000
    heartbeat: Seconds = 15.0
    send_queue: Annotated[int, Meta(ge=16)] = 1024
    batch_flush_ms: Annotated[float, Meta(ge=0, le=1000)] = 10.0
    command_rate: Annotated[float, Meta(gt=0)] = 20.0  # trading commands per second per token
    command_burst: Annotated[int, Meta(ge=1)] = 40
    max_subscriptions: Annotated[int, Meta(ge=1)] = 256  # per connection
    max_connections_per_token: Annotated[int, Meta(ge=1)] = 1000
    # uvicorn (hub/server.py): a request's head must arrive within header_timeout; a
    # keep-alive connection idle for idle_timeout is closed; past max_concurrency
    # connections or requests in progress the answer is 503; shutdown waits at most
    # shutdown_timeout for open streams.
    header_timeout: Seconds = 10.0
    idle_timeout: Annotated[int, Meta(ge=1, le=3600)] = 5
    max_concurrency: Annotated[int, Meta(ge=1)] = 10_000
    shutdown_timeout: Annotated[int, Meta(ge=1, le=600)] = 5


class PollingConfig(_Base, frozen=True, kw_only=True):
    tick_interval: Seconds = 0.25
    account_interval: Seconds = 1.0
    history_interval: Seconds = 5.0
    timeout: Seconds = 2.0
    trade_timeout: Seconds = 10.0
    backoff_initial: Seconds = 0.5
    backoff_max: Seconds = 10.0
    stale_after: Seconds = 60.0


class SymbolSpec(_Base, frozen=True, kw_only=True):
    contract_size: Annotated[float, Meta(gt=0)]
    digits: Annotated[int, Meta(ge=0, le=8)]
    lot_step: Annotated[float, Meta(gt=0)] = 0.01
    min_lots: Annotated[float, Meta(gt=0)] = 0.01
    max_lots: Annotated[float, Meta(gt=0)] = 100.0
    quote_currency: Annotated[str, Meta(pattern=r"^[A-Z]{3}$")] = "USD"
    base_currency: Annotated[str, Meta(pattern=r"^[A-Z]{3}$")] | None = None


class AgentRisk(_Base, frozen=True, kw_only=True):
    max_risk_per_trade: PositiveFraction
    max_daily_loss: PositiveFraction
    max_positions: Annotated[int, Meta(ge=1)]
    require_sl: bool = True
    min_confidence: Fraction = 0.0
    max_quote_age_ms: Annotated[int, Meta(ge=1)] | None = None  # None: two tick intervals
    slippage_tolerance: Fraction = 0.10
    on_breach: Literal["tighten", "close", "alert"] = "tighten"


class AgentConfig(_Base, frozen=True, kw_only=True):
    name: str
    strategy: str
    bridge: str
    enabled: bool = True
    symbols: Annotated[list[SymbolName], Meta(min_length=1)]
    risk: AgentRisk
    initial_balance: Annotated[float, Meta(gt=0)] = 10_000.0
    leverage: Annotated[int, Meta(ge=1)] = 100
    currency: Annotated[str, Meta(pattern=r"^[A-Z]{3}$")] = "USD"

    @property
    def is_simulated(self) -> bool:
        return self.bridge.startswith("sim://")

    @property
    def bridge_http_url(self) -> str:
        """The URL the hub talks to: ``sim://h:p`` is served over ``http://h:p``."""
        if self.is_simulated:
            return "http://" + self.bridge[len("sim://") :].rstrip("/")
        return self.bridge.rstrip("/")


class GlobalRisk(_Base, frozen=True, kw_only=True):
    emergency_stop_all: bool = False
    max_total_exposure: PositiveFraction = 0.10
    correlation_limit: Annotated[float, Meta(ge=0, le=1)] = 0.5
    correlation_window: Annotated[int, Meta(ge=10)] = 120


class TokenConfig(_Base, frozen=True, kw_only=True):
    name: TokenName
    role: Role
    secret_env: str
    agents: list[AgentId] | None = None


class AuthConfig(_Base, frozen=True, kw_only=True):
    tokens: list[TokenConfig] = []
    jwt_secret_env: str = "HUB_JWT_SECRET"
    allowed_origins: list[str] = []


class HubConfig(_Base, frozen=True, kw_only=True):
    server: ServerConfig = ServerConfig()
    polling: PollingConfig = PollingConfig()
    symbols: dict[SymbolName, SymbolSpec]
    agents: Annotated[dict[AgentId, AgentConfig], Meta(min_length=1)]
    global_risk: GlobalRisk = GlobalRisk()
    auth: AuthConfig = AuthConfig()

    def symbol(self, name: str) -> SymbolSpec:
        return self.symbols[name]


def _convert(raw: Any, typ: Any, path: str, problems: list[str]) -> Any:
    try:
        return msgspec.convert(raw, typ, strict=True)
    except msgspec.ValidationError as exc:
        problems.append(describe(exc, prefix=path, noun="key"))
        return None


def _normalise_percentages(node: Any) -> Any:
    """Turn ``"1%"`` into ``0.01`` for the risk-fraction keys (anywhere in the tree)."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key in _PERCENT_KEYS and isinstance(value, str) and value.strip().endswith("%"):
                # A bad number stays a string: msgspec then reports the key as not a float.
                with contextlib.suppress(ValueError):
                    value = float(value.strip()[:-1]) / 100.0
            out[key] = _normalise_percentages(value)
        return out
    if isinstance(node, list):
        return [_normalise_percentages(v) for v in node]
    return node


def _cross_checks(cfg: HubConfig) -> Iterator[str]:
    ports: dict[tuple[str, int], str] = {}
    for agent_id, agent in cfg.agents.items():
        for i, sym_name in enumerate(agent.symbols):
            if sym_name not in cfg.symbols:
                yield (
                    f"agents.{agent_id}.symbols[{i}]: unknown symbol {sym_name!r} "
                    "(add it under `symbols:` with its contract spec)"
                )
        if len(set(agent.symbols)) != len(agent.symbols):
            yield f"agents.{agent_id}.symbols: duplicate symbol"
        parts = urlsplit(agent.bridge)
        if parts.scheme not in ("http", "https", "sim") or not parts.hostname:
            yield f"agents.{agent_id}.bridge: must be a URL like http://host:port or sim://host:port"
            continue
        if parts.scheme == "sim" and not parts.port:
            yield f"agents.{agent_id}.bridge: a sim:// bridge needs a port (sim://127.0.0.1:8081)"
            continue
        key = (parts.hostname or "", parts.port or 80)
        if key in ports:
            yield f"agents.{agent_id}.bridge: same address as agents.{ports[key]}.bridge"
        ports[key] = agent_id
    for sym, spec in cfg.symbols.items():
        if spec.min_lots > spec.max_lots:
            yield f"symbols.{sym}.min_lots: must be <= max_lots ({spec.max_lots})"
        quote = spec.quote_currency
        if quote != "USD" and not sym.startswith("USD"):
            yield (
                f"symbols.{sym}.quote_currency: {quote} quotes need a USD{quote} symbol "
                "to convert risk to the account currency"
            )
    seen: set[str] = {"admin"}  # HUB_ADMIN_TOKEN's name
    for i, tok in enumerate(cfg.auth.tokens):
        if tok.name in seen:
            yield f"auth.tokens[{i}].name: {tok.name!r} is taken (each token needs its own name)"
        seen.add(tok.name)
        for scoped in tok.agents or []:
            if scoped not in cfg.agents:
                yield f"auth.tokens[{i}].agents: unknown agent {scoped!r}"


def parse_config(text: str, source: str = "config") -> HubConfig:
    """Parse YAML text into a :class:`HubConfig` or raise :class:`ConfigError`."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise ConfigError(
            [f"{source}: {where}invalid YAML ({getattr(exc, 'problem', exc)})"]
        ) from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError([f"{source}: the top level must be a mapping"])
    raw = _normalise_percentages(raw)
    problems: list[str] = []
    fields = {f.name: f for f in msgspec.structs.fields(HubConfig)}
    parts: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in fields:
            problems.append(f"{key}: unknown key")
        elif key in ("agents", "symbols"):
            # Per entry, so the path names the agent or symbol and every entry is checked.
            if not isinstance(value, dict):
                problems.append(f"{key}: must be a mapping")
                continue
            item_type = AgentConfig if key == "agents" else SymbolSpec
            key_type = AgentId if key == "agents" else SymbolName
            entries = {}
            for name, item in value.items():
                _convert(name, key_type, f"{key}.{name}", problems)
                entries[name] = _convert(item, item_type, f"{key}.{name}", problems)
            parts[key] = entries
        else:
            parts[key] = _convert(value, fields[key].type, key, problems)
    for name in ("symbols", "agents"):
        if name not in raw:
            problems.append(f"{name}: required key missing")
    if not problems and not raw["agents"]:
        problems.append("agents: at least one agent is required")
    if problems:
        raise ConfigError([f"{source}: {p}" for p in problems])
    cfg = msgspec.convert(parts, HubConfig, from_attributes=True)
    problems.extend(_cross_checks(cfg))
    if problems:
        raise ConfigError([f"{source}: {p}" for p in problems])
    return cfg


def default_config_path() -> Path:
    """``$HUB_CONFIG``, else ``config/agents.yml`` here, else the copy shipped in the wheel."""
    env = os.environ.get("HUB_CONFIG")
    if env:
        return Path(env)
    local = Path("config/agents.yml")
    if local.exists():
        return local
    return shipped_path("config") / "agents.yml"


def shipped_path(name: str) -> Path:
    """A folder shipped with the package (``config`` or ``web``).

    In a wheel they live under ``hub/_shipped/``; in a source checkout beside ``hub/``.
    """
    shipped = Path(str(resources.files("hub"))) / "_shipped" / name
    if shipped.exists():
        return shipped
    return Path(__file__).resolve().parent.parent / name


def load_config(path: str | Path | None = None) -> HubConfig:
    p = Path(path) if path is not None else default_config_path()
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{p}: cannot read ({exc.strerror or exc})"]) from exc
    return parse_config(text, str(p))
