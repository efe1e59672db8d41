"""The Procfile under honcho and the supervisord config, each on a fresh machine (a private
network namespace: the shipped ports as written) whose PATH has no .venv."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.kit import DEPLOY, ROOT, moved
from tests.machinekit import Machine, checkout, fresh_machine

VENV = ROOT / ".venv" / "bin"


@pytest.fixture
def machine() -> Iterator[Machine]:
    """Outside pytest's private tmp: the postgres user must be able to enter it."""
    folder = Path(tempfile.mkdtemp(prefix="mt4hub-deploy-"))
    folder.chmod(0o755)
    try:
        with fresh_machine(folder) as m:
            yield m
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _wait(machine: Machine, *urls: str, pid: str = "$$") -> None:
    """Until every URL answers (up to 2 min each), while process ``pid`` lives."""
    script = " && ".join(
        f"for _ in $(seq 600); do curl -sf -o /dev/null {u} && break; kill -0 {pid} || break; "
        f"sleep 0.2; done; curl -sf -o /dev/null {u}"
        for u in urls
    )
    assert machine.run(script, timeout=300).returncode == 0, f"no answer from {urls}"


def test_the_procfile_runs_two_web_instances_under_honcho(machine: Machine) -> None:
    """Failed before: `mt4hub: not found` (no .venv on PATH), then the second web instance
    stopped on `SpoolError: spool data/spool is in use by another process`."""
    work = checkout(machine.workdir / "checkout")
    (work / ".env").write_text(
        "REDIS_URL=redis://127.0.0.1:6379/0\nHUB_ADMIN_TOKEN=procfile-test-admin-token-012345\n"
    )
    started = machine.run(
        f"nohup {VENV}/honcho start -c web=2 > honcho.log 2>&1 & echo $!", cwd=work, timeout=30
    )
    assert started.returncode == 0, started.stdout
    try:
        _wait(
            machine,
            "http://127.0.0.1:5000/health",
            "http://127.0.0.1:5001/health",
            "http://127.0.0.1:9081/account",
            pid=started.stdout.strip(),
        )
    except AssertionError:
        raise AssertionError((work / "honcho.log").read_text()) from None
    assert sorted(p.name for p in (work / "data").iterdir()) == ["5000", "5001"]
    status = machine.run("curl -s http://127.0.0.1:5001/api/status", timeout=30).stdout
    assert '"broker":{"kind":"redis"' in status


def test_supervisord_runs_and_stops_both_instances(machine: Machine) -> None:
    """deploy/supervisor/mt4hub.conf with its paths in a test folder and no `user=` (there
    is no mt4hub user here), included from a main config like Debian's."""
    folder = machine.workdir
    for sub in ("etc", "lib", "log", "conf.d"):
        (folder / sub).mkdir()
    made = machine.run(
        f"{DEPLOY}/make-env.sh etc/mt4hub.env && {DEPLOY}/setup-postgres.sh etc/mt4hub.env "
        f"&& cp {DEPLOY}/prod.yml etc/prod.yml",
        cwd=folder,
    )
    assert made.returncode == 0, made.stdout
    program = moved((DEPLOY / "supervisor" / "mt4hub.conf").read_text(), folder)
    program = "\n".join(line for line in program.splitlines() if not line.startswith("user="))
    (folder / "conf.d" / "mt4hub.conf").write_text(program + "\n")
    (folder / "supervisord.conf").write_text(
        f"""[supervisord]
logfile={folder}/supervisord.log
pidfile={folder}/supervisord.pid
[unix_http_server]
file={folder}/supervisor.sock
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[supervisorctl]
serverurl=unix://{folder}/supervisor.sock
[include]
files = {folder}/conf.d/*.conf
"""
    )
    ctl = f"{VENV}/supervisorctl -c {folder}/supervisord.conf"
    up = machine.run(f"{VENV}/supervisord -c {folder}/supervisord.conf", timeout=60)
    assert up.returncode == 0, up.stdout
    try:
        _wait(machine, "http://127.0.0.1:8090/health", "http://127.0.0.1:8091/health")
        for port in (8090, 8091):
            status = machine.run(f"curl -s http://127.0.0.1:{port}/api/status").stdout
            assert f'"instance":"hub-{port}"' in status, status
            assert '"store":{"engine":"postgres","healthy":true' in status, status
            assert (folder / "lib" / str(port) / "spool").is_dir()
        stopped = machine.run(f"{ctl} stop 'mt4hub:*' && {ctl} status", timeout=90)
        lines = stopped.stdout.splitlines()
        assert sum("STOPPED" in line for line in lines) == 2, stopped.stdout
        log = (folder / "log" / "8090.log").read_text()
        assert "Application startup complete" in log and "Finished server process" in log
    finally:
        machine.run(f"{ctl} shutdown", timeout=60)
