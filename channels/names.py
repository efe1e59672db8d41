"""Channel names: the only place they are built and parsed (listed in ``docs/protocol.md``).

| channel | kind |
|---|---|
| ``agent:{id}:ticks`` | state, one value per symbol |
| ``agent:{id}:account`` / ``positions`` / ``status`` | state |
| ``agent:{id}:orders`` | event |
| ``summary`` | state |
| ``signals`` / ``system`` | event |

A subscription may be a *pattern*: ``*`` stands for exactly one ``:``-separated
segment (``agent:*:account``, ``agent:agent_1:*``).
"""

from __future__ import annotations

import re
from typing import Literal

from channels.errors import InvalidChannel

__all__ = [
    "AGENT_KINDS",
    "SIGNALS",
    "SUMMARY",
    "SYSTEM",
    "AgentKind",
    "agent_channel",
    "agent_of",
    "every_agent",
    "is_pattern",
    "is_state",
    "kind_of",
    "matches",
    "validate",
]

AgentKind = Literal["ticks", "account", "positions", "status", "orders"]
AGENT_KINDS: tuple[str, ...] = ("ticks", "account", "positions", "status", "orders")
SUMMARY = "summary"
SIGNALS = "signals"
SYSTEM = "system"

_GLOBAL = frozenset({SUMMARY, SIGNALS, SYSTEM})
_STATE_KINDS = frozenset({"ticks", "account", "positions", "status"})
_AGENT_ID = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_WILD = "*"


def agent_channel(agent_id: str, kind: AgentKind) -> str:
    """The channel ``agent:{agent_id}:{kind}``; raises :class:`InvalidChannel` for a bad id."""
    if not _AGENT_ID.fullmatch(agent_id):
        raise InvalidChannel(f"agent id {agent_id!r}: use 1-64 letters, digits, '_', '.' or '-'")
    if kind not in AGENT_KINDS:
        raise InvalidChannel(f"kind {kind!r}: must be one of {', '.join(AGENT_KINDS)}")
    return f"agent:{agent_id}:{kind}"


def every_agent(kind: AgentKind) -> str:
    """The pattern ``agent:*:{kind}``: that channel of every agent."""
    if kind not in AGENT_KINDS:
        raise InvalidChannel(f"kind {kind!r}: must be one of {', '.join(AGENT_KINDS)}")
    return f"agent:{_WILD}:{kind}"


def is_state(channel: str) -> bool:
    """True for state channels (they keep a last value), False for event channels."""
    if channel == SUMMARY:
        return True
    parts = channel.split(":")
    return len(parts) == 3 and parts[2] in _STATE_KINDS


def agent_of(channel: str) -> str | None:
    """The agent id of an ``agent:…`` channel (``*`` for a pattern on it), else None."""
    parts = channel.split(":")
    if len(parts) == 3 and parts[0] == "agent":
        return parts[1]
    return None


def kind_of(channel: str) -> str | None:
    """The kind of an ``agent:…`` channel (``ticks``, ``positions``…), else None."""
    parts = channel.split(":")
    if len(parts) == 3 and parts[0] == "agent":
        return parts[2]
    return None


def is_pattern(name: str) -> bool:
    """True when ``name`` holds a ``*`` segment."""
    return _WILD in name.split(":")


def matches(pattern: str, channel: str) -> bool:
    """True when ``channel`` matches ``pattern`` (``*`` matches exactly one segment)."""
    want = pattern.split(":")
    have = channel.split(":")
    if len(want) != len(have):
        return False
    return all(w in (_WILD, h) for w, h in zip(want, have, strict=True))


def validate(name: str) -> str:
    """Return ``name`` if it is a channel or a pattern that can match one, else raise."""
    parts = name.split(":")
    if len(parts) == 1 and (name in _GLOBAL or name == _WILD):
        return name
    if len(parts) == 3:
        prefix, agent, kind = parts
        if (
            prefix in ("agent", _WILD)
            and (agent == _WILD or _AGENT_ID.fullmatch(agent))
            and (kind == _WILD or kind in AGENT_KINDS)
        ):
            return name
    raise InvalidChannel(
        f"unknown channel {name!r}: expected agent:<id>:<{'|'.join(AGENT_KINDS)}>, "
        f"{SUMMARY}, {SIGNALS} or {SYSTEM} ('*' matches one segment)"
    )
