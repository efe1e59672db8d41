"""A real hub (tests.hubkit) served from a background thread, for synchronous test drivers.

schemathesis and hypothesis drive requests synchronously; the hub keeps running on its own
event loop in a thread, so both sides use real sockets and neither blocks the other.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

from hub.config import HubConfig
from tests.hubkit import RunningHub, run_hub
from tests.timing import eventually, units

__all__ = ["ThreadedHub", "threaded_hub"]


class ThreadedHub:
    """A running hub and the loop it lives on; ``call`` runs a coroutine there and waits."""

    def __init__(self, running: RunningHub, loop: asyncio.AbstractEventLoop) -> None:
        self.running = running
        self.loop = loop
        self.url = running.url
        self.ws_url = running.ws_url
        self.token = running.token

    def call(self, coro: Any, timeout: float = units(100)) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


@contextmanager
def threaded_hub(
    config: HubConfig | None = None, env: Mapping[str, str] | None = None
) -> Iterator[ThreadedHub]:
    started: Future[ThreadedHub] = Future()
    stop: list[asyncio.Event] = []

    async def serve() -> None:
        stop.append(asyncio.Event())
        async with run_hub(config, env) as running:
            await eventually(lambda: all(a.online for a in running.hub.registry.agents.values()))
            started.set_result(ThreadedHub(running, asyncio.get_running_loop()))
            await stop[0].wait()

    def main() -> None:
        try:
            asyncio.run(serve())
        except BaseException as exc:  # surfaces in the test thread, not as a thread warning
            if not started.done():
                started.set_exception(exc)
            else:
                raise

    thread = threading.Thread(target=main, name="fuzz-hub", daemon=True)
    thread.start()
    hub = started.result(timeout=units(200))
    try:
        yield hub
    finally:
        hub.loop.call_soon_threadsafe(stop[0].set)
        thread.join(timeout=units(200))
        assert not thread.is_alive(), "the hub did not shut down"
