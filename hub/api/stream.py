"""Live channels: /ws, SSE and channel history (wired once channels/session lands)."""

from __future__ import annotations

from starlette.routing import BaseRoute

__all__ = ["routes"]

routes: list[BaseRoute] = []
