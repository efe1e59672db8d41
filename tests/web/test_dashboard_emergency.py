"""The emergency stop from the dashboard: confirm, banner, trades refused, resume."""

from __future__ import annotations

from tests.timing import units
from tests.web.conftest import Dashboard

WAIT_MS = units(100) * 1000


async def test_emergency_stop_shows_banner_refuses_trades_and_resume_lifts_it(
    dashboard: Dashboard,
) -> None:
    await dashboard.open()
    page = dashboard.page
    assert await page.locator("#emergency-banner").is_hidden()
    await page.locator("#emergency-stop").click()
    dialog = page.locator("#emergency-dialog")
    await dialog.locator("input[name=reason]").fill("drill from the dashboard")
    await dialog.locator("[data-confirm]").click()
    banner = page.locator("#emergency-banner")
    await banner.wait_for(state="visible", timeout=WAIT_MS)
    assert "drill from the dashboard" in str(await banner.text_content())
    await page.wait_for_selector('article[data-agent="agent_1"][data-status="stopped"]')
    assert (await dashboard.hub.get("/api/risk")).json()["emergency"]["stopped"] is True
    await page.wait_for_selector("#feed-system li", timeout=WAIT_MS)

    await dashboard.fill_ticket("agent_1", "XAUUSD", "buy", "0.01", sl="2648.50")
    outcome = await dashboard.send_ticket()
    assert outcome.startswith("emergency_stop"), outcome

    await page.locator("#resume").click()
    await banner.wait_for(state="hidden", timeout=WAIT_MS)
    await page.wait_for_selector('article[data-agent="agent_1"][data-status="online"]')
    outcome = await dashboard.send_ticket()
    assert outcome.startswith("filled"), outcome
    assert dashboard.errors == []


async def test_cancelling_the_confirmation_does_not_stop(dashboard: Dashboard) -> None:
    await dashboard.open()
    page = dashboard.page
    await page.locator("#emergency-stop").click()
    await page.locator("#emergency-dialog [data-cancel]").click()
    await page.locator("#emergency-dialog").wait_for(state="hidden")
    assert (await dashboard.hub.get("/api/risk")).json()["emergency"]["stopped"] is False
    assert await page.locator("#emergency-banner").is_hidden()


async def test_stop_made_elsewhere_shows_the_banner_live(dashboard: Dashboard) -> None:
    await dashboard.open()
    resp = await dashboard.hub.post("/api/emergency/stop-all", {"reason": "from a script"})
    assert resp.status_code == 200, resp.text
    banner = dashboard.page.locator("#emergency-banner")
    await banner.wait_for(state="visible", timeout=WAIT_MS)
    assert "from a script" in str(await banner.text_content())
