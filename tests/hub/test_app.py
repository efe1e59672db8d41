"""The app's wiring as an operator meets it: where an instance keeps its files."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx

from hub.app import data_dir_for
from tests.hubkit import free_port, stop_process
from tests.timing import eventually, units

CONFIG = """
polling: {timeout: 0.5, backoff_initial: 0.1, backoff_max: 0.5}
symbols:
  XAUUSD: {contract_size: 100, digits: 2}
agents:
  agent_1: {name: Atlas, strategy: amd, bridge: "http://127.0.0.1:%d", symbols: [XAUUSD],
            risk: {max_risk_per_trade: 1%%, max_daily_loss: 5%%, max_positions: 1}}
"""


def test_the_data_dir_is_the_env_s_else_the_instance_s_else_the_port_s() -> None:
    assert data_dir_for({"HUB_DATA_DIR": "/srv/a", "HUB_INSTANCE_ID": "x"}, 1) == Path("/srv/a")
    assert data_dir_for({"HUB_INSTANCE_ID": "hub-a"}, 8090) == Path("data/hub-a")
    assert data_dir_for({}, 8091) == Path("data/8091")
    assert data_dir_for({}) == Path("data")


def _start(folder: Path, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with open(folder / f"hub-{port}.log", "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "hub.cli", "run", "--config", "hub.yml", "--port", str(port)],
            cwd=folder,
            env={**os.environ, "PYTHONPATH": str(Path.cwd()), "HUB_ADMIN_TOKEN": "a" * 32, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _log(folder: Path, port: int) -> str:
    return (folder / f"hub-{port}.log").read_text()


async def _wait_up(folder: Path, port: int, proc: subprocess.Popen[bytes]) -> None:
    async def up() -> bool:
        async with httpx.AsyncClient() as http:
            try:
                return (await http.get(f"http://127.0.0.1:{port}/health")).status_code == 200
            except httpx.TransportError:
                assert proc.poll() is None, _log(folder, port)
                return False

    await eventually(up, timeout=units(300), interval=units(2), message=f"the hub on {port}")


async def test_two_instances_started_in_one_folder_do_not_share_a_spool(tmp_path: Path) -> None:
    """docs/deploy.md's second instance and `honcho start -c web=2` died with SpoolError."""
    (tmp_path / "hub.yml").write_text(CONFIG % free_port())
    env = {"HUB_DATA_DIR": "", "HUB_INSTANCE_ID": "", "REDIS_URL": "", "DATABASE_URL": ""}
    ports = free_port(), free_port()
    procs = [_start(tmp_path, port, env) for port in ports]
    try:
        for port, proc in zip(ports, procs, strict=True):
            await _wait_up(tmp_path, port, proc)
        assert sorted(p.name for p in (tmp_path / "data").iterdir()) == sorted(map(str, ports))
    finally:
        for proc in procs:
            await stop_process(proc, "hub", 10)


async def test_two_instances_given_one_data_dir_are_told_what_to_set(tmp_path: Path) -> None:
    (tmp_path / "hub.yml").write_text(CONFIG % free_port())
    env = {"HUB_DATA_DIR": str(tmp_path / "shared"), "REDIS_URL": "", "DATABASE_URL": ""}
    first_port = free_port()
    first = _start(tmp_path, first_port, env)
    try:
        await _wait_up(tmp_path, first_port, first)
        second_port = free_port()
        second = _start(tmp_path, second_port, env)
        assert await asyncio.to_thread(second.wait, units(300)) != 0
        assert (
            f"spool {tmp_path / 'shared' / 'spool'} is in use by another process: another hub "
            f"instance uses the data dir {tmp_path / 'shared'}; give each instance its own "
            "HUB_DATA_DIR"
        ) in _log(tmp_path, second_port)
    finally:
        await stop_process(first, "hub", 10)
