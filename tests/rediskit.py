"""Redis for tests: a private redis-server that can be killed and restarted on its port."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

__all__ = ["REDIS_HOW_TO", "RedisServer", "redis_prefix", "require_redis_server"]

REDIS_HOW_TO = (
    "install redis-server, or run the test command (make test), which starts one and sets "
    "TEST_REDIS_URL (scripts/services.sh start .services redis && . .services/env)"
)


def require_redis_server() -> str:
    """The redis-server binary; skips the test when missing (fails it under CI=true)."""
    binary = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"no redis-server found: CI must run the Redis tests; {REDIS_HOW_TO}")
        pytest.skip(f"no redis-server found: {REDIS_HOW_TO}")
    return binary


def redis_prefix() -> str:
    """A key prefix of its own, so tests sharing one Redis never see each other's channels."""
    return f"t{uuid.uuid4().hex[:12]}"


class RedisServer:
    """A private redis-server without persistence on a fixed free port (restartable there)."""

    def __init__(self, binary: str, directory: Path) -> None:
        self.binary = binary
        self.directory = directory
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port: int = probe.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def pidfile(self) -> Path:
        return self.directory / "redis.pid"

    def start(self) -> None:
        subprocess.run(
            [
                self.binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--daemonize", "yes",
                "--dir", str(self.directory),
                "--pidfile", str(self.pidfile),
                "--logfile", str(self.directory / "redis.log"),
            ],
            check=True,
            timeout=10,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not self._answers():
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {self.port} did not answer PING")
            time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL the server (no persistence: its data is gone) and wait until it is."""
        if not self.pidfile.exists():
            return
        pid = int(self.pidfile.read_text())
        self.pidfile.unlink()
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 10
        while self._answers() or _alive(pid):
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server pid {pid} did not die")
            time.sleep(0.02)

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie nobody reaps counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
