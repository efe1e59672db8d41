"""The child side of :mod:`bench._proc`: read JSON commands on stdin, answer on stdout."""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["Handler", "LoopProbe", "raise_fd_limit", "serve_commands"]

log = logging.getLogger("bench")

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class LoopProbe:
    """Per-iteration timing of this process's event loop, sampled by a 1 ms timer.

    ``late``: how late the timer ran, in wall time: what a message that arrives at a
    random moment waits before the loop gets to it (a long iteration of our own, or this
    process not being scheduled at all). ``busy``: the CPU this thread used between two
    wake-ups: how long our own iterations ran, which preemption by other processes does
    not inflate. A late wake-up without the CPU to match is the machine, not the code.
    """

    _EVERY = 0.001

    def __init__(self) -> None:
        self.late_ms: list[float] = []
        self.busy_ms: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        cpu = time.thread_time()
        while True:
            due = loop.time() + self._EVERY
            await asyncio.sleep(self._EVERY)
            now_cpu = time.thread_time()
            self.late_ms.append((loop.time() - due) * 1000)
            self.busy_ms.append((now_cpu - cpu) * 1000)
            cpu = now_cpu

    def start(self) -> None:
        self.stop()
        self.late_ms, self.busy_ms = [], []
        self._task = asyncio.create_task(self._run())

    def stop(self) -> dict[str, float]:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        late, busy = sorted(self.late_ms) or [0.0], sorted(self.busy_ms) or [0.0]

        def p99(values: list[float]) -> float:
            return values[min(len(values) - 1, int(len(values) * 0.99))]

        return {
            "loop_late_p99_ms": p99(late),
            "loop_late_max_ms": late[-1],
            "loop_busy_p99_ms": p99(busy),
            "loop_busy_max_ms": busy[-1],
        }


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
