"""The emergency stop (kill switch): one flag that survives a restart.

Stored as a small JSON file written atomically (temp file, fsync, rename), so a crash
mid-write leaves the previous state. Only admins resume.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

__all__ = ["EmergencyFile", "EmergencyState"]


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
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            return msgspec.json.decode(raw, type=EmergencyState)
        except (msgspec.DecodeError, msgspec.ValidationError):
            # A corrupt kill-switch file must fail safe: treat it as stopped.
            return EmergencyState(stopped=True, reason=f"unreadable state file {self.path}")

    def save(self, state: EmergencyState) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            fh.write(msgspec.json.encode(state))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
