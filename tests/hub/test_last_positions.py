"""A restart does not forget positions (hub/trading/last_positions.py): an agent whose
bridge is down when the hub starts counts as last read, in every agent's global checks."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from hub.agents import Registry
from hub.bridge.profile import load_profile
from hub.bridge.sim import SimMarket
from hub.trading.last_positions import LastPositions
from tests.hub.bridge.quirky import SPECS, QuirkyBridge, hub_on, serve
from tests.hubkit import hub_config, run_hub
from tests.timing import eventually


async def test_an_agent_down_at_a_restart_counts_as_last_read() -> None:
    """agent_2 holds 0.1 lot XAUUSD with its SL 3.00 away (~30 USD of open risk). The hub
    stops, agent_2's bridge goes down, the hub starts again: agent_2 is offline, its
    position is shown as last read, and agent_1's trade is refused by the total exposure
    (2 % of 1000 = 20). Before, the restarted hub counted agent_2 as flat and let it pass."""
    profile = load_profile("mt4hub")
    one = QuirkyBridge(profile, SimMarket(SPECS, 1000.0, seed=5))
    two = QuirkyBridge(profile, SimMarket(SPECS, 1000.0, seed=6))
    bid = two.model.tick("XAUUSD").bid
    ticket = two.model.trade("XAUUSD", "buy", 0.1, sl=round(bid - 3, 2)).ticket
    runner_1, runner_2 = await serve(one), await serve(two)
    config = hub_on(
        (one.url, "mt4hub"),
        (two.url, "mt4hub"),
        max_positions=2,
        extra="global_risk: {max_total_exposure: 2%}",
    )
    try:
        with tempfile.TemporaryDirectory(prefix="mt4hub-test-") as data_dir:
            async with run_hub(config, data_dir=data_dir) as h:
                agent_2 = h.hub.registry.agents["agent_2"]
                await eventually(lambda: [p.ticket for p in agent_2.positions] == [ticket])
            await runner_2.cleanup()  # agent_2's bridge is down from now on
            async with run_hub(config, data_dir=data_dir) as h:
                agent_1 = h.hub.registry.agents["agent_1"]
                await eventually(lambda: agent_1.online)
                assert not h.hub.registry.agents["agent_2"].online
                shown = (await h.get("/api/agents/agent_2/positions")).json()
                assert [p["ticket"] for p in shown["positions"]] == [ticket], shown
                bid_1 = (await h.get("/api/agents/agent_1/tick/XAUUSD")).json()["bid"]
                order = {"symbol": "XAUUSD", "action": "buy", "lots": 0.01, "sl": bid_1 - 1}
                r = await h.post("/api/agents/agent_1/trade", order)
                assert r.status_code == 422, r.text
                assert r.json()["error"]["details"]["check"] == "max_total_exposure"
                assert one.model.positions() == []  # nothing sent
    finally:
        await runner_1.cleanup()


def test_an_unreadable_file_starts_every_agent_flat_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A torn or foreign file is an error in the log, never a crash: each agent then counts
    as flat until its first read, as on a first start."""
    path = tmp_path / "positions.json"
    path.write_bytes(b'{"agent_1": {"positions": [{"ticket": "x"')
    registry = Registry(hub_config())
    LastPositions(path).restore(registry)
    assert all(a.positions == [] for a in registry.agents.values())
    assert "last_positions_unreadable" in caplog.text
