"""The dashboard loads live from a real hub: cards, ticks, token handling, layouts, reconnect."""

from __future__ import annotations

import json
from typing import Any

from tests.hubkit import hub_config, run_hub
from tests.timing import units
from tests.web.conftest import Dashboard, _dashboard

WAIT_MS = units(100) * 1000


async def test_page_loads_live_with_three_agents_and_no_console_errors(
    dashboard: Dashboard,
) -> None:
    await dashboard.open()
    page = dashboard.page
    cards = page.locator("#agents article.card")
    assert await cards.count() == 3
    names = await page.locator("#agents article.card h3").all_text_contents()
    assert [n.split()[0] for n in names] == ["Atlas", "Orion", "Nova"]
    await page.wait_for_selector('article[data-agent="agent_1"][data-status="online"]')
    balance = page.locator('article[data-agent="agent_1"] [data-field="balance"]')
    assert "200.00" in str(await balance.text_content())
    await page.wait_for_timeout(units(10) * 1000)
    await dashboard.screenshot("desktop-1280x800")
    assert dashboard.errors == []


async def test_token_moves_from_address_bar_to_session_storage(dashboard: Dashboard) -> None:
    await dashboard.open()
    assert "token=" not in dashboard.page.url
    stored = await dashboard.page.evaluate("sessionStorage.getItem('mt4hub.token')")
    assert stored == dashboard.hub.token


async def test_ticks_update_live(dashboard: Dashboard) -> None:
    await dashboard.open()
    cell = '#ticks tr[data-agent="agent_2"][data-symbol="EURUSD"] [data-field="bid"]'
    await dashboard.page.wait_for_selector(cell)
    first = await dashboard.page.locator(cell).text_content()
    await dashboard.page.wait_for_function(
        "([sel, first]) => document.querySelector(sel).textContent !== first",
        arg=[cell, first],
        timeout=WAIT_MS,
    )
    spread = dashboard.page.locator('#ticks tr[data-agent="agent_1"] [data-field="spread"]')
    assert await spread.text_content() == "30"  # pinned 2650.00 / 2650.30, 2 digits
    assert dashboard.errors == []


async def test_bad_token_shows_sign_in_instead_of_data(dashboard: Dashboard) -> None:
    await dashboard.page.goto(f"{dashboard.hub.url}/?token=wrong")
    await dashboard.page.wait_for_selector("#login:not([hidden])", timeout=WAIT_MS)
    assert await dashboard.page.locator("#dashboard").is_hidden()
    assert "token refused" in str(await dashboard.page.locator("#login").text_content())


async def test_reconnects_after_the_socket_drops_and_greys_data_meanwhile(
    dashboard: Dashboard,
) -> None:
    await dashboard.open()
    page = dashboard.page
    await page.evaluate("window.__dashboard.conn.socket.close()")
    await page.wait_for_selector("body.disconnected", timeout=WAIT_MS)
    assert "offline" in str(await page.locator("#connection").text_content())
    await page.wait_for_selector("#connection.live", timeout=WAIT_MS)
    assert not await page.evaluate("document.body.classList.contains('disconnected')")
    seq = await page.evaluate("window.__dashboard.conn.positions.get('agent:agent_2:ticks').seq")
    await page.wait_for_function(
        "s => window.__dashboard.conn.positions.get('agent:agent_2:ticks').seq > s",
        arg=seq,
        timeout=WAIT_MS,
    )
    assert dashboard.errors == []


async def test_phone_width_has_no_horizontal_overflow(phone: Dashboard) -> None:
    await phone.open()
    width = await phone.page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390
    await phone.page.wait_for_timeout(units(10) * 1000)
    await phone.screenshot("phone-390x844")
    assert phone.errors == []


async def test_the_socket_signs_in_with_the_auth_message_never_the_url(
    dashboard: Dashboard,
) -> None:
    sockets: list[Any] = []
    sent: list[str] = []

    def on_websocket(ws: Any) -> None:
        sockets.append(ws)
        ws.on("framesent", lambda payload: sent.append(str(payload)))

    dashboard.page.on("websocket", on_websocket)
    await dashboard.open()
    assert sockets and all("token" not in ws.url for ws in sockets), [ws.url for ws in sockets]
    first = json.loads(sent[0])
    assert first["op"] == "auth" and first["token"] == dashboard.hub.token
    assert dashboard.errors == []


async def test_a_token_limited_to_one_agent_gets_a_live_dashboard_of_it(
    chromium_path: str,
) -> None:
    tokens = "auth: {tokens: [{name: a1, role: trade, secret_env: T_A1, agents: [agent_1]}]}\n"
    secret = "a1-dashboard-token-0123"
    async with run_hub(hub_config(tokens), env={"T_A1": secret}) as hub:
        async for dashboard in _dashboard(hub, chromium_path, {"width": 1280, "height": 800}):
            await dashboard.open(secret)
            page = dashboard.page
            assert await page.locator("#agents article.card").count() == 1
            await page.wait_for_selector('article[data-agent="agent_1"][data-status="online"]')
            await page.wait_for_timeout(units(10) * 1000)
            assert await page.locator("#problem").is_hidden()
            assert dashboard.errors == []
