"""Notifications end to end: a real hub, real simulators, a real local HTTP receiver."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import textwrap
from pathlib import Path
from typing import Any

from hub.bridge.sim_server import start_sim
from hub.config import SymbolSpec, parse_config
from hub.notify import Notifier, Outbox
from tests.docs.blocks import blocks
from tests.faults.kit import HubProc
from tests.hub.notify.receiver import Receiver
from tests.hubkit import RunningHub, one_agent_yaml, run_hub
from tests.timing import eventually, units

ROOT = Path(__file__).resolve().parents[3]
SECRET = "s3cret-key"
ENV = {"OPS_SECRET": SECRET, "TG_TOKEN": "123456:ABC-def", "TG_CHAT": "-1001234"}
TRADE = {"symbol": "XAUUSD", "action": "buy", "lots": 0.01, "tp": 2660.0}


def _config(targets: str) -> Any:
    return parse_config(one_agent_yaml("notifications:\n" + targets), "test-config")


def _webhook(receiver: Receiver, events: str, extra: str = "", name: str = "ops") -> str:
    return (
        f"  - {{name: {name}, url: '{receiver.url}/hook', events: [{events}],"
        f" secret_env: OPS_SECRET{extra}}}\n"
    )


def _verifies(secret: str, body: bytes, header: str) -> bool:
    """What a receiver does: recompute the HMAC of the raw body and compare in constant time."""
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)


async def _pin(h: RunningHub) -> None:
    await eventually(lambda: h.hub.registry.agents["agent_1"].online)
    await h.sim("agent_1", "/sim/price", {"symbol": "XAUUSD", "bid": 2650.0, "ask": 2650.3})
    ticks = h.hub.registry.agents["agent_1"].ticks
    await eventually(lambda: (t := ticks.get("XAUUSD")) is not None and t.ask == 2650.3)


async def _stop_and_resume(h: RunningHub, reason: str) -> None:
    r = await h.post("/api/emergency/stop-all", json={"reason": reason})
    assert r.status_code == 200, r.text
    r = await h.post("/api/emergency/resume")
    assert r.status_code == 200, r.text


async def test_webhook_gets_signed_json_for_the_events_it_asked_for() -> None:
    receiver = Receiver()
    await receiver.start()
    try:
        config = _config(_webhook(receiver, "filled, rejected, emergency_stop"))
        async with run_hub(config, env=ENV) as h:
            await _pin(h)
            ok = await h.post("/api/agents/agent_1/trade", json={**TRADE, "sl": 2648.5})
            assert ok.status_code == 200, ok.text
            bad = await h.post("/api/agents/agent_1/trade", json={**TRADE, "sl": 2640.0})
            assert bad.status_code == 422, bad.text
            await _stop_and_resume(h, "news")
            await eventually(lambda: len(receiver.requests) >= 3, message="three deliveries")
            await asyncio.sleep(units(3))  # nothing else (accepted, resume) is sent
            assert receiver.events() == ["filled", "rejected", "emergency_stop"]
            for req in receiver.requests:
                signature = req.headers["X-MT4Hub-Signature"]
                assert _verifies(SECRET, req.body, signature)
                assert not _verifies("another-key", req.body, signature)
                assert not _verifies(SECRET, req.body + b" ", signature)
                assert req.headers["X-MT4Hub-Delivery"] == str(req.json()["id"])
                assert req.headers["X-MT4Hub-Event"] == req.json()["event"]
            filled = receiver.requests[0].json()
            assert filled["agent_id"] == "agent_1" and filled["data"]["ticket"] > 0
            assert filled["text"].startswith("filled agent_1: buy 0.01 XAUUSD @ ")
            assert receiver.requests[1].json()["data"]["error"]["code"] == "risk_rejected"
            assert receiver.requests[2].json()["data"]["reason"] == "news"
            log = (await h.get("/api/notifications")).json()
            rows = log["notifications"]
            assert [r["event"] for r in rows] == ["emergency_stop", "rejected", "filled"]
            assert {(r["target"], r["status"], r["attempts"]) for r in rows} == {
                ("ops", "delivered", 1)
            }
            metrics = (await h.get("/metrics")).text
            assert 'mt4hub_notifications_delivered{target="ops"} 3.0' in metrics
    finally:
        await receiver.stop()


async def test_each_target_gets_only_its_events_and_agents() -> None:
    receiver = Receiver()
    await receiver.start()
    try:
        targets = (
            _webhook(receiver, "emergency_stop", name="stops")
            + _webhook(receiver, "resume, filled", extra=", agents: [agent_1]", name="resumes")
            + f"  - {{name: other, url: '{receiver.url}/other', events: ['*'],"
            " secret_env: OPS_SECRET}\n"
        )
        async with run_hub(_config(targets), env=ENV) as h:
            await _stop_and_resume(h, "one")
            await eventually(lambda: len(receiver.requests) >= 4, message="four deliveries")
            await asyncio.sleep(units(3))
            got = sorted((r.path, r.json()["event"]) for r in receiver.requests)
            assert got == [
                ("/hook", "emergency_stop"),
                ("/hook", "resume"),
                ("/other", "emergency_stop"),
                ("/other", "resume"),
            ]
            by_target = await h.get("/api/notifications", params={"target": "stops"})
            assert [r["event"] for r in by_target.json()["notifications"]] == ["emergency_stop"]
            for status in ("lost", ""):
                bad = await h.get("/api/notifications", params={"status": status})
                assert bad.status_code == 400 and "status" in bad.json()["error"]["message"]
    finally:
        await receiver.stop()


async def test_telegram_target_posts_one_line_to_send_message() -> None:
    receiver = Receiver()
    await receiver.start()
    try:
        target = (
            f"  - {{name: tg, type: telegram, api_base: '{receiver.url}', events: [emergency_stop],"
            " token_env: TG_TOKEN, chat_id_env: TG_CHAT}\n"
        )
        async with run_hub(_config(target), env=ENV) as h:
            await _stop_and_resume(h, "CPI at 14:30")
            await eventually(lambda: receiver.requests, message="a Telegram message")
            (req,) = receiver.requests
            assert req.path == "/bot123456:ABC-def/sendMessage"
            assert req.headers["Content-Type"] == "application/json"
            assert req.json() == {
                "chat_id": "-1001234",
                "text": "emergency_stop: reason CPI at 14:30 by admin",
                "disable_web_page_preview": True,
            }
    finally:
        await receiver.stop()


async def test_a_receiver_down_for_30_s_gets_everything_in_order_when_back() -> None:
    receiver = Receiver()  # not started: connections are refused
    config = _config(
        _webhook(receiver, "emergency_stop, resume", ", retry_initial: 0.2, retry_max: 2")
    )
    async with run_hub(config, env=ENV) as h:
        loop = asyncio.get_running_loop()
        down_since = loop.time()
        for i in range(5):
            await _stop_and_resume(h, f"r{i}")
            await asyncio.sleep(2.0)
        await asyncio.sleep(max(0.0, 30.0 - (loop.time() - down_since)))
        rows = (await h.get("/api/notifications")).json()["notifications"]
        assert len(rows) == 10 and {r["status"] for r in rows} == {"pending"}
        head = rows[-1]
        assert head["attempts"] >= 5 and "Connect" in head["last_error"], head
        assert receiver.requests == []
        await receiver.start()
        back = loop.time()
        try:
            await eventually(lambda: len(receiver.requests) >= 10, timeout=10, message="all ten")
            assert loop.time() - back <= 2.0 + 2.0  # retry_max, plus a loaded machine's slack
            await asyncio.sleep(units(3))
            bodies = [r.json() for r in receiver.requests]
            assert [(b["event"], b["data"].get("reason")) for b in bodies] == [
                (event, f"r{i}" if event == "emergency_stop" else None)
                for i in range(5)
                for event in ("emergency_stop", "resume")
            ]
            assert [b["id"] for b in bodies] == sorted({b["id"] for b in bodies})  # once each
            log = (await h.get("/api/notifications")).json()["notifications"]
            assert {r["status"] for r in log} == {"delivered"}
        finally:
            await receiver.stop()


async def test_undelivered_notices_are_delivered_after_a_hub_restart(tmp_path: Path) -> None:
    receiver = Receiver()
    config = _config(
        _webhook(receiver, "emergency_stop, resume", ", retry_initial: 0.1, retry_max: 0.5")
    )
    async with run_hub(config, env=ENV, data_dir=str(tmp_path)) as h:
        for i in range(3):
            await _stop_and_resume(h, f"before-{i}")
        await eventually(lambda: _attempted(h), message="an attempt on the receiver that is down")
    assert receiver.requests == []
    await receiver.start()
    try:
        async with run_hub(config, env=ENV, data_dir=str(tmp_path)) as h:
            await _stop_and_resume(h, "after")
            await eventually(lambda: len(receiver.requests) >= 8, message="eight deliveries")
            await asyncio.sleep(units(3))
            reasons = [r.json()["data"].get("reason") for r in receiver.requests]
            assert reasons == ["before-0", None, "before-1", None, "before-2", None, "after", None]
    finally:
        await receiver.stop()


async def _attempted(h: RunningHub) -> bool:
    rows = (await h.get("/api/notifications")).json()["notifications"]
    return (
        len(rows) == 6 and all(r["status"] == "pending" for r in rows) and rows[-1]["attempts"] > 0
    )


def _documented_verify() -> Any:
    """The ``verify`` function of docs/notifications.md, run as a reader would copy it."""
    doc = ROOT / "docs" / "notifications.md"
    section = doc.read_text().split("### Verifying the signature", 1)[1]
    (code,) = [b.text for b in blocks(doc, section) if b.lang == "python"][:1]
    namespace: dict[str, Any] = {}
    exec(compile(code, str(doc), "exec"), namespace)
    return namespace["verify"]


async def test_the_documented_verification_accepts_real_deliveries() -> None:
    verify = _documented_verify()
    receiver = Receiver()
    await receiver.start()
    try:
        async with run_hub(_config(_webhook(receiver, "'*'")), env=ENV) as h:
            await _stop_and_resume(h, "doc")
            await eventually(lambda: len(receiver.requests) >= 2, message="two deliveries")
        for req in receiver.requests:
            assert verify(SECRET, req.body, req.headers["X-MT4Hub-Signature"])
            assert not verify("wrong", req.body, req.headers["X-MT4Hub-Signature"])
    finally:
        await receiver.stop()


async def test_undelivered_notices_survive_a_killed_hub(tmp_path: Path) -> None:
    spec = {"XAUUSD": SymbolSpec(contract_size=100, digits=2)}
    sim = await start_sim("127.0.0.1", 0, symbols=spec, balance=1000.0, seed=3)
    receiver = Receiver()
    (tmp_path / "agents.yml").write_text(
        textwrap.dedent(
            f"""
            symbols: {{XAUUSD: {{contract_size: 100, digits: 2}}}}
            agents:
              agent_1: {{name: Atlas, strategy: amd, bridge: "{sim.url}", symbols: [XAUUSD],
                        risk: {{max_risk_per_trade: 1%, max_daily_loss: 5%, max_positions: 1}}}}
            notifications:
            """
        )
        + _webhook(receiver, "emergency_stop, resume", ", retry_initial: 0.1, retry_max: 0.5")
    )
    (tmp_path / "data").mkdir()
    hub = HubProc(tmp_path / "agents.yml", tmp_path / "data", ENV, tmp_path / "hub.log")
    try:
        await hub.start()
        for i in range(2):
            r = await hub.http.post("/api/emergency/stop-all", json={"reason": f"k{i}"})
            assert r.status_code == 200, r.text
            assert (await hub.http.post("/api/emergency/resume")).status_code == 200

        async def pending() -> bool:
            rows = (await hub.http.get("/api/notifications")).json()["notifications"]
            return len(rows) == 4 and rows[-1]["attempts"] > 0

        await eventually(pending, message="four pending notices, the first one tried")
        await hub.kill9()
        await receiver.start()
        await hub.start()
        await eventually(lambda: len(receiver.requests) >= 4, message="four deliveries")
        await asyncio.sleep(units(3))
        got = [(r.json()["event"], r.json()["data"].get("reason")) for r in receiver.requests]
        assert got == [("emergency_stop", "k0"), ("resume", None),
                       ("emergency_stop", "k1"), ("resume", None)]  # fmt: skip
    finally:
        await hub.close()
        await receiver.stop()
        await sim.close()


def test_a_full_queue_drops_new_notices_and_counts_them(tmp_path: Path) -> None:
    config = _config(_webhook(Receiver(), "emergency_stop"))
    notifier = Notifier(config.notifications, Outbox(tmp_path / "n.db"), ENV, capacity=2)
    for i in range(3):
        notifier.observe("system", None, {"event": "emergency_stop", "reason": f"r{i}"})
    notifier.observe("agent:agent_1:ticks", "XAUUSD", {"symbol": "XAUUSD"})
    health = notifier.health()
    assert (health.queued, health.dropped) == (2, 1)
