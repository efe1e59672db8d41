"""The child side of :mod:`bench._proc`: read JSON commands on stdin, answer on stdout."""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import sys
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["Handler", "raise_fd_limit", "serve_commands"]

log = logging.getLogger("bench")

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


def raise_fd_limit() -> int:
    """Raise the open-files soft limit to the hard limit; returns the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def _reply(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def serve_commands(ready: dict[str, Any], handle: Handler) -> None:
    """Print ``ready``, then answer each command line until stdin closes or ``quit``."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    _reply({"ready": True, **ready})
    while line := await reader.readline():
        command = json.loads(line)
        if command.get("cmd") == "quit":
            _reply({"ok": True})
            return
        try:
            answer = await handle(command)
        except Exception as exc:  # answer the parent with the error; it decides
            log.exception("command %r failed", command)
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        _reply(answer)
