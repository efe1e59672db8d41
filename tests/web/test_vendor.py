"""The chart library: pinned in package.json, fetched by scripts/setup, served by the hub and
shipped in the wheel (a non-editable install serves the same file)."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.hubkit import run_hub
from tests.web.conftest import ROOT

PINNED = json.loads((ROOT / "package.json").read_text())["dependencies"]["lightweight-charts"]
VENDOR = ROOT / "web" / "vendor" / "lightweight-charts.js"


def test_the_library_is_pinned_exactly_and_locked() -> None:
    assert PINNED[0].isdigit() and all(part.isdigit() for part in PINNED.split(".")), PINNED
    lock = json.loads((ROOT / "package-lock.json").read_text())
    locked = lock["packages"]["node_modules/lightweight-charts"]
    assert locked["version"] == PINNED and locked["integrity"].startswith("sha512-")


def test_setup_fetched_the_pinned_version() -> None:
    assert VENDOR.exists(), "run scripts/setup (npm ci) to fetch the chart library"
    assert f"Lightweight Charts™ v{PINNED}" in VENDOR.read_text()[:300]


async def test_the_hub_serves_it_as_javascript() -> None:
    async with run_hub() as h:
        resp = await h.http.get("/static/vendor/lightweight-charts.js")
        assert resp.status_code == 200
        assert "javascript" in resp.headers["content-type"]
        assert resp.content == VENDOR.read_bytes()


@pytest.mark.slow
def test_the_wheel_ships_it(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(ROOT)],
        check=True,
        timeout=600,
    )
    [wheel] = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as zf:
        shipped = zf.read("hub/_shipped/web/vendor/lightweight-charts.js")
        assert "hub/_shipped/web/vendor/lightweight-charts.LICENSE" in zf.namelist()
    assert shipped == VENDOR.read_bytes()
