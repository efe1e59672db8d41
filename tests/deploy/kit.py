"""What the deploy tests need from this machine: nginx (``scripts/test`` installs it with apt
when missing, as ``scripts/services.sh`` does Redis), and the operator's files with their
system paths moved into a test folder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.machinekit import ROOT

__all__ = ["DEPLOY", "ROOT", "moved", "require_nginx"]

DEPLOY = ROOT / "deploy"


def require_nginx() -> str:
    """The nginx binary (``scripts/test`` installs it); skips without it (fails under
    CI=true)."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if found is None:
        why = "nginx is not installed (scripts/apt-install.sh nginx, as root)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{why}: CI must run the deploy tests")
        pytest.skip(why)
    return found


def moved(text: str, folder: Path) -> str:
    """A deploy file's text with its system paths under ``folder`` and the checkout where
    it is (``/opt/mt4hub`` → this checkout)."""
    for system, here in (
        ("/opt/mt4hub", str(ROOT)),
        ("/etc/mt4hub", str(folder / "etc")),
        ("/var/lib/mt4hub", str(folder / "lib")),
        ("/var/log/mt4hub", str(folder / "log")),
    ):
        text = text.replace(system, here)
    return text
