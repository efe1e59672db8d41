"""Publications to notices (pure): names, transitions, one-line texts."""

from __future__ import annotations

from hub.agents import AgentStatus
from hub.notify import Notices, one_line
from hub.trading.models import OrderEvent


def _status(status: str = "online", trading: str = "active") -> AgentStatus:
    return AgentStatus(
        status=status, trading=trading, latency_ms=1.0, error=None, since=1, stale=[]
    )


def test_an_order_event_keeps_its_name_and_payload() -> None:
    event = OrderEvent(
        event="filled",
        agent_id="agent_1",
        command="trade",
        ticket=1001,
        symbol="XAUUSD",
        action="buy",
        lots=0.01,
        price=2650.3,
        sl=2648.5,
    )
    (notice,) = Notices().of("agent:agent_1:orders", event)
    assert (notice.event, notice.agent_id, notice.data["ticket"]) == ("filled", "agent_1", 1001)
    assert notice.text == "filled agent_1: buy 0.01 XAUUSD @ 2650.3 sl 2648.5 (ticket 1001)"


def test_a_rejection_shows_the_engine_message() -> None:
    event = OrderEvent(
        event="rejected",
        agent_id="agent_1",
        command="trade",
        symbol="XAUUSD",
        action="buy",
        lots=0.01,
        error={"code": "risk_rejected", "message": "risks 10.30 USD"},
    )
    (notice,) = Notices().of("agent:agent_1:orders", event)
    assert notice.text == "rejected agent_1: buy 0.01 XAUUSD - risks 10.30 USD"
    only_error = one_line("failed", "agent_1", {"error": {"message": "bridge_error"}})
    assert only_error == "failed agent_1: bridge_error"


def test_status_changes_become_transitions_only() -> None:
    notices = Notices()
    channel = "agent:agent_1:status"
    assert notices.of(channel, _status()) == []  # taken as online and active at start
    assert [n.event for n in notices.of(channel, _status("offline"))] == ["agent_offline"]
    assert notices.of(channel, _status("offline")) == []
    assert [n.event for n in notices.of(channel, _status("online", "halted"))] == [
        "agent_online",
        "halted",
    ]
    assert [n.event for n in notices.of(channel, _status())] == ["halt_lifted"]
    assert notices.of("agent:agent_2:status", _status()) == []


def test_system_gives_emergency_stop_and_resume_but_not_its_risk_breach_copy() -> None:
    notices = Notices()
    (stop,) = notices.of("system", {"event": "emergency_stop", "reason": "news", "by": "admin"})
    assert (stop.event, stop.agent_id) == ("emergency_stop", None)
    assert stop.text == "emergency_stop: reason news by admin"
    assert notices.of("system", {"event": "risk_breach", "agent_id": "agent_1"}) == []
    assert notices.of("agent:agent_1:ticks", {"symbol": "XAUUSD"}) == []


def test_one_line_is_one_line_and_bounded() -> None:
    text = one_line("failed", "agent_1", {"error": {"message": "bridge said\nno " + "x" * 900}})
    assert "\n" not in text and len(text) <= 400


def test_an_offline_status_shows_the_bridge_error() -> None:
    notices = Notices()
    status = AgentStatus(
        status="offline",
        trading="active",
        latency_ms=None,
        error="GET /tick/EURUSD: no answer within 2s",
        since=1,
        stale=[],
    )
    (notice,) = notices.of("agent:agent_2:status", status)
    assert notice.text == "agent_offline agent_2: GET /tick/EURUSD: no answer within 2s"
