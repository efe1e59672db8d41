"""A simulator in a bridge profile's dialect whose answers can be bent the way real MT4
bridges write them (tests/hub/bridge/test_quirks.py, tests/hub/test_polling_profiles.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from hub.bridge.profile import BridgeProfile
from hub.bridge.sim import SimMarket
from hub.bridge.sim_server import create_sim_app
from hub.config import HubConfig, SymbolSpec, parse_config

__all__ = ["SPECS", "Quirk", "QuirkyBridge", "hub_on", "rows", "serve"]

SPECS = {"XAUUSD": SymbolSpec(contract_size=100, digits=2)}
Quirk = Callable[[Any], Any]  # the answer's payload -> the bent payload


@dataclass
class QuirkyBridge:
    """A simulator in ``profile``'s dialect whose answers of some operations are bent."""

    profile: BridgeProfile
    model: SimMarket
    url: str = ""
    bend: dict[str, Quirk] = field(default_factory=dict)  # operation -> its quirk
    replace: dict[str, Any] = field(default_factory=dict)  # operation -> the whole answer
    requests: list[tuple[str, str, bytes]] = field(default_factory=list)

    def key(self, operation: str, hub: str) -> str:
        """The profile's name for the hub's field ``hub`` in ``operation``'s answers."""
        op = self.profile.operation(operation)
        spec = op.fields.get(hub, hub) if op is not None else hub
        return spec if isinstance(spec, str) else spec[0]

    def body_key(self, operation: str, hub: str) -> str:
        op = self.profile.operation(operation)
        assert op is not None
        return op.body.get(hub, hub)

    def operation_of(self, request: web.Request) -> str | None:
        resource = request.match_info.route.resource
        where = (request.method, resource.canonical if resource is not None else "")
        for name in ("account", "tick", "positions", "history", "open", "close", "modify"):
            op = self.profile.operation(name)
            if op is not None and (op.method, op.path) == where:
                return name
        return None

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append((request.method, request.path, await request.read()))
        name = self.operation_of(request)
        if name in self.replace:
            return web.json_response(self.replace[name])
        response = await handler(request)
        quirk = self.bend.get(name or "")
        if quirk is None or response.status != 200:
            return response
        assert isinstance(response, web.Response) and response.body is not None
        doc = json.loads(bytes(response.body))  # type: ignore[arg-type]
        data_key = self.profile.envelope.data
        if data_key is None:
            doc = quirk(doc)
        else:
            doc[data_key] = quirk(doc[data_key])
        return web.json_response(doc)


async def serve(bridge: QuirkyBridge, **app_options: Any) -> web.AppRunner:
    app = create_sim_app(bridge.model, profile=bridge.profile, **app_options)
    app.middlewares.append(bridge.middleware)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    bridge.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    return runner


def rows(bend: Callable[[dict[str, Any]], None]) -> Quirk:
    """A quirk applied to each row of a list answer."""

    def quirk(payload: Any) -> Any:
        for row in payload:
            bend(row)
        return payload

    return quirk


def hub_on(*bridges: tuple[str, str], max_positions: int = 1, extra: str = "") -> HubConfig:
    """A fast-polling hub with one XAUUSD agent (agent_1, agent_2, ...; balance 1000, 1 %
    a trade) per ``(url, profile)``; ``extra``: more top-level YAML (``global_risk: ...``)."""
    agents = "".join(
        f"""
  agent_{n}: {{name: A{n}, strategy: s, bridge: "{url}", bridge_profile: {profile},
            symbols: [XAUUSD], initial_balance: 1000,
            risk: {{max_risk_per_trade: 1%, max_daily_loss: 5%,
                    max_positions: {max_positions}}}}}"""
        for n, (url, profile) in enumerate(bridges, 1)
    )
    return parse_config(
        f"""
polling: {{tick_interval: 0.05, account_interval: 0.05, history_interval: 0.05, timeout: 0.5,
          backoff_initial: 0.05, backoff_max: 0.2}}
symbols: {{XAUUSD: {{contract_size: 100, digits: 2}}}}
{extra}
agents:{agents}
""",
        "test-config",
    )
