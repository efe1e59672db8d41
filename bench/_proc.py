"""Child processes driven by JSON lines, pinned to a core, and read from ``/proc``.

A child prints one JSON object per line on stdout: first ``{"ready": true, …}``, then
one reply per request written to its stdin. Its stderr goes to a log file whose tail
is shown when it fails.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["Child", "ChildError", "cores", "cpu_seconds", "rss_bytes"]

ROOT = Path(__file__).resolve().parent.parent  # the repository: children import bench/, hub/
_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


class ChildError(RuntimeError):
    """A child process failed, answered with an error, or did not answer in time."""


def cores() -> tuple[set[int], set[int]]:
    """(server core, client core): the first two CPUs we may use, or the same one twice."""
    mine = sorted(os.sched_getaffinity(0))
    return {mine[0]}, {mine[1] if len(mine) > 1 else mine[0]}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far (its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` now."""
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE


class Child:
    """One ``python -m MODULE ARGS`` child, pinned to ``core``."""

    def __init__(self, proc: asyncio.subprocess.Process, name: str, log: Path) -> None:
        self._proc = proc
        self.name = name
        self.log = log
        self.ready: dict[str, Any] = {}

    @property
    def pid(self) -> int:
        return self._proc.pid

    @classmethod
    async def start(
        cls,
        module: str,
        *args: str,
        core: set[int],
        log_dir: Path,
        name: str | None = None,
        ready_within: float = 60.0,
    ) -> Child:
        name = name or module.rpartition(".")[2]
        log = log_dir / f"{name}.log"
        with log.open("wb") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                module,
                *args,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
                cwd=ROOT,
                limit=1 << 24,
            )
        child = cls(proc, name, log)
        try:
            os.sched_setaffinity(proc.pid, core)
            child.ready = await child._read(ready_within)
        except BaseException:
            await child.stop()
            raise
        if not child.ready.get("ready"):
            await child.stop()
            raise ChildError(f"{name}: first line was not ready: {child.ready}")
        return child

    async def request(self, within: float = 60.0, **command: Any) -> dict[str, Any]:
        """Send one command, return its reply; raise :class:`ChildError` on ``error``."""
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps(command).encode() + b"\n")
        await self._proc.stdin.drain()
        reply = await self._read(within)
        if "error" in reply:
            raise ChildError(f"{self.name}: {command.get('cmd')}: {reply['error']}")
        return reply

    async def _read(self, within: float) -> dict[str, Any]:
        assert self._proc.stdout is not None
        try:
            async with asyncio.timeout(within):
                line = await self._proc.stdout.readline()
        except TimeoutError:
            raise ChildError(f"{self.name}: no answer within {within:g} s{self._tail()}") from None
        if not line:
            await self._proc.wait()
            raise ChildError(f"{self.name}: exited with {self._proc.returncode}{self._tail()}")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def _tail(self) -> str:
        try:
            lines = self.log.read_text(errors="replace").splitlines()[-15:]
        except OSError:
            return ""
        return ("\n  " + "\n  ".join(lines)) if lines else ""

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def rss(self) -> int:
        return rss_bytes(self.pid)

    async def stop(self, grace: float = 10.0) -> None:
        """Ask it to quit (close stdin), then terminate, then kill."""
        proc = self._proc
        if proc.returncode is not None:
            return
        if proc.stdin is not None and not proc.stdin.is_closing():
            proc.stdin.close()
        try:
            async with asyncio.timeout(grace):
                await proc.wait()
                return
        except TimeoutError:
            proc.terminate()
        try:
            async with asyncio.timeout(grace):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()
