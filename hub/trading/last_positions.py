"""Each agent's positions as last read, on disk, so that a restart does not forget them.

The global checks (total exposure, correlation) count every agent's open positions, an
offline agent's as last read. Kept only in memory, that last read was lost at a restart:
until the hub read an agent's bridge again (never, while it is down), the agent counted as
flat and other agents could trade past the limits. Every positions list the hub
publishes is written here (``positions.json`` in the data dir, one small file replaced
atomically, not fsynced: it is written at each change, on the publish path), and a
starting hub begins each agent from it. With Redis, other instances' agents come from
the channels' last values as before.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import msgspec

from channels import names
from hub.agents import Registry
from hub.bridge.models import PositionList
from hub.trading._files import read_json, write_json

__all__ = ["LastPositions"]

log = logging.getLogger("mt4hub.trading")


class LastPositions:
    """``positions.json``: agent id -> its positions list as last published here."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lists: dict[str, PositionList] = {}

    def restore(self, registry: Registry) -> None:
        """Start each agent of ``registry`` from its last positions (before any read)."""
        try:
            lists = read_json(self.path, dict[str, PositionList]) or {}
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            # Not fatal: each agent counts as flat until its first read, as on a first start.
            log.error("last_positions_unreadable path=%s error=%s", self.path, exc)
            return
        for agent_id, listed in lists.items():
            agent = registry.get(agent_id)
            if agent is not None:  # else: an agent no longer configured
                agent.positions, agent.unreadable = listed.positions, listed.unreadable
                self._lists[agent_id] = listed

    def observe(self, channel: str, key: str | None, data: Any) -> None:
        """A publisher observer: keeps each positions list published."""
        agent_id = names.agent_of(channel)
        if agent_id is None or not isinstance(data, PositionList):
            return
        self._lists[agent_id] = data
        try:
            write_json(self.path, self._lists, fsync=False)
        except OSError as exc:  # the next change writes it again
            log.error("last_positions_write_failed path=%s error=%r", self.path, exc)
