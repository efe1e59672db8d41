"""The risk engine's answer (``hub.risk.decision``): a RiskDecision on the wire."""

from __future__ import annotations

import msgspec

from hub.risk.decision import deny


def test_decision_encodes_to_json() -> None:
    decision = deny("max_risk_per_trade", "risks 10.30 USD", limit=2.0, value=10.3)
    body = msgspec.json.decode(msgspec.json.encode(decision))
    assert body["check"] == "max_risk_per_trade" and body["allowed"] is False
