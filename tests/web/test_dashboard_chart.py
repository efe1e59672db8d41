"""The symbol chart (TradingView lightweight-charts): candles from REST then live, and the
entry/SL/TP lines of open positions."""

from __future__ import annotations

import json
from typing import Any

from tests.timing import units
from tests.web.conftest import Dashboard

WAIT_MS = units(100) * 1000
CHART_STATE = "() => window.__dashboard.chart.chart.state()"


async def _last_bar(dashboard: Dashboard, close: float, tf: str = "M1") -> dict[str, Any]:
    """The chart's last bar once it is a ``tf`` bar closing at ``close``."""
    handle = await dashboard.page.wait_for_function(
        "([c, tf]) => { const d = document.querySelector('#price-chart').dataset.last;"
        " return d && JSON.parse(d).c === c && JSON.parse(d).tf === tf && d; }",
        arg=[close, tf],
        timeout=WAIT_MS,
    )
    bar: dict[str, Any] = json.loads(await handle.json_value())
    return bar


async def test_candles_render_from_history_and_update_live(dashboard: Dashboard) -> None:
    await dashboard.open()
    page = dashboard.page
    await page.wait_for_selector("#price-chart canvas", timeout=WAIT_MS)
    await _last_bar(dashboard, 2650.0)  # the pinned bid, from the REST history or live
    hub = dashboard.hub
    for bid in (2655.55, 2644.25, 2651.0):
        await hub.sim("agent_1", "/sim/price", {"symbol": "XAUUSD", "bid": bid, "ask": bid + 0.3})
        bar = await _last_bar(dashboard, bid)
    resp = await hub.get("/api/agents/agent_1/candles/XAUUSD", params={"tf": "M1"})
    assert resp.json()["candles"][-1] == bar
    assert bar["h"] >= 2655.55 and bar["l"] <= 2644.25 and bar["c"] == 2651.0
    await page.locator("#chart-controls select[name=tf]").select_option("H1")
    h1 = await _last_bar(dashboard, 2651.0, "H1")
    assert h1["h"] >= 2655.55 and h1["l"] <= 2644.25
    assert dashboard.errors == []


async def test_a_positions_sl_line_moves_after_a_modify(dashboard: Dashboard) -> None:
    await dashboard.open()
    hub = dashboard.hub
    body = {"symbol": "XAUUSD", "action": "buy", "lots": 0.01, "sl": 2648.5, "tp": 2660.0}
    opened = await hub.post("/api/agents/agent_1/trade", body)
    assert opened.status_code == 200, opened.text
    ticket = opened.json()["ticket"]

    async def lines_are(want: dict[str, float]) -> None:
        await dashboard.page.wait_for_function(
            "want => { const s = window.__dashboard.chart.chart.state();"
            " const got = Object.fromEntries(s.lines.map(l => [l.kind, l.price]));"
            " return JSON.stringify(got) === JSON.stringify(want); }",
            arg=want,
            timeout=WAIT_MS,
        )

    await lines_are({"entry": 2650.3, "sl": 2648.5, "tp": 2660.0})
    modified = await hub.post("/api/agents/agent_1/modify", {"ticket": ticket, "sl": 2649.25})
    assert modified.status_code == 200, modified.text
    await lines_are({"entry": 2650.3, "sl": 2649.25, "tp": 2660.0})
    state = await dashboard.page.evaluate(CHART_STATE)
    assert {line["ticket"] for line in state["lines"]} == {ticket}
    assert dashboard.errors == []
