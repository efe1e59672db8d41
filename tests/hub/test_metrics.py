"""/metrics on a live hub."""

from __future__ import annotations

from tests.hubkit import run_hub
from tests.timing import eventually


async def test_metrics_expose_agents_connections_and_orders() -> None:
    async with run_hub() as h:
        await eventually(lambda: h.hub.registry.agents["agent_1"].stats.polls > 2)
        await h.post(
            "/api/agents/agent_1/trade", {"symbol": "XAUUSD", "action": "buy", "lots": 0.01}
        )
        text = (await h.http.get("/metrics")).text
        assert 'mt4hub_agent_online{agent="agent_1"} 1.0' in text
        assert 'mt4hub_order_events_total{agent="agent_1",event="rejected"} 1.0' in text
        assert "mt4hub_records_written" in text and "mt4hub_emergency_stop 0.0" in text
