"""History, journal, partial close and a read-only token, in the dashboard."""

from __future__ import annotations

from hub.records import TradeClosed
from tests.hubkit import hub_config, run_hub
from tests.timing import eventually, units
from tests.web.conftest import XAU_ASK, XAU_BID, Dashboard, _dashboard

WAIT_MS = units(100) * 1000
POSITION_ROWS = '#positions table[data-agent="agent_1"] tbody tr[data-ticket]'


async def _rows(dashboard: Dashboard, panel: str, page: int, count: int) -> list[list[str]]:
    """The cells of ``panel``'s rows once it shows page ``page`` with ``count`` rows."""
    await dashboard.page.wait_for_selector(
        f'#{panel}[data-page="{page}"][data-rows="{count}"]', timeout=WAIT_MS
    )
    rows = dashboard.page.locator(f"#{panel} tbody tr")
    return [await rows.nth(i).locator("td").all_text_contents() for i in range(count)]


async def test_history_pages_through_closed_trades_with_pl(dashboard: Dashboard) -> None:
    hub = dashboard.hub
    for i in range(1, 13):  # twelve closed trades, ticket i with P/L i - 6
        hub.hub.writer.submit(
            TradeClosed(
                agent_id="agent_1", ticket=i, symbol="XAUUSD", action="buy", lots=0.01,
                open_price=2650.0, close_price=2650.0 + i - 6, profit=float(i - 6),
                open_time=1_000 * i, close_time=1_000 * i + 500,
            )
        )  # fmt: skip
    await hub.hub.writer.wait_written()
    await dashboard.open()
    first = await _rows(dashboard, "history", 1, 10)
    assert [r[2] for r in first] == [str(t) for t in range(12, 2, -1)]  # newest first
    assert first[0][8] == "+6.00" and first[6][8] == "0.00" and first[9][8] == "-3.00"
    await dashboard.page.locator("#history [data-older]").click()
    second = await _rows(dashboard, "history", 2, 2)
    assert [(r[2], r[8]) for r in second] == [("2", "-4.00"), ("1", "-5.00")]
    assert await dashboard.page.locator("#history [data-older]").is_disabled()
    await dashboard.page.locator("#history [data-newer]").click()
    assert (await _rows(dashboard, "history", 1, 10))[0][2] == "12"
    await dashboard.page.locator("#history select[name=limit]").select_option("25")
    assert len(await _rows(dashboard, "history", 1, 12)) == 12
    assert dashboard.errors == []


async def test_journal_filters_by_agent_and_event(dashboard: Dashboard) -> None:
    hub = dashboard.hub
    body = {"symbol": "XAUUSD", "action": "buy", "lots": 0.01, "sl": 2640.0}
    assert (await hub.post("/api/agents/agent_1/trade", body)).status_code == 422
    await hub.hub.writer.wait_written()
    await dashboard.open()
    form = dashboard.page.locator("#journal form")
    await form.locator("select[name=agent]").select_option("agent_1")
    await form.locator("input[name=event]").fill("order_rejected")
    await form.locator("input[name=event]").press("Enter")
    [row] = await _rows(dashboard, "journal", 1, 1)
    assert row[1:3] == ["agent_1", "order_rejected"] and "10.30" in row[3]
    await form.locator("select[name=agent]").select_option("agent_2")
    await dashboard.page.wait_for_selector("#journal[data-rows='0']", timeout=WAIT_MS)
    assert dashboard.errors == []


async def test_partial_close_from_the_positions_table(dashboard: Dashboard) -> None:
    hub = dashboard.hub
    body = {"symbol": "XAUUSD", "action": "buy", "lots": 0.02, "sl": 2649.5}
    opened = await hub.post("/api/agents/agent_1/trade", body)
    assert opened.status_code == 200, opened.text
    ticket = opened.json()["ticket"]
    await dashboard.open()
    row = dashboard.page.locator(f'{POSITION_ROWS}[data-ticket="{ticket}"]')
    await row.wait_for(timeout=WAIT_MS)
    await row.locator("input[name=close-lots]").fill("0.01")
    await row.get_by_role("button", name="Close").click()
    await dashboard.page.wait_for_function(
        "sel => document.querySelectorAll(sel + ' td')[3].textContent === '0.01'",
        arg=f'{POSITION_ROWS}[data-ticket="{ticket}"]',
        timeout=WAIT_MS,
    )
    positions = (await hub.get("/api/agents/agent_1/positions")).json()["positions"]
    assert [(p["ticket"], p["lots"]) for p in positions] == [(ticket, 0.01)]
    assert "closed 0.01" in str(await row.locator(".row-message").text_content())
    assert dashboard.errors == []


async def test_a_read_only_token_cannot_trade(chromium_path: str) -> None:
    tokens = "auth: {tokens: [{name: viewer, role: read, secret_env: T_VIEW}]}\n"
    secret = "viewer-dashboard-token-0123"
    async with run_hub(hub_config(tokens), env={"T_VIEW": secret}) as hub:
        await hub.sim("agent_1", "/sim/price", {"symbol": "XAUUSD", "bid": XAU_BID, "ask": XAU_ASK})
        await eventually(lambda: hub.hub.registry.agents["agent_1"].ticks.get("XAUUSD"))
        body = {"symbol": "XAUUSD", "action": "buy", "lots": 0.01, "sl": 2648.5}
        assert (await hub.post("/api/agents/agent_1/trade", body)).status_code == 200
        async for dashboard in _dashboard(hub, chromium_path, {"width": 1280, "height": 800}):
            await dashboard.open(secret)
            page = dashboard.page
            row = page.locator(POSITION_ROWS).first
            await row.wait_for(timeout=WAIT_MS)
            controls = [
                page.locator("#ticket button[type=submit]"),
                *[page.locator(f"#ticket input[name={n}]") for n in ("lots", "sl", "tp")],
                *[page.locator(f"#ticket input[name=action][value={v}]") for v in ("buy", "sell")],
                row.get_by_role("button", name="Close"),
                row.get_by_role("button", name="SL/TP"),
                row.locator("input[name=close-lots]"),
            ]
            for control in controls:
                assert await control.is_disabled(), control
            assert await page.locator("#emergency-stop").is_hidden()
            assert await page.locator("#resume").is_hidden()
            await page.wait_for_selector('#ticket [data-preview][data-verdict="disabled"]')
            await page.locator("#ticket button[type=submit]").click(force=True)
            await row.get_by_role("button", name="Close").click(force=True)
            # The hub refuses it anyway: a read token's trade op is forbidden.
            code = await page.evaluate(
                "() => window.__dashboard.conn.request({op: 'trade', agent: 'agent_1',"
                " symbol: 'XAUUSD', action: 'buy', lots: 0.01, sl: 2648.5}).then("
                " () => 'ok', (err) => err.code)"
            )
            assert code == "forbidden"
            await page.wait_for_timeout(units(5) * 1000)
            state = (await hub.http.get(hub.sim_url("agent_1") + "/sim/state")).json()
            assert state["orders_filled"] == 1  # only the admin's
            assert len((await hub.get("/api/agents/agent_1/positions")).json()["positions"]) == 1
            await dashboard.screenshot("desktop-read-only")
            assert dashboard.errors == []
