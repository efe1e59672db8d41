"""Small state files written atomically (temp file, fsync, rename): a crash mid-write
leaves the previous content."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import msgspec

__all__ = ["read_json", "write_json"]


def read_json(path: Path, typ: Any) -> Any:
    """The decoded content, None when the file does not exist; raises msgspec errors."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    return msgspec.json.decode(raw, type=typ)


def write_json(path: Path, value: Any, *, fsync: bool = True) -> None:
    """Replace ``path`` with ``value``; without ``fsync`` a process crash still leaves one
    whole version, a machine crash may leave an older one (or none)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        fh.write(msgspec.json.encode(value))
        if fsync:
            fh.flush()
            os.fsync(fh.fileno())
    os.replace(tmp, path)
