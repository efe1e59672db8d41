"""The emergency stop (kill switch): one flag that survives a restart, and its control.

:class:`EmergencyControl` stops and resumes trading. A stop is in force (and saved)
before the reply; orders already past their checks finish first (the stop takes every
agent's command lock before it announces and, when asked, closes every position).
With several instances the saved state is shared (Redis, plus a copy on disk) and
re-read periodically; a lost state fails safe, as stopped. Only admins resume.

The state is stored as a small JSON file written atomically (temp file, fsync, rename),
so a crash mid-write leaves the previous state.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

import msgspec

from channels.clock import now_ms
from channels.names import SYSTEM
from hub.errors import HubError
from hub.publisher import Publisher
from hub.trading._files import read_json, write_json
from hub.trading.journal import Journal

__all__ = ["EmergencyControl", "EmergencyFile", "EmergencyState", "EmergencyStore"]

log = logging.getLogger("mt4hub.trading")


class EmergencyState(msgspec.Struct, frozen=True, kw_only=True):
    stopped: bool = False
    reason: str | None = None
    by: str | None = None
    since: int | None = None  # epoch ms of the last change


class EmergencyFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> EmergencyState | None:
        """The saved state, or None when nothing was ever saved."""
        try:
            state: EmergencyState | None = read_json(self.path, EmergencyState)
        except (msgspec.DecodeError, msgspec.ValidationError):
            # A corrupt kill-switch file must fail safe: treat it as stopped.
            return EmergencyState(stopped=True, reason=f"unreadable state file {self.path}")
        return state

    def save(self, state: EmergencyState) -> None:
        write_json(self.path, state)


class EmergencyStore(Protocol):
    """Where the state is kept and how every agent's commands are held (coordination)."""

    async def load_emergency(self) -> EmergencyState | None: ...

    async def save_emergency(self, state: EmergencyState) -> None: ...

    def lock(self, agent_id: str) -> contextlib.AbstractAsyncContextManager[None]: ...


CloseAll = Callable[[str, str], Awaitable[dict[str, Any]]]  # (agent_id, by), lock held


class EmergencyControl:
    def __init__(
        self,
        store: EmergencyStore,
        publisher: Publisher,
        journal: Journal,
        agent_ids: Iterable[str],
        *,
        stopped_by_config: bool,
    ) -> None:
        self.store = store
        self.publisher = publisher
        self.journal = journal
        self.agent_ids = list(agent_ids)
        self.stopped_by_config = stopped_by_config
        self.state = EmergencyState()

    @property
    def stopped(self) -> bool:
        return self.state.stopped

    async def start(self) -> None:
        """Load the state: saved state wins; else ``emergency_stop_all`` from config.

        The state is then always saved, so that later its absence means it was lost."""
        saved = await self.store.load_emergency() or await self.store.load_emergency()
        if saved is None:  # (read twice: the first read may have restored a lost copy)
            saved = EmergencyState()
            if self.stopped_by_config:
                saved = EmergencyState(
                    stopped=True, reason="emergency_stop_all in config", by="config"
                )
            await self.store.save_emergency(saved)
        self.state = saved
        if saved.stopped:
            log.warning("emergency_stop_active reason=%r by=%s", saved.reason, saved.by)

    async def refresh(self) -> None:
        """With other instances: pick up a stop or resume made elsewhere (periodically).

        A missing state was lost (Redis restarted without persistence and no instance has
        restored it from its copy yet): fail safe, as stopped, until one does."""
        self.state = await self.store.load_emergency() or EmergencyState(
            stopped=True, reason="emergency state lost with Redis; restoring", by="hub"
        )

    async def stop(
        self, *, reason: str | None, close_positions: bool, by: str, close_all: CloseAll
    ) -> dict[str, Any]:
        self.state = EmergencyState(stopped=True, reason=reason, by=by, since=now_ms())
        await self.store.save_emergency(self.state)  # in force (and durable) before a reply
        log.warning(
            "emergency_stop by=%s reason=%r close_positions=%s", by, reason, close_positions
        )
        async with self.all_locks():  # orders already past their checks finish first
            await self.publisher.event(
                SYSTEM,
                {
                    "event": "emergency_stop",
                    "reason": reason,
                    "by": by,
                    "close_positions": close_positions,
                    "ts": self.state.since,
                },
            )
            self.journal.log(
                None,
                "emergency_stop",
                f"emergency stop by {by}: {reason or 'no reason'}",
                {"close_positions": close_positions},
            )
            closes: dict[str, Any] = {}
            if close_positions:
                for agent_id in self.agent_ids:
                    try:
                        closes[agent_id] = await close_all(agent_id, by)
                    except HubError as exc:
                        closes[agent_id] = {"agent_id": agent_id, "error": exc.body()["error"]}
        return {
            "emergency_stop": True,
            "reason": reason,
            "since": self.state.since,
            "by": by,
            "closed": closes,
        }

    async def resume(self, *, by: str) -> dict[str, Any]:
        was = self.state.stopped
        self.state = EmergencyState(stopped=False, by=by, since=now_ms())
        await self.store.save_emergency(self.state)
        log.warning("emergency_resume by=%s", by)
        await self.publisher.event(SYSTEM, {"event": "resume", "by": by, "ts": self.state.since})
        self.journal.log(None, "emergency_resume", f"trading resumed by {by}", {"was_stopped": was})
        return {"emergency_stop": False, "was_stopped": was, "by": by}

    @contextlib.asynccontextmanager
    async def all_locks(self) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            for agent_id in self.agent_ids:
                await stack.enter_async_context(self.store.lock(agent_id))
            yield
