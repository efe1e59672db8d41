"""Sleep for retry and polling loops that a lost cancel cannot keep alive.

Some awaits consume a ``Task.cancel()`` without raising ``CancelledError``: redis-py
commands cancelled mid-flight (measured: most cancels landing in a command with
redis-py 8.1), and ``asyncio.gather`` when a child fails in the same loop turn. The task
then runs on as if nothing happened, and whoever waits for it to stop (a shutdown) waits
forever. ``Task.cancelling()`` still counts the request, so every loop pause checks it.

Only for background tasks of our own (pollers, lease and renew loops): on Python 3.11 a
task whose ``asyncio.TaskGroup`` failed keeps ``cancelling()`` raised, and request tasks
run inside framework task groups.
"""

from __future__ import annotations

import asyncio

__all__ = ["raise_if_cancelled", "sleep"]


def raise_if_cancelled() -> None:
    """Raise ``CancelledError`` if this task was asked to stop and the request was lost."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def sleep(seconds: float) -> None:
    """``asyncio.sleep``, first honouring a stop requested while the loop was busy."""
    raise_if_cancelled()
    await asyncio.sleep(seconds)
