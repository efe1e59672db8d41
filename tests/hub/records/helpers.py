"""Helpers shared by the records tests."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

__all__ = ["PG_BIN", "ROOT", "SERVICES", "run_services", "run_services_async"]

ROOT = Path(__file__).resolve().parents[3]
SERVICES = ROOT / "scripts" / "services.sh"
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def run_services(command: str, directory: Path, *services: str) -> str:
    """Run scripts/services.sh; fail with its stderr when it fails."""
    done = subprocess.run(
        [str(SERVICES), command, str(directory), *services],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, f"services.sh {command} failed: {done.stderr}"
    return done.stdout + done.stderr


async def run_services_async(command: str, directory: Path, *services: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        str(SERVICES),
        command,
        str(directory),
        *services,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(120):
        _, err = await proc.communicate()
    assert proc.returncode == 0, f"services.sh {command} failed: {err.decode()}"
