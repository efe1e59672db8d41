"""/openapi.json and /docs on a live hub."""

from __future__ import annotations

from tests.hubkit import run_hub


async def test_openapi_lists_every_rest_endpoint_with_schemas() -> None:
    async with run_hub() as h:
        doc = (await h.http.get("/openapi.json")).json()
        assert doc["openapi"].startswith("3.")
        paths = doc["paths"]
        for path in (
            "/health",
            "/api/status",
            "/api/agents",
            "/api/agents/summary",
            "/api/agents/{agent_id}/trade",
            "/api/emergency/stop-all",
            "/api/signals",
            "/api/trades",
            "/api/logs",
            "/api/risk",
            "/api/channels/{channel}/history",
            "/api/stream",
            "/metrics",
        ):
            assert path in paths, path
        assert set(paths["/api/signals"]) == {"get", "post"}
        schemas = doc["components"]["schemas"]
        assert {"symbol", "action", "lots"} <= set(schemas["TradeRequest"]["required"])
        assert set(schemas["GlobalSummary"]["required"]) >= {"total_balance", "agents"}
        page = await h.http.get("/docs")
        assert page.status_code == 200 and "/api/agents/{agent_id}/trade" in page.text
