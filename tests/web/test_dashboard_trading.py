"""Trading from the dashboard: the ticket's risk preview, fills, rejections, close, modify."""

from __future__ import annotations

import os
import shutil

from tests.timing import units
from tests.web.conftest import ROOT, Dashboard

WAIT_MS = units(100) * 1000
POSITION_ROWS = '#positions table[data-agent="agent_1"] tbody tr[data-ticket]'


async def _open_position(dashboard: Dashboard) -> str:
    await dashboard.fill_ticket("agent_1", "XAUUSD", "buy", "0.01", sl="2648.50", tp="2660")
    outcome = await dashboard.send_ticket()
    assert outcome.startswith("filled"), outcome
    row = dashboard.page.locator(POSITION_ROWS)
    await row.first.wait_for(timeout=WAIT_MS)
    return str(await row.first.get_attribute("data-ticket"))


async def test_risk_preview_shows_money_and_percent_against_the_limit(
    dashboard: Dashboard,
) -> None:
    await dashboard.open()
    await dashboard.fill_ticket("agent_1", "XAUUSD", "buy", "0.01", sl="2640")
    preview = dashboard.page.locator("#ticket [data-preview]")
    await dashboard.page.wait_for_selector('#ticket [data-preview][data-verdict="over"]')
    text = str(await preview.text_content())
    # The worked example of docs/risk.md at the pinned ask 2650.30: 0.01 x 100 x 10.30 > 2.00.
    assert "10.30 USD" in text and "5.15%" in text and "limit 2.00" in text
    await dashboard.page.locator("#ticket input[name=sl]").fill("2648.50")
    await dashboard.page.wait_for_selector('#ticket [data-preview][data-verdict="ok"]')
    assert "1.80 USD" in str(await preview.text_content())


async def test_usdjpy_risk_preview_is_converted_with_the_current_price(
    dashboard: Dashboard,
) -> None:
    await dashboard.hub.sim(
        "agent_3", "/sim/price", {"symbol": "USDJPY", "bid": 149.99, "ask": 150.01}
    )
    await dashboard.open()
    await dashboard.page.wait_for_selector(
        '#ticks tr[data-agent="agent_3"][data-symbol="USDJPY"] [data-field="bid"]:text("149.990")',
        timeout=WAIT_MS,
    )
    await dashboard.fill_ticket("agent_3", "USDJPY", "sell", "0.01", sl="151.49")
    preview = dashboard.page.locator("#ticket [data-preview]")
    # entry at bid 149.99: 0.01 x 100000 x 1.50 = 1500 JPY = 10.00 USD at mid 150.
    await dashboard.page.wait_for_function(
        "() => document.querySelector('#ticket [data-preview]').textContent.includes('10.00 USD')",
        timeout=WAIT_MS,
    )
    assert "1.00%" in str(await preview.text_content())


async def test_trade_from_the_ticket_appears_as_a_position_row(dashboard: Dashboard) -> None:
    await dashboard.open()
    ticket = await _open_position(dashboard)
    row = dashboard.page.locator(f'{POSITION_ROWS}[data-ticket="{ticket}"]')
    cells = await row.locator("td").all_text_contents()
    assert cells[1:4] == ["XAUUSD", "buy", "0.01"]
    assert cells[5] == "2648.50" and cells[6] == "2660.00"
    positions = dashboard.page.locator('article[data-agent="agent_1"] [data-field="positions"]')
    await dashboard.page.wait_for_function(
        "el => el.textContent === '1 / 1'", arg=await positions.element_handle(), timeout=WAIT_MS
    )
    await dashboard.page.wait_for_selector("#feed-orders li.good", timeout=WAIT_MS)
    shot = await dashboard.screenshot("desktop-trading")
    if os.environ.get("UPDATE_DOCS_SCREENSHOT") == "1":
        shutil.copyfile(shot, ROOT / "docs" / "dashboard.png")
    assert dashboard.errors == []


async def test_risk_rejected_trade_shows_its_check_and_numbers(dashboard: Dashboard) -> None:
    await dashboard.open()
    await dashboard.fill_ticket("agent_1", "XAUUSD", "buy", "0.01", sl="2640")
    text = await dashboard.send_ticket()
    outcome = dashboard.page.locator("#ticket [data-outcome]")
    assert await outcome.get_attribute("data-check") == "max_risk_per_trade"
    assert text.startswith("risk_rejected")
    assert "value 10.3" in text and "limit 2" in text
    await dashboard.page.wait_for_selector("#feed-orders li.bad", timeout=WAIT_MS)
    assert await dashboard.page.locator(POSITION_ROWS).count() == 0


async def test_closing_from_the_table_removes_the_row(dashboard: Dashboard) -> None:
    await dashboard.open()
    ticket = await _open_position(dashboard)
    row = dashboard.page.locator(f'{POSITION_ROWS}[data-ticket="{ticket}"]')
    await row.get_by_role("button", name="Close").click()
    await row.wait_for(state="detached", timeout=WAIT_MS)
    resp = await dashboard.hub.get("/api/agents/agent_1/positions")
    assert resp.json() == {"positions": []}
    assert dashboard.errors == []


async def test_modify_sets_new_sl_and_tp(dashboard: Dashboard) -> None:
    await dashboard.open()
    ticket = await _open_position(dashboard)
    page = dashboard.page
    row = page.locator(f'{POSITION_ROWS}[data-ticket="{ticket}"]')
    await row.get_by_role("button", name="SL/TP").click()
    editor = page.locator(f'#positions tr[data-editor="{ticket}"]')
    await editor.locator("input[name=sl]").fill("2649")
    await editor.locator("input[name=tp]").fill("2665")
    await editor.get_by_role("button", name="Save").click()
    await page.wait_for_function(
        "sel => { const c = document.querySelectorAll(sel + ' td');"
        " return c[5].textContent === '2649.00' && c[6].textContent === '2665.00'; }",
        arg=f'{POSITION_ROWS}[data-ticket="{ticket}"]',
        timeout=WAIT_MS,
    )
    assert await editor.is_hidden()
