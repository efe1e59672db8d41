"""Trading from the dashboard: the ticket's risk preview, fills, rejections, close, modify."""

from __future__ import annotations

import json
import os
import shutil
from typing import Any

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


# (agent, symbol, action, lots, sl, tp): XAUUSD is pinned at 2650.00 / 2650.30 (agent_1:
# balance 200, 1 % per trade), USDJPY at 149.99 / 150.01 (agent_3: balance 1000, 2 %).
TICKETS = [
    ("agent_1", "XAUUSD", "buy", "0.01", "2640.00", ""),  # the worked example: 10.30 > 2.00
    ("agent_1", "XAUUSD", "buy", "0.01", "2648.50", ""),  # ... and 1.80: accepted
    ("agent_1", "XAUUSD", "buy", "0.01", "", ""),  # SL required
    ("agent_1", "XAUUSD", "buy", "0.01", "2650.10", ""),  # a buy SL between bid and ask
    ("agent_1", "XAUUSD", "sell", "0.01", "2652.00", "2640"),  # exactly at the limit
    ("agent_1", "XAUUSD", "sell", "0.01", "2651.00", "2655"),  # TP on the wrong side
    ("agent_1", "XAUUSD", "buy", "0", "2648.50", ""),  # bad lots
    ("agent_1", "XAUUSD", "buy", "0.02", "2649.50", ""),  # 1.60 risk on 0.02 lots
    ("agent_3", "USDJPY", "sell", "0.01", "151.49", ""),  # 1500 JPY = 10.00 USD at mid 150
    ("agent_3", "USDJPY", "sell", "0.02", "151.49", ""),  # 20.00 USD: at the 2 % limit
]


async def _engine_answer(dashboard: Dashboard, ticket: tuple[str, ...]) -> dict[str, Any]:
    agent, symbol, action, lots, sl, tp = ticket
    body: dict[str, Any] = {"symbol": symbol, "action": action, "lots": float(lots)}
    if sl:
        body["sl"] = float(sl)
    if tp:
        body["tp"] = float(tp)
    resp = await dashboard.hub.post(f"/api/agents/{agent}/trade?dry_run=true", body)
    answer: dict[str, Any] = resp.json()
    return answer


async def _preview_of(dashboard: Dashboard, ticket: tuple[str, ...]) -> dict[str, Any]:
    """The ticket's preview once it shows the engine's answer for exactly this ticket."""
    agent, symbol, action, lots, sl, tp = ticket
    await dashboard.fill_ticket(agent, symbol, action, lots, sl=sl, tp=tp)
    numbers = [format(float(x), "g") if x else "" for x in (lots, sl, tp)]  # as JS prints them
    key = " ".join([agent, symbol, action, *numbers])
    handle = await dashboard.page.wait_for_function(
        "key => { const p = document.querySelector('#ticket [data-preview]');"
        " return p.dataset.for === key && p.dataset.verdict && !p.dataset.pending"
        " && {...p.dataset, text: p.textContent}; }",
        arg=key,
        timeout=WAIT_MS,
    )
    preview: dict[str, Any] = await handle.json_value()
    return preview


async def test_the_preview_is_the_engines_dry_run_answer(dashboard: Dashboard) -> None:
    await dashboard.hub.sim(
        "agent_3", "/sim/price", {"symbol": "USDJPY", "bid": 149.99, "ask": 150.01}
    )
    await dashboard.open()
    await dashboard.page.wait_for_selector(
        '#ticks tr[data-agent="agent_3"][data-symbol="USDJPY"] [data-field="bid"]:text("149.990")',
        timeout=WAIT_MS,
    )
    for ticket in TICKETS:
        preview = await _preview_of(dashboard, ticket)
        answer = await _engine_answer(dashboard, ticket)
        if "error" in answer:
            error = answer["error"]
            details = error.get("details") or {}
            assert preview["verdict"] == "rejected", (ticket, preview, answer)
            assert preview["code"] == error["code"], ticket
            assert preview["check"] == details.get("check", ""), ticket
            for field in ("value", "limit"):
                want = details.get(field)
                got = json.loads(preview[field]) if preview[field] else None
                assert got == want, (ticket, field, preview, answer)
            assert error["message"] in preview["text"], (ticket, preview["text"])
        else:
            assert preview["verdict"] == "ok", (ticket, preview, answer)
            assert float(preview["risk"]) == answer["risk"]["risk"], ticket
            assert float(preview["riskPct"]) == answer["risk"]["risk_pct"], ticket
    # The worked example (SPEC 7), as the trader reads it.
    rejected = await _preview_of(dashboard, TICKETS[0])
    assert (rejected["check"], rejected["value"], rejected["limit"]) == (
        "max_risk_per_trade",
        "10.3",
        "2",
    )
    assert "10.30" in rejected["text"] and "2.00" in rejected["text"]
    accepted = await _preview_of(dashboard, TICKETS[1])
    assert accepted["verdict"] == "ok" and "1.80 USD" in accepted["text"]
    assert dashboard.errors == []
    state = (await dashboard.hub.http.get(dashboard.hub.sim_url("agent_1") + "/sim/state")).json()
    assert state["orders_filled"] == 0


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
