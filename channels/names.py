"""Channel names: the only place they are built and parsed (listed in ``docs/protocol.md``).

| channel | kind |
|---|---|
| ``agent:{id}:ticks`` | state, one value per symbol |
| ``agent:{id}:account`` / ``positions`` / ``status`` | state |
| ``agent:{id}:orders`` | event |
| ``agent:{id}:candles`` | state, one value per symbol and timeframe |
| ``summary`` | state |
| ``signals`` / ``system`` | event |

A subscription may be a *pattern*: ``*`` stands for exactly one ``:``-separated
segment (``agent:*:account``, ``agent:agent_1:*``). A channel is matched by at most
``2 ** segments`` names (:func:`subscriptions_for`), so finding its subscribers is a few
dictionary lookups however many patterns exist.

A reader limited to some agents (:func:`refusal`) receives its agents' channels and
``system``, never the cross-agent ``summary`` and ``signals``.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Collection
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
    "readable",
    "refusal",
    "subscriptions_for",
    "validate",
]

AgentKind = Literal["ticks", "account", "positions", "status", "orders", "candles"]
AGENT_KINDS: tuple[str, ...] = ("ticks", "account", "positions", "status", "orders", "candles")
SUMMARY = "summary"
SIGNALS = "signals"
SYSTEM = "system"

_GLOBAL = frozenset({SUMMARY, SIGNALS, SYSTEM})
_CROSS_AGENT = frozenset({SUMMARY, SIGNALS})  # every agent's data in one stream
_STATE_KINDS = frozenset({"ticks", "account", "positions", "status", "candles"})
_AGENT_ID = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_WILD = "*"


@functools.lru_cache(maxsize=4096)
def agent_channel(agent_id: str, kind: AgentKind) -> str:
    """The channel ``agent:{agent_id}:{kind}``; raises :class:`InvalidChannel` for a bad id.

    Cached (at most 4096 names): every publication of a channel shares one string, rather
    than a copy of it per publication kept in the channel's history."""
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


def subscriptions_for(channel: str) -> list[str]:
    """Every name that matches ``channel``: itself and each form with segments as ``*``
    (``agent:a:ticks`` → ``agent:a:ticks``, ``agent:a:*``, ``agent:*:ticks``, … ``*:*:*``)."""
    parts = channel.split(":")
    choices = [(part, _WILD) for part in parts]
    return [":".join(form) for form in itertools.product(*choices)]


def refusal(name: str, agents: Collection[str] | None) -> str | None:
    """Why a reader limited to ``agents`` (None: every agent) may not receive ``name``, or
    None when it may. For a pattern: whether it may subscribe at all (what it then
    receives is checked channel by channel, so ``*`` brings a limited reader ``system``
    only)."""
    if agents is None:
        return None
    if name in _CROSS_AGENT:
        return f"{name!r} carries every agent's data; a token limited to agents may not read it"
    parts = name.split(":")
    if len(parts) == 3 and parts[1] != _WILD and parts[1] not in agents:
        return f"a token limited to agents may not read {parts[1]!r}"
    return None


def readable(name: str, agents: Collection[str] | None) -> bool:
    """True when a reader limited to ``agents`` (None: every agent) may receive ``name``."""
    return refusal(name, agents) is None


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
