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
from typing import Annotated, Any, Literal, get_args, get_origin
from urllib.parse import urlsplit

import msgspec
import yaml
from msgspec import Meta

from channels.validation import describe, join_path

__all__ = [
    "NOTIFY_EVENTS",
    "AgentConfig",
    "AgentId",
    "AgentRisk",
    "AuthConfig",
    "ConfigError",
    "GlobalRisk",
    "HubConfig",
    "NotifyTarget",
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
    "slippage_tolerance",
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
    # How old a quote may be when a trade is checked; None: two ``polling.tick_interval``.
    max_quote_age_ms: Annotated[int, Meta(ge=1)] | None = None
    # After a fill, risk above the per-trade limit by more than this fraction is a breach ...
    slippage_tolerance: Fraction = 0.10
    # ... and this is what the hub does about it (docs/risk.md, "After a fill").
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
    # How the bridge speaks (docs/bridges.md): a built-in profile name or a YAML file's path
    # (relative to the config file).
    bridge_profile: str = "mt4hub"
    # The broker's names: XAUUSD is XAUUSD.m at the bridge (suffix), or one name each.
    symbol_suffix: Annotated[str, Meta(max_length=12)] = ""
    bridge_symbols: dict[SymbolName, Annotated[str, Meta(min_length=1, max_length=32)]] = {}
    server_timezone: str | None = None  # the trade server's zone; default: the profile's

    @property
    def symbol_names(self) -> dict[str, str]:
        """Each symbol's name at the bridge."""
        return {s: self.bridge_symbols.get(s, s + self.symbol_suffix) for s in self.symbols}

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


# What a notification target may ask for (docs/notifications.md); "*" is every one.
NotifyEvent = Literal[
    "accepted",
    "rejected",
    "filled",
    "closed",
    "modified",
    "failed",
    "risk_breach",
    "halted",
    "halt_lifted",
    "agent_offline",
    "agent_online",
    "emergency_stop",
    "resume",
    "*",
]
NOTIFY_EVENTS = tuple(e for e in get_args(NotifyEvent) if e != "*")
EnvName = Annotated[str, Meta(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class NotifyTarget(_Base, frozen=True, kw_only=True):
    """One place notifications go: a signed JSON webhook, or a Telegram chat."""

    name: TokenName
    type: Literal["webhook", "telegram"] = "webhook"
    events: Annotated[list[NotifyEvent], Meta(min_length=1)]
    agents: list[AgentId] | None = None  # only these agents' events (global ones always)
    url: str | None = None  # webhook: where to POST
    secret_env: EnvName | None = None  # webhook: the env var holding the HMAC key
    token_env: EnvName | None = None  # telegram: the env var holding the bot token
    chat_id_env: EnvName | None = None  # telegram: the env var holding the chat id
    api_base: str = "https://api.telegram.org"  # telegram: the Bot API's address
    timeout: Seconds = 10.0  # one delivery attempt
    retry_initial: Seconds = 1.0  # first retry delay; doubles per failed attempt ...
    retry_max: Seconds = 300.0  # ... up to this


class HubConfig(_Base, frozen=True, kw_only=True):
    server: ServerConfig = ServerConfig()
    polling: PollingConfig = PollingConfig()
    symbols: dict[SymbolName, SymbolSpec]
    agents: Annotated[dict[AgentId, AgentConfig], Meta(min_length=1)]
    global_risk: GlobalRisk = GlobalRisk()
    auth: AuthConfig = AuthConfig()
    notifications: list[NotifyTarget] = []

    def symbol(self, name: str) -> SymbolSpec:
        return self.symbols[name]


def _convert(raw: Any, typ: Any, path: str, problems: list[str]) -> Any:
    try:
        return msgspec.convert(raw, typ, strict=True)
    except msgspec.ValidationError as exc:
        problems.append(describe(exc, prefix=path, noun="key"))
        return None


def _struct_of(typ: Any) -> Any:
    """The Struct class ``typ`` is (through ``Annotated``), else None."""
    if get_origin(typ) is Annotated:
        typ = get_args(typ)[0]
    return typ if isinstance(typ, type) and issubclass(typ, msgspec.Struct) else None


def _check(raw: Any, typ: Any, path: str, problems: list[str]) -> None:
    """Every problem of ``raw`` read as ``typ``: msgspec stops at the first one of a
    struct, so structs (and lists or mappings of structs) are walked key by key and
    only the leaves are converted."""
    base = get_args(typ)[0] if get_origin(typ) is Annotated else typ
    struct, origin, args = _struct_of(base), get_origin(base), get_args(base)
    if struct is not None and isinstance(raw, dict):
        fields = {f.encode_name: f for f in msgspec.structs.fields(struct)}
        for key, value in raw.items():
            field = fields.get(key)
            if field is None:
                problems.append(f"{join_path(path, str(key))}: unknown key")
            else:
                _check(value, field.type, join_path(path, key), problems)
        for field in fields.values():
            if field.required and field.encode_name not in raw:
                problems.append(f"{join_path(path, field.encode_name)}: required key missing")
    elif origin is list and _struct_of(args[0]) and isinstance(raw, list):
        for i, item in enumerate(raw):
            _check(item, args[0], f"{path}[{i}]", problems)
    elif origin is dict and _struct_of(args[1]) and isinstance(raw, dict):
        for name, item in raw.items():
            _convert(name, args[0], join_path(path, str(name)), problems)
            _check(item, args[1], join_path(path, str(name)), problems)
    else:
        _convert(raw, typ, path, problems)


def _valid(raw: Any, typ: Any) -> Any:
    """``raw`` as ``typ``, or None when it has a problem (already reported by _check)."""
    try:
        return msgspec.convert(raw, typ, strict=True)
    except msgspec.ValidationError:
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


def _entries(raw: dict[str, Any], key: str, typ: Any) -> dict[str, Any]:
    """The entries of the mapping ``raw[key]`` that are valid as ``typ``."""
    section = raw.get(key)
    if not isinstance(section, dict):
        return {}
    valid = {name: _valid(item, typ) for name, item in section.items()}
    return {name: item for name, item in valid.items() if item is not None}


def _profile_problems(agent_id: str, agent: AgentConfig, base: Path | None) -> Iterator[str]:
    from hub.bridge.profile import ProfileError, load_profile, server_tz

    where = f"agents.{agent_id}"
    try:
        load_profile(agent.bridge_profile, base)
    except ProfileError as exc:
        for problem in exc.problems:
            yield f"{where}.bridge_profile: {problem}"
    for sym in agent.bridge_symbols:
        if sym not in agent.symbols:
            yield f"{where}.bridge_symbols.{sym}: not one of the agent's symbols"
    if agent.server_timezone is not None:
        try:
            server_tz(agent.server_timezone)
        except ValueError as exc:
            yield f"{where}.server_timezone: {exc}"


def _cross_checks(raw: dict[str, Any], base: Path | None = None) -> Iterator[str]:
    """Rules between keys, over every entry that is valid by itself (a bad entry was
    reported already; the rest are still checked, so one run shows every problem)."""
    # Names are checked against a section only when it is a mapping (else that was reported).
    symbol_names = set(raw["symbols"]) if isinstance(raw.get("symbols"), dict) else None
    agent_names = set(raw["agents"]) if isinstance(raw.get("agents"), dict) else None
    symbols: dict[str, SymbolSpec] = _entries(raw, "symbols", SymbolSpec)
    agents: dict[str, AgentConfig] = _entries(raw, "agents", AgentConfig)
    ports: dict[tuple[str, int], str] = {}
    for agent_id, agent in agents.items():
        for i, sym_name in enumerate(agent.symbols):
            if symbol_names is not None and sym_name not in symbol_names:
                yield (
                    f"agents.{agent_id}.symbols[{i}]: unknown symbol {sym_name!r} "
                    "(add it under `symbols:` with its contract spec)"
                )
        if len(set(agent.symbols)) != len(agent.symbols):
            yield f"agents.{agent_id}.symbols: duplicate symbol"
        yield from _profile_problems(agent_id, agent, base)
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
    for sym, spec in symbols.items():
        if spec.min_lots > spec.max_lots:
            yield f"symbols.{sym}.min_lots: must be <= max_lots ({spec.max_lots})"
        quote = spec.quote_currency
        if quote != "USD" and not sym.startswith("USD"):
            yield (
                f"symbols.{sym}.quote_currency: {quote} quotes need a USD{quote} symbol "
                "to convert risk to the account currency"
            )
    auth = raw.get("auth")
    tokens = auth.get("tokens") if isinstance(auth, dict) else None
    seen: set[str] = {"admin"}  # HUB_ADMIN_TOKEN's name
    for i, item in enumerate(tokens if isinstance(tokens, list) else []):
        tok = _valid(item, TokenConfig)
        if tok is None:
            continue
        if tok.name in seen:
            yield f"auth.tokens[{i}].name: {tok.name!r} is taken (each token needs its own name)"
        seen.add(tok.name)
        for scoped in tok.agents or []:
            if agent_names is not None and scoped not in agent_names:
                yield f"auth.tokens[{i}].agents: unknown agent {scoped!r}"
    yield from _notify_checks(raw, agent_names)


def _notify_checks(raw: dict[str, Any], agent_names: set[str] | None) -> Iterator[str]:
    targets = raw.get("notifications")
    seen: set[str] = set()
    for i, item in enumerate(targets if isinstance(targets, list) else []):
        target = _valid(item, NotifyTarget)
        if target is None:
            continue
        where = f"notifications[{i}]"
        if target.name in seen:
            yield f"{where}.name: {target.name!r} is taken (each target needs its own name)"
        seen.add(target.name)
        if target.type == "webhook":
            if target.url is None:
                yield f"{where}.url: required for a webhook target"
            if target.secret_env is None:
                yield f"{where}.secret_env: required for a webhook target (the HMAC key's env var)"
            for key in ("token_env", "chat_id_env"):
                if getattr(target, key) is not None:
                    yield f"{where}.{key}: only for a telegram target"
        else:
            for key in ("token_env", "chat_id_env"):
                if getattr(target, key) is None:
                    yield f"{where}.{key}: required for a telegram target"
            if target.url is not None:
                yield f"{where}.url: not for a telegram target (it posts to api_base)"
        for key in ("url", "api_base"):
            value = getattr(target, key)
            parts = urlsplit(value) if value is not None else None
            if parts is not None and (parts.scheme not in ("http", "https") or not parts.hostname):
                yield f"{where}.{key}: must be an http:// or https:// URL, got {value!r}"
        if target.retry_initial > target.retry_max:
            yield f"{where}.retry_initial: must be <= retry_max ({target.retry_max:g})"
        for scoped in target.agents or []:
            if agent_names is not None and scoped not in agent_names:
                yield f"{where}.agents: unknown agent {scoped!r}"


def parse_config(text: str, source: str = "config", base: Path | None = None) -> HubConfig:
    """Parse YAML text into a :class:`HubConfig` or raise :class:`ConfigError` listing
    every problem of the text at once. Profile paths are relative to ``base`` (the config
    file's folder; default: the working directory) and come back absolute."""
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
    _check(raw, HubConfig, "", problems)
    if raw.get("agents") == {}:
        problems.append("agents: at least one agent is required")
    problems.extend(_cross_checks(raw, base))
    if problems:
        raise ConfigError([f"{source}: {p}" for p in problems])
    cfg: HubConfig = msgspec.convert(raw, HubConfig, strict=True)
    return _absolute_profiles(cfg, base)


def _absolute_profiles(cfg: HubConfig, base: Path | None) -> HubConfig:
    from hub.bridge.profile import resolve

    agents = {
        agent_id: msgspec.structs.replace(
            agent, bridge_profile=str(resolve(agent.bridge_profile, base).resolve())
        )
        if "/" in agent.bridge_profile or agent.bridge_profile.endswith((".yml", ".yaml"))
        else agent
        for agent_id, agent in cfg.agents.items()
    }
    return msgspec.structs.replace(cfg, agents=agents)


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
    return parse_config(text, str(p), p.parent)
