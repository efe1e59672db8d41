"""Runs each agent's poller on exactly one instance, and mirrors the others' agents.

Alone (no Redis) every poller simply runs. With Redis, an instance polls an agent only
while it holds the ``poll:{agent}`` lease (renewed every TTL/3); when the holder dies its
lease expires and another instance takes over within 2 x TTL. Agents polled elsewhere are
mirrored into this instance's registry from the broker's channels, so REST, risk checks
and the summary see every agent whichever instance answers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import msgspec

from channels import cancellation, names
from channels.broker import Publication
from channels.node import Node
from hub.agents import AgentRuntime, AgentStatus, Registry
from hub.bridge.models import Account, PositionList, Tick
from hub.polling import AgentPoller
from hub.trading.coordination import Coordination

__all__ = ["Mirror", "PollSupervisor"]

log = logging.getLogger("mt4hub.supervisor")


class PollSupervisor:
    def __init__(
        self,
        coordination: Coordination,
        pollers: dict[str, AgentPoller],
        lease_ttl: float,
        on_leader: Callable[[bool], None],
    ) -> None:
        self.coord = coordination
        self.pollers = pollers
        self.lease_ttl = lease_ttl
        self.on_leader = on_leader  # holds the `summary` lease (publishes the summary)
        self.running: dict[str, asyncio.Task[None]] = {}

    @property
    def polled(self) -> list[str]:
        return sorted(self.running)

    async def run(self) -> None:
        try:
            if not self.coord.shared:
                for agent_id, poller in self.pollers.items():
                    task = asyncio.create_task(poller.run(), name=f"poll:{agent_id}")
                    self.running[agent_id] = task
                self.on_leader(True)
                await asyncio.Event().wait()
            while True:
                await self._tick()
                await cancellation.sleep(self.lease_ttl / 3)
        finally:
            await self.stop()

    async def _tick(self) -> None:
        for agent_id, poller in self.pollers.items():
            held = await self._hold(f"poll:{agent_id}")
            task = self.running.get(agent_id)
            if held and task is None:
                log.info("lease_acquired agent=%s instance=%s", agent_id, self.coord.instance_id)
                self.running[agent_id] = asyncio.create_task(poller.run(), name=f"poll:{agent_id}")
            elif not held and task is not None:
                log.warning("lease_lost agent=%s instance=%s", agent_id, self.coord.instance_id)
                await _cancel([self.running.pop(agent_id)])
        self.on_leader(await self._hold("summary"))

    async def _hold(self, name: str) -> bool:
        try:
            return await self.coord.hold_lease(name)
        except Exception as exc:  # Redis down: stop polling rather than risk a double poll
            log.warning("lease_error lease=%s error=%r", name, str(exc))
            return False

    async def stop(self) -> None:
        stopped, self.running = self.running, {}
        await _cancel(list(stopped.values()))
        if self.coord.shared:
            for agent_id in stopped:
                await self._release(f"poll:{agent_id}")
            await self._release("summary")

    async def _release(self, name: str) -> None:
        try:
            await self.coord.release_lease(name)
        except Exception as exc:  # it expires by itself within one TTL
            log.warning("lease_release_failed lease=%s error=%r", name, str(exc))


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel ``tasks`` and wait until they are done (a cancel of the caller still raises)."""
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks)
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            log.error("poller_failed task=%s error=%r", task.get_name(), task.exception())


_KINDS: tuple[names.AgentKind, ...] = ("account", "positions", "ticks", "status")


class Mirror:
    """A node subscriber feeding the registry with agents polled by other instances."""

    agents: frozenset[str] | None = None

    def __init__(
        self,
        registry: Registry,
        is_local: Callable[[str], bool],
        on_change: Callable[[AgentRuntime], None],
        on_local: Callable[[Publication], None] | None = None,
    ) -> None:
        self.registry = registry
        self.is_local = is_local
        self.on_change = on_change
        self.on_local = on_local  # a publication on a channel of an agent polled here

    async def attach(self, node: Node) -> None:
        """Subscribe to every agent's state, then take what was published before now."""
        for kind in _KINDS:
            await node.add(self, names.every_agent(kind))
        for agent_id in self.registry.agents:
            for kind in _KINDS:
                for pub in await node.broker.last(names.agent_channel(agent_id, kind)):
                    self.on_publication(pub, "")

    def on_publication(self, pub: Publication, frame: str) -> None:
        agent_id = names.agent_of(pub.channel)
        agent = self.registry.get(agent_id) if agent_id else None
        if agent is None:
            return
        kind = names.kind_of(pub.channel)
        if self.is_local(agent.id):
            if self.on_local is not None and kind != "ticks":
                self.on_local(pub)
            return
        try:
            if kind == "ticks":
                tick = msgspec.json.decode(pub.data, type=Tick)
                agent.ticks[tick.symbol] = tick
                return
            if kind == "account":
                agent.account = msgspec.json.decode(pub.data, type=Account)
            elif kind == "positions":
                listed = msgspec.json.decode(pub.data, type=PositionList)
                agent.positions, agent.unreadable = listed.positions, listed.unreadable
            else:
                status = msgspec.json.decode(pub.data, type=AgentStatus)
                agent.online = status.status == "online"
                agent.error = status.error
                agent.status_since = status.since
                agent.trading = status.trading
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.error("mirror_bad_payload channel=%s seq=%s error=%s", pub.channel, pub.seq, exc)
            return
        self.on_change(agent)
