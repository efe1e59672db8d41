"""Bridge profiles: how one kind of EA Bridge speaks, declared in YAML (docs/bridges.md).

A profile maps each bridge operation (account, tick, positions, history, open, close,
partial_close, modify) to a method and path, the fields of its answers and bodies to the
hub's names, and says how the bridge wraps answers, names the two sides, writes times
and numbers. Built-in profiles live beside this module (``profiles/*.yml``): ``mt4hub``
(the hub's own protocol, the default), ``minimal`` (the original design's five endpoints)
and ``wrapped`` (``{success, message, data}`` answers, ``ORDER_TYPE_BUY``, ``volume``).

ProfileError   a profile that cannot be loaded; ``problems`` has one line per fault,
               each naming its key path (``operations.open.method: invalid value 'GOT'``).
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import timedelta, timezone, tzinfo
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import yaml
from msgspec import Meta

__all__ = [
    "BUILTIN",
    "OPERATIONS",
    "BridgeProfile",
    "Envelope",
    "Operation",
    "ProfileError",
    "TimeFormat",
    "builtin_names",
    "load_profile",
    "parse_profile",
    "server_tz",
]

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
# A field of the bridge: one dotted path (``data.free_margin``) or several tried in turn.
FieldPath = str | list[str]
OperationName = Literal[
    "account", "tick", "positions", "history", "open", "close", "partial_close", "modify"
]
OPERATIONS: tuple[str, ...] = (
    "account", "tick", "positions", "history", "open", "close", "partial_close", "modify",
)  # fmt: skip
# What a path template, a query value or a body may name, per operation.
_VALUES: dict[str, set[str]] = {
    "account": set(),
    "tick": {"symbol"},
    "positions": set(),
    "history": {"since"},
    "open": {"symbol", "action", "lots", "sl", "tp", "comment", "magic"},
    "close": {"ticket", "lots"},
    "partial_close": {"ticket", "lots"},
    "modify": {"ticket", "sl", "tp"},
}
_TEMPLATE = re.compile(r"\{([^{}]*)\}")
BUILTIN_DIR = Path(__file__).resolve().parent / "profiles"


class ProfileError(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _Base(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class Envelope(_Base, frozen=True, kw_only=True):
    """Where an answer keeps its payload and how it says it failed (paths; null: none)."""

    data: str | None = None  # the payload's path (``data``); null: the answer is the payload
    success: str | None = None  # a true/false flag; false is an error even with HTTP 200
    message: FieldPath = "error"  # the error message
    code: FieldPath | None = None  # the MT4 error code (130, 134, ...)


class TimeFormat(_Base, frozen=True, kw_only=True):
    """How the bridge writes times: what the hub sends (``since``) and how text is read.

    Numbers are read by size whatever the format (below 10^11 they are seconds)."""

    format: Literal["epoch_ms", "epoch_s", "text"] = "epoch_ms"
    text: str = "%Y.%m.%d %H:%M:%S"  # strftime pattern of ``text`` times
    timezone: str = "UTC"  # the trade server's zone for text times: IANA name or +02:00


class Operation(_Base, frozen=True, kw_only=True):
    """One bridge call: ``{symbol}``/``{ticket}`` in ``path`` and ``{name}`` in ``query``
    values are the hub's values; ``body`` and ``fields`` map hub names to bridge paths."""

    method: Method = "GET"
    path: Annotated[str, Meta(pattern=r"^/")]
    query: dict[str, str] = {}  # bridge parameter -> template (``{since}``)
    body: dict[str, str] = {}  # hub name -> bridge path, for values sent
    const: dict[str, Any] = {}  # bridge path -> fixed value, sent in every body
    fields: dict[str, FieldPath] = {}  # hub field -> bridge path(s), in answers
    rows: str | None = None  # where the rows are in a list answer; null: the payload itself


class Actions(_Base, frozen=True, kw_only=True):
    """What the bridge calls the two sides (sent, and accepted besides MT4's usual names)."""

    buy: str | int = "buy"
    sell: str | int = "sell"


class BridgeProfile(_Base, frozen=True, kw_only=True):
    name: Annotated[str, Meta(pattern=r"^[A-Za-z0-9_.\-]{1,64}$")]
    description: str = ""
    envelope: Envelope = Envelope()
    time: TimeFormat = TimeFormat()
    numbers_as_strings: bool = False  # send numbers as "2650.10" (always accepted in answers)
    actions: Actions = Actions()
    comment_max: Annotated[int, Meta(ge=0, le=255)] = 31  # what the hub puts in a comment
    account: Operation
    tick: Operation
    positions: Operation
    history: Operation | None = None
    open: Operation
    close: Operation | None = None
    partial_close: Operation | None = None
    modify: Operation | None = None

    def operation(self, name: str) -> Operation | None:
        op: Operation | None = getattr(self, name)
        return op

    @property
    def tag_in_magic(self) -> bool:
        """The order tag goes into a magic number (else the start of the comment)."""
        return "magic" in self.open.body


