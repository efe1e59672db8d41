"""Security: JWTs, agent scopes, command rate limit, Origin, and no secrets in logs."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import jwt
import pytest
import websockets

from hub.auth import Access, CommandLimiter
from hub.errors import HubError
from hub.logs import LineFormatter
from tests.hubkit import RunningHub, hub_config, run_hub
from tests.timing import eventually

SECRET = "jwt-secret-for-tests-0123456789abcdef"


def token(**claims: Any) -> str:
    base = {"sub": "tester", "role": "read", "exp": int(time.time()) + 600}
    return jwt.encode({**base, **claims}, SECRET, algorithm="HS256")


def bearer(t: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {t}"}


async def test_jwt_roles_expiry_signature_and_scope() -> None:
    async with run_hub(env={"HUB_JWT_SECRET": SECRET}) as h:
        assert (await h.get("/api/agents", headers=bearer(token()))).status_code == 200
        expired = token(exp=int(time.time()) - 10)
        assert (await h.get("/api/agents", headers=bearer(expired))).status_code == 401
        forged = jwt.encode(
            {"sub": "x", "role": "admin", "exp": int(time.time()) + 60},
            "other-secret-0123456789abcdefghij",
            algorithm="HS256",
        )
        assert (await h.get("/api/agents", headers=bearer(forged))).status_code == 401
        no_exp = jwt.encode({"sub": "x", "role": "read"}, SECRET, algorithm="HS256")
        assert (await h.get("/api/agents", headers=bearer(no_exp))).status_code == 401
        bad_role = token(role="root")
        assert (await h.get("/api/agents", headers=bearer(bad_role))).status_code == 401
        scoped = token(role="trade", agents=["agent_1"])
        r = await h.get("/api/agents/agent_2", headers=bearer(scoped))
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
        listed = (await h.get("/api/agents", headers=bearer(scoped))).json()
        assert [a["agent_id"] for a in listed] == ["agent_1"]
        summary = (await h.get("/api/agents/summary", headers=bearer(scoped))).json()
        assert [a["agent_id"] for a in summary["agents"]] == ["agent_1"]
        r = await h.post(
            "/api/agents/agent_2/trade",
            {"symbol": "EURUSD", "action": "buy", "lots": 0.01},
            headers=bearer(scoped),
        )
        assert r.status_code == 403
        r = await h.post(
            "/api/agents/agent_1/trade",
            {"symbol": "XAUUSD", "action": "buy", "lots": 0.01},
            headers=bearer(token()),
        )
        assert r.status_code == 403  # a read JWT cannot trade


async def test_expired_jwt_closes_the_socket_with_4001() -> None:
    async with run_hub(env={"HUB_JWT_SECRET": SECRET}) as h:
        expired = token(exp=int(time.time()) - 10)
        async with websockets.connect(f"{h.ws_url}?token={expired}") as ws:
            assert json.loads(await ws.recv())["error"]["code"] == "unauthorized"
            with pytest.raises(websockets.ConnectionClosed) as info:
                await ws.recv()
            assert info.value.rcvd is not None and info.value.rcvd.code == 4001


async def test_commands_past_the_per_token_rate_are_refused() -> None:
    cfg = hub_config("server: {command_rate: 1, command_burst: 3}\n")
    async with run_hub(cfg) as h:
        codes = []
        for _ in range(5):
            r = await h.post(
                "/api/agents/agent_1/trade", {"symbol": "XAUUSD", "action": "buy", "lots": 0.01}
            )
            codes.append(r.json()["error"]["code"] if r.status_code != 200 else "ok")
        assert codes[-1] == "rate_limited" and codes.count("rate_limited") == 2
        r = await h.post(
            "/api/agents/agent_1/trade", {"symbol": "XAUUSD", "action": "buy", "lots": 0.01}
        )
        assert r.status_code == 429


async def test_ws_origin_must_be_same_origin_or_allowed() -> None:
    async with run_hub(hub_config("auth: {allowed_origins: ['http://dash.example']}\n")) as h:
        url = f"{h.ws_url}?token={h.token}"
        with pytest.raises(websockets.InvalidStatus):
            async with websockets.connect(url, origin="http://evil.example"):  # type: ignore[arg-type]
                pass
        for origin in ("http://dash.example", f"http://127.0.0.1:{h.port}"):
            async with websockets.connect(url, origin=origin) as ws:  # type: ignore[arg-type]
                assert json.loads(await ws.recv())["type"] == "welcome"


async def test_tokens_never_reach_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with run_hub() as h:
        await h.http.get("/api/agents", params={"token": h.token})
        await h.get("/api/agents/summary")
        await h.http.get("/api/agents", params={"token": "wrong-secret-value"})
        async with websockets.connect(f"{h.ws_url}?token={h.token}") as ws:
            await ws.recv()
    hub_side = ("mt4hub", "uvicorn", "channels", "hub")  # not the test's own http client
    lines = LineFormatter()  # what `mt4hub run` writes: every library's records go through it
    text = "\n".join(lines.format(r) for r in caplog.records if r.name.startswith(hub_side))
    assert "http GET /api/agents?token=*** 200" in text
    assert h.token not in text and "wrong-secret-value" not in text


async def test_summary_totals_follow_the_scope() -> None:
    async with run_hub(env={"HUB_JWT_SECRET": SECRET}) as h:
        await _online(h)
        scoped = token(agents=["agent_2", "agent_3"])
        s = (await h.get("/api/agents/summary", headers=bearer(scoped))).json()
        assert s["total_balance"] == 1500.0 and s["agents_online"] == 2


async def _online(h: RunningHub) -> None:
    await eventually(lambda: all(a.account for a in h.hub.registry.agents.values()))


async def test_connections_per_token_are_limited_and_freed_on_close() -> None:
    async with run_hub(hub_config("server: {max_connections_per_token: 2}\n")) as h:
        url = f"{h.ws_url}?token={h.token}"
        async with websockets.connect(url) as one, websockets.connect(url) as two:
            for ws in (one, two):
                assert json.loads(await ws.recv())["type"] == "welcome"
            async with websockets.connect(url) as three:
                msg = json.loads(await three.recv())
                assert msg["error"]["code"] == "rate_limited"
                with pytest.raises(websockets.ConnectionClosed) as info:
                    await three.recv()
                assert info.value.rcvd is not None and info.value.rcvd.code == 4029
        await eventually(lambda: "admin" not in h.hub.slots.open)
        async with websockets.connect(url) as again:
            assert json.loads(await again.recv())["type"] == "welcome"


async def test_cors_allows_only_configured_origins() -> None:
    async with run_hub(hub_config("auth: {allowed_origins: ['http://dash.example']}\n")) as h:
        preflight = {
            "Origin": "http://dash.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization, Content-Type",
        }
        r = await h.http.options("/api/agents/agent_1/trade", headers=preflight)
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "http://dash.example"
        r = await h.http.options(
            "/api/agents/agent_1/trade", headers={**preflight, "Origin": "http://evil.example"}
        )
        assert r.status_code == 400 and "access-control-allow-origin" not in r.headers
        r = await h.get("/api/agents", headers={**h.headers, "Origin": "http://evil.example"})
        assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


async def sse_refusal(h: RunningHub, params: dict[str, str]) -> tuple[int, str | None]:
    """The status of ``/api/stream`` and its error code (None while it streams)."""
    async with h.http.stream("GET", "/api/stream", params=params, headers=h.headers) as r:
        if r.status_code == 200:
            return 200, None
        await r.aread()
        return r.status_code, r.json()["error"]["code"]


async def test_sse_streams_count_toward_the_per_token_connection_cap() -> None:
    async with run_hub(hub_config("server: {max_connections_per_token: 2}\n")) as h:
        url = f"{h.ws_url}?token={h.token}"
        params = {"channels": "system"}
        async with (
            websockets.connect(url) as ws,
            h.http.stream("GET", "/api/stream", params=params, headers=h.headers) as sse,
        ):
            assert json.loads(await ws.recv())["type"] == "welcome"
            assert sse.status_code == 200
            assert await sse_refusal(h, params) == (429, "rate_limited")
            async with websockets.connect(url) as third:
                assert json.loads(await third.recv())["error"]["code"] == "rate_limited"
        await eventually(lambda: "admin" not in h.hub.slots.open)
        async with h.http.stream("GET", "/api/stream", params=params, headers=h.headers) as again:
            assert again.status_code == 200


async def test_sse_and_ws_refuse_more_subscriptions_than_the_cap() -> None:
    async with run_hub(hub_config("server: {max_subscriptions: 3}\n")) as h:
        many = [f"agent:agent_{i}:*" for i in range(4)]
        assert await sse_refusal(h, {"channels": ",".join(many)}) == (429, "rate_limited")
        async with websockets.connect(f"{h.ws_url}?token={h.token}") as ws:
            await ws.recv()
            await ws.send(json.dumps({"op": "subscribe", "id": "s", "channels": many}))
            reply = json.loads(await ws.recv())
            assert reply["id"] == "s" and reply["error"]["code"] == "rate_limited", reply
            with pytest.raises(websockets.ConnectionClosed) as info:
                await ws.recv()
            assert info.value.rcvd is not None and info.value.rcvd.code == 4029


async def test_a_jwt_subject_never_shares_a_configured_tokens_name() -> None:
    limits = "server: {max_connections_per_token: 1, command_rate: 0.01, command_burst: 1}\n"
    async with run_hub(hub_config(limits), env={"HUB_JWT_SECRET": SECRET}) as h:
        impostor = token(sub="admin", role="trade")
        me = (await h.get("/api/whoami", headers=bearer(impostor))).json()
        assert me["name"] == "jwt:admin"
        async with websockets.connect(h.ws_url, additional_headers=bearer(impostor)) as ws:
            assert json.loads(await ws.recv())["type"] == "welcome"
            async with websockets.connect(f"{h.ws_url}?token={h.token}") as real:
                assert json.loads(await real.recv())["type"] == "welcome"  # its own slot
        signal = {"signal_id": "j-1", "symbol": "XAUUSD", "direction": "long",
                  "confidence": 0.1, "sl": 1.0}  # fmt: skip
        r = await h.post("/api/signals", signal, headers=bearer(impostor))
        assert r.status_code == 200, r.text
        r = await h.post("/api/signals", {**signal, "signal_id": "a-1"})
        assert r.status_code == 200, r.text  # the real admin's rate is its own
        rows = (await h.get("/api/signals")).json()["signals"]
        assert {row["signal_id"]: row["payload"]["by"] for row in rows} == {
            "j-1": "jwt:admin",
            "a-1": "admin",
        }


async def test_malformed_jwt_claims_are_401_never_a_500(caplog: pytest.LogCaptureFixture) -> None:
    async with run_hub(env={"HUB_JWT_SECRET": SECRET}) as h:
        bad = [
            {"role": ["admin"]},
            {"role": {"admin": True}},
            {"role": None},
            {"sub": 7},
            {"sub": ["admin"]},
            {"sub": ""},
            {"agents": "agent_1"},
            {"agents": [1, 2]},
            {"agents": {"agent_1": True}},
            {"agents": ["agent 1"]},
            {"exp": "later"},
        ]
        for claims in bad:
            forged = token(**claims)
            r = await h.get("/api/agents", headers=bearer(forged))
            assert r.status_code == 401, (claims, r.status_code, r.text)
            async with websockets.connect(h.ws_url, additional_headers=bearer(forged)) as ws:
                assert json.loads(await ws.recv())["error"]["code"] == "unauthorized", claims
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


def test_the_command_limiter_forgets_buckets_that_refilled() -> None:
    """One bucket per token name that sends commands (JWT subjects are unbounded): a bucket
    back to its full burst is the same as none, and is dropped."""
    limiter = CommandLimiter(rate=1000.0, burst=5)
    for n in range(5000):
        limiter.check(Access(name=f"jwt:user-{n}", role="trade", agents=None))
    assert len(limiter._buckets) <= CommandLimiter.MAX_BUCKETS
    limiter = CommandLimiter(rate=0.001, burst=2)  # nothing refills: every bucket is kept
    alice = Access(name="alice", role="trade", agents=None)
    limiter.check(alice)
    limiter.check(alice)
    with pytest.raises(HubError) as limited:
        limiter.check(alice)
    assert limited.value.code == "rate_limited"
