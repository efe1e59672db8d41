"""Browser fixtures: Debian's headless Chromium (via Playwright) on a real hub.

Chromium is ``/usr/bin/chromium`` (``scripts/chromium.sh`` installs it). Without it, or
without the ``playwright`` package, these tests skip with the reason, except under
``CI=true`` where they fail: CI must never pass without running them.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.hubkit import RunningHub, run_hub
from tests.timing import units

if TYPE_CHECKING:
    from playwright.async_api import ViewportSize

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# The XAUUSD price agent_1 is pinned to, so SL distances (and risk) are exact.
XAU_BID, XAU_ASK = 2650.00, 2650.30


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: browser tests must run)")
    pytest.skip(f"{reason}: run scripts/chromium.sh and pip install playwright")


@pytest.fixture(scope="session")
def chromium_path() -> str:
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        _unavailable("the playwright package is not installed")
    if not CHROMIUM.exists() and os.environ.get("CI", "").lower() == "true":
        subprocess.run([str(ROOT / "scripts" / "chromium.sh")], check=False, timeout=900)
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing")
    return str(CHROMIUM)


class Dashboard:
    """A page on the hub's dashboard with every console error and page error recorded."""

    def __init__(self, hub: RunningHub, page: Any, errors: list[str]) -> None:
        self.hub = hub
        self.page = page
        self.errors = errors

    async def open(self, token: str | None = None) -> None:
        await self.page.goto(f"{self.hub.url}/?token={token or self.hub.token}")
        await self.page.wait_for_selector("#connection.live", timeout=units(100) * 1000)
        await self.page.wait_for_selector("#ticks tr", timeout=units(50) * 1000)

    async def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=True)
        return path

    async def fill_ticket(
        self, agent: str, symbol: str, action: str, lots: str, sl: str = "", tp: str = ""
    ) -> None:
        form = self.page.locator("#ticket")
        await form.locator("select[name=agent]").select_option(agent)
        await form.locator("select[name=symbol]").select_option(symbol)
        await form.locator(f"input[name=action][value={action}]").check()
        await form.locator("input[name=lots]").fill(lots)
        await form.locator("input[name=sl]").fill(sl)
        await form.locator("input[name=tp]").fill(tp)

    async def send_ticket(self) -> str:
        """Click send and wait for the hub's answer; returns the outcome text."""
        outcome = self.page.locator("#ticket [data-outcome]")
        await self.page.locator("#ticket button[type=submit]").click()
        await self.page.wait_for_selector(
            "#ticket [data-outcome].ok, #ticket [data-outcome].error", timeout=units(100) * 1000
        )
        return str(await outcome.text_content())


@pytest.fixture
async def hub() -> AsyncIterator[RunningHub]:
    async with run_hub() as running:
        await running.sim(
            "agent_1", "/sim/price", {"symbol": "XAUUSD", "bid": XAU_BID, "ask": XAU_ASK}
        )
        yield running


async def _dashboard(
    hub: RunningHub, chromium: str, viewport: ViewportSize
) -> AsyncIterator[Dashboard]:
    from playwright.async_api import async_playwright

    errors: list[str] = []

    def on_console(msg: Any) -> None:
        if msg.type == "error":
            errors.append(f"console: {msg.text} ({msg.location.get('url', '')})")

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport=viewport)
            page.on("console", on_console)
            page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
            yield Dashboard(hub, page, errors)
        finally:
            await browser.close()


@pytest.fixture
async def dashboard(hub: RunningHub, chromium_path: str) -> AsyncIterator[Dashboard]:
    async for d in _dashboard(hub, chromium_path, {"width": 1280, "height": 800}):
        yield d


@pytest.fixture
async def phone(hub: RunningHub, chromium_path: str) -> AsyncIterator[Dashboard]:
    async for d in _dashboard(hub, chromium_path, {"width": 390, "height": 844}):
        yield d
