"""``mt4hub run`` as a real process: weak secrets refused, the generated token kept off
stdout (on stderr once, and in a 0600 file under the data dir)."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.hubkit import free_port, one_agent_yaml
from tests.timing import eventually, units

ROOT = Path(__file__).resolve().parents[2]
STRONG = "a-strong-admin-token-0123"
_HUB_ENV = ("HUB_ADMIN_TOKEN", "HUB_JWT_SECRET", "REDIS_URL", "DATABASE_URL", "PORT")


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _HUB_ENV}
    return {**env, "HUB_DATA_DIR": str(tmp / "data"), "PYTHONPATH": str(ROOT), **extra}


def _command(tmp: Path, *args: str) -> list[str]:
    (tmp / "agents.yml").write_text(one_agent_yaml())
    config = str(tmp / "agents.yml")
    return [sys.executable, "-m", "hub.cli", "run", "--config", config, *args]


def test_a_short_admin_token_is_refused_naming_the_variable(tmp_path: Path) -> None:
    done = subprocess.run(
        _command(tmp_path, "--port", str(free_port())),
        env=_env(tmp_path, HUB_ADMIN_TOKEN="x"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert "HUB_ADMIN_TOKEN: 1 characters; a token needs at least 16" in done.stderr
    assert "--insecure-dev" in done.stderr


def test_a_short_jwt_secret_is_refused_naming_the_variable(tmp_path: Path) -> None:
    done = subprocess.run(
        _command(tmp_path, "--port", str(free_port())),
        env=_env(tmp_path, HUB_ADMIN_TOKEN=STRONG, HUB_JWT_SECRET="abc"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert "HUB_JWT_SECRET: 3 bytes; an HS256 secret needs at least 32" in done.stderr


@contextmanager
def running(tmp: Path, env: dict[str, str], *args: str) -> Iterator[tuple[int, Path, Path]]:
    """``mt4hub run`` on a free port: (port, its stdout file, its stderr file)."""
    port = free_port()
    out, err = tmp / "stdout", tmp / "stderr"
    with out.open("wb") as o, err.open("wb") as e:
        proc = subprocess.Popen(
            _command(tmp, "--port", str(port), *args), env=env, stdout=o, stderr=e, cwd=ROOT
        )
    try:
        yield port, out, err
    finally:
        proc.terminate()
        proc.wait(30)


async def answers(port: int) -> bool:
    try:
        async with httpx.AsyncClient() as client:
            return (await client.get(f"http://127.0.0.1:{port}/health")).status_code == 200
    except httpx.TransportError:
        return False


async def test_insecure_dev_starts_with_a_weak_secret_and_says_so(tmp_path: Path) -> None:
    env = _env(tmp_path, HUB_ADMIN_TOKEN="x")
    with running(tmp_path, env, "--insecure-dev") as (port, _, err):
        await eventually(lambda: answers(port), timeout=units(300), message="the hub")
        assert "insecure_dev weak secret accepted: HUB_ADMIN_TOKEN" in err.read_text()


async def test_the_generated_token_goes_to_stderr_once_and_a_0600_file(tmp_path: Path) -> None:
    with running(tmp_path, _env(tmp_path)) as (port, out, err):
        await eventually(lambda: answers(port), timeout=units(300), message="the hub")
        saved = tmp_path / "data" / "admin-token"
        token = saved.read_text().strip()
        assert len(token) >= 16
        assert stat.S_IMODE(saved.stat().st_mode) == 0o600
        assert token not in out.read_text()
        assert str(saved) in out.read_text()
        assert err.read_text().count(token) == 1
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as client:
            r = await client.get(f"http://127.0.0.1:{port}/api/agents")
            assert r.status_code == 200


async def test_mt4hub_sim_off_loopback_takes_its_control_token_from_the_flag(
    tmp_path: Path,
) -> None:
    port, secret = free_port(), "sim-control-token-0123"
    command = [sys.executable, "-m", "hub.cli", "sim", "--host", "0.0.0.0", "--port", str(port),
               "--control-token", secret]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        *command, env=_env(tmp_path), cwd=ROOT, stderr=asyncio.subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}/sim/reset"
    try:
        async with httpx.AsyncClient() as client:

            async def reset(headers: dict[str, str]) -> int:
                try:
                    return (await client.post(url, json={}, headers=headers)).status_code
                except httpx.TransportError:
                    return 0

            await eventually(lambda: reset({}), timeout=units(300), message="mt4hub sim")
            assert await reset({}) == 403
            assert await reset({"Authorization": f"Bearer {secret}"}) == 200
    finally:
        proc.terminate()
        await proc.wait()
