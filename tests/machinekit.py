"""A fresh machine for the operator's path, on this one: a private network namespace.

Docs and deploy files name fixed ports (the hub on 8090, bridges on 8081…, Redis on 6379,
Postgres on 5432, honcho's 5000…). In a network namespace of its own (``unshare -n``, as
root) a test uses those very ports, however many other hubs run on this machine, so the
commands run exactly as written. :class:`Machine` keeps the namespace open with a holder
process, starts Redis on 6379 and PostgreSQL 15 on 5432 in it (like a host after
``apt-get install redis-server postgresql``: superuser ``postgres``, reached with
``PGHOST=127.0.0.1``), runs bash scripts there with ``nsenter``, and at the end stops
every process in the namespace, whatever started it.

Needs root and ``unshare``/``nsenter`` (util-linux): the test skips without them, or
fails under ``CI=true``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

__all__ = ["ROOT", "Machine", "checkout", "fresh_machine"]

ROOT = Path(__file__).resolve().parents[1]

# The holder: bring the namespace's loopback up (no iproute2 needed), then wait.
_HOLDER = """
import fcntl, signal, socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
flags = struct.unpack("16sH22x", fcntl.ioctl(s, 0x8913, struct.pack("16sH22x", b"lo", 0)))[1]
fcntl.ioctl(s, 0x8914, struct.pack("16sH22x", b"lo", flags | 1))
print("up", flush=True)
signal.pause()
"""

# What a login shell on a Debian host has: no .venv on PATH.
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _unavailable(why: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{why}: CI must run the operator's-path tests (as root, with util-linux)")
    pytest.skip(f"{why}: the operator's-path tests need root and unshare/nsenter")


class Machine:
    """See the module docstring. ``env`` is the environment of every command run in it."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.services = workdir / "services"
        self.holder: subprocess.Popen[str] | None = None
        self.env = {
            "PATH": SYSTEM_PATH,
            "HOME": str(workdir),
            "LANG": "C.UTF-8",
            "TERM": "dumb",
            "PGHOST": "127.0.0.1",  # Postgres listens on 127.0.0.1:5432 (its socket is private)
            **{k: v for k, v in os.environ.items() if k in ("HUB_TEST_TIME_FACTOR", "CI")},
        }

    @property
    def netns(self) -> str:
        assert self.holder is not None
        return f"/proc/{self.holder.pid}/ns/net"

    def start(self) -> None:
        if os.geteuid() != 0:
            _unavailable("not root")
        self.holder = subprocess.Popen(
            ["unshare", "--net", "--", sys.executable, "-c", _HOLDER],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.holder.stdout is not None
        if self.holder.stdout.readline().strip() != "up":
            _, err = self.holder.communicate(timeout=10)
            self.holder = None
            _unavailable(f"unshare --net failed: {err.strip()}")
        self.services.mkdir(parents=True, exist_ok=True)
        self.services.chmod(0o755)
        (self.workdir / ".curlrc").write_text("no-progress-meter\n")  # as on a terminal
        self.run(
            f"PG_PORT=5432 REDIS_PORT=6379 {ROOT}/scripts/services.sh start {self.services}",
            timeout=180,
        ).check_returncode()

    def command(self, *args: str) -> list[str]:
        """``args`` run in the namespace."""
        return ["nsenter", f"--net={self.netns}", "--", *args]

    def run(
        self,
        script: str,
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        """``bash -c script`` in the namespace; output captured (stderr into stdout)."""
        return subprocess.run(
            self.command("bash", "-c", script),
            cwd=cwd or self.workdir,
            env={**self.env, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
        )

    def processes(self) -> list[int]:
        """Every process in the namespace but the holder."""
        assert self.holder is not None
        ours = os.readlink(self.netns)
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == self.holder.pid:
                continue
            try:
                if os.readlink(entry / "ns" / "net") == ours:
                    found.append(int(entry.name))
            except OSError:
                continue  # gone, or a kernel thread
        return found

    def stop(self) -> None:
        if self.holder is None:
            return
        try:
            if self.services.exists():
                self.run(f"{ROOT}/scripts/services.sh stop {self.services}", timeout=60)
            for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
                for pid in self.processes():
                    with suppress(ProcessLookupError):
                        os.kill(pid, sig)
                deadline = time.monotonic() + grace
                while self.processes() and time.monotonic() < deadline:
                    time.sleep(0.1)
        finally:
            self.holder.kill()
            self.holder.communicate()
            self.holder = None


@contextmanager
def fresh_machine(workdir: Path) -> Iterator[Machine]:
    machine = Machine(workdir)
    try:
        machine.start()
        yield machine
    finally:
        machine.stop()


def checkout(target: Path) -> Path:
    """A working copy of this checkout in ``target``: every top-level entry a symlink to the
    real one, so what the docs write in it (``.env``, ``prod.yml``, ``data/``) stays there."""
    target.mkdir(parents=True, exist_ok=True)
    skip = {".git", "data", ".cluster", ".services", ".env", "prod.yml", "artifacts"}
    for entry in ROOT.iterdir():
        if entry.name not in skip and not entry.name.endswith("_cache"):
            (target / entry.name).symlink_to(entry)
    return target
