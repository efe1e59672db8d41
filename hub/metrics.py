"""Prometheus metrics of one hub instance (its own registry: no global state)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge

if TYPE_CHECKING:
    from hub.app import Hub

__all__ = ["Metrics"]


class Metrics:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.registry = r = CollectorRegistry()
        self.order_events = Counter(
            "mt4hub_order_events", "Order events published", ["agent", "event"], registry=r
        )
        self.publications = Gauge("mt4hub_publications", "Publications fanned out", registry=r)
        self.connections = Gauge("mt4hub_ws_connections", "Open WebSocket sessions", registry=r)
        self.online = Gauge(
            "mt4hub_agent_online", "1 when the agent's bridge answers", ["agent"], registry=r
        )
        self.polls = Gauge("mt4hub_agent_polls", "Successful polls", ["agent"], registry=r)
        self.poll_errors = Gauge("mt4hub_agent_poll_errors", "Failed polls", ["agent"], registry=r)
        self.latency = Gauge("mt4hub_agent_latency_ms", "Last poll latency", ["agent"], registry=r)
        self.queue = Gauge("mt4hub_records_queue", "Records waiting to be written", registry=r)
        self.spool = Gauge("mt4hub_records_spooled", "Records in the durable spool", registry=r)
        self.written = Gauge("mt4hub_records_written", "Records written", registry=r)
        self.stopped = Gauge(
            "mt4hub_emergency_stop", "1 while the emergency stop is on", registry=r
        )
        self.notified = Gauge(
            "mt4hub_notifications_delivered", "Notifications delivered", ["target"], registry=r
        )
        self.notify_failures = Gauge(
            "mt4hub_notifications_failed_attempts",
            "Notification delivery attempts that failed (each is retried)",
            ["target"],
            registry=r,
        )
        self.notify_dropped = Gauge(
            "mt4hub_notifications_dropped", "Notices dropped: the queue was full", registry=r
        )
        self.tasks = Gauge("mt4hub_asyncio_tasks", "asyncio tasks alive in the hub", registry=r)

    def refresh(self) -> None:
        hub = self.hub
        self.publications.set(hub.node.published)
        self.connections.set(len(hub.sessions))
        for agent in hub.registry.agents.values():
            self.online.labels(agent.id).set(1 if agent.online else 0)
            self.polls.labels(agent.id).set(agent.stats.polls)
            self.poll_errors.labels(agent.id).set(agent.stats.errors)
            self.latency.labels(agent.id).set(agent.stats.latency_ms or 0)
        health = hub.writer.health()
        self.queue.set(health.queue_depth)
        self.spool.set(health.spool_records)
        self.written.set(health.written)
        self.stopped.set(1 if hub.emergency.stopped else 0)
        notify = hub.notifier.health()
        for target, count in notify.delivered.items():
            self.notified.labels(target).set(count)
        for target, count in notify.failed_attempts.items():
            self.notify_failures.labels(target).set(count)
        self.notify_dropped.set(notify.dropped)
        self.tasks.set(len(asyncio.all_tasks()))