def builtin_names() -> list[str]:
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.yml"))


BUILTIN = "mt4hub"  # the default


def _cross_checks(raw: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    for name in OPERATIONS:
        op = raw.get(name)
        if not isinstance(op, dict):
            continue
        allowed = _VALUES[name]
        used = _TEMPLATE.findall(str(op.get("path", "")))
        query = op.get("query")
        if isinstance(query, dict):
            used += [v for t in query.values() for v in _TEMPLATE.findall(str(t))]
        for value in used:
            if value not in allowed:
                known = ", ".join(sorted(allowed)) or "none"
                problems.append(f"{name}: unknown value {{{value}}} (known here: {known})")
        body = op.get("body")
        if isinstance(body, dict):
            for key in body:
                if key not in allowed:
                    known = ", ".join(sorted(allowed)) or "none"
                    problems.append(f"{name}.body.{key}: unknown hub value (known here: {known})")
    tz = raw.get("time", {}).get("timezone") if isinstance(raw.get("time"), dict) else None
    if isinstance(tz, str):
        try:
            server_tz(tz)
        except ValueError as exc:
            problems.append(f"time.timezone: {exc}")
    return problems


def parse_profile(text: str, source: str = "profile") -> BridgeProfile:
    """A profile from YAML text, or :class:`ProfileError` with every problem at once."""
    from hub.config import _check  # the config's key-by-key checker; config imports us lazily

    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ProfileError([f"{source}: invalid YAML ({getattr(exc, 'problem', exc)})"]) from exc
    if not isinstance(raw, dict):
        raise ProfileError([f"{source}: the top level must be a mapping"])
    ops = raw.get("operations")
    flat = {k: v for k, v in raw.items() if k != "operations"}
    problems: list[str] = []
    if isinstance(ops, dict):
        flat.update(ops)
    elif ops is not None:
        problems.append("operations: must be a mapping of operation names")
    unknown_ops = [k for k in (ops or {}) if k not in OPERATIONS] if isinstance(ops, dict) else []
    for key in unknown_ops:
        problems.append(f"operations.{key}: unknown operation (known: {', '.join(OPERATIONS)})")
        flat.pop(key, None)
    found: list[str] = []
    _check(flat, BridgeProfile, "", found)
    found += _cross_checks(flat)
    for line in found:
        head = line.split(".", 1)[0].split(":", 1)[0]
        problems.append(f"operations.{line}" if head in OPERATIONS else line)
    if problems:
        raise ProfileError([f"{source}: {p}" for p in problems])
    profile: BridgeProfile = msgspec.convert(flat, BridgeProfile, strict=True)
    return profile


@lru_cache(maxsize=64)
def _load_file(path: str, mtime: float) -> BridgeProfile:
    return parse_profile(Path(path).read_text(encoding="utf-8"), path)


def resolve(name_or_path: str, base: Path | None = None) -> Path:
    """The file of a built-in name or of a path (relative to ``base``, the config's folder)."""
    if "/" not in name_or_path and not name_or_path.endswith((".yml", ".yaml")):
        return BUILTIN_DIR / f"{name_or_path}.yml"
    path = Path(name_or_path).expanduser()
    if not path.is_absolute() and base is not None:
        path = base / path
    return path


def load_profile(name_or_path: str = BUILTIN, base: Path | None = None) -> BridgeProfile:
    """A built-in profile by name, or a profile file by path."""
    path = resolve(name_or_path, base)
    if path.parent == BUILTIN_DIR and not path.exists():
        names = ", ".join(builtin_names())
        raise ProfileError(
            [f"unknown profile {name_or_path!r} (built-in: {names}; or a path to a .yml file)"]
        )
    try:
        mtime = path.stat().st_mtime
    except OSError as exc:
        raise ProfileError([f"{path}: cannot read ({exc.strerror or exc})"]) from None
    return _load_file(str(path), mtime)


_OFFSET = re.compile(r"^(?:UTC|GMT)?([+-])(\d{1,2})(?::?(\d{2}))?$")


def server_tz(name: str) -> tzinfo:
    """``UTC``, an IANA zone (``Europe/Athens``) or a fixed offset (``+02:00``)."""
    if m := _OFFSET.match(name.strip()):
        sign = -1 if m[1] == "-" else 1
        return timezone(sign * timedelta(hours=int(m[2]), minutes=int(m[3] or 0)))
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (an IANA name or +02:00)") from None
