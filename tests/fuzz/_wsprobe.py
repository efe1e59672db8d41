"""Synchronous WebSocket helpers for fuzzing ``/ws``: a prober and a well-behaved watcher.

:class:`Prober` sends one frame, then a ``ping`` with its own id, and returns every
message that came back before that ``pong``: the replies to the frame, in order. It
reconnects before the per-connection rate limit (burst 100) could be reached, so the
fuzzer is never throttled by pace alone. :class:`Watcher` is a second client subscribed
to live ticks on its own thread; it records every event so tests can check it kept
getting them, gap-free, while the fuzzer ran.
"""

from __future__ import annotations

import itertools
import json
import threading
from contextlib import ExitStack
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.timing import units

__all__ = ["LEAKS", "Prober", "Watcher"]

LEAKS = ("Traceback", 'File "')  # what a leaked Python traceback looks like
FRAMES_PER_CONNECTION = 80  # two frames a probe; the session's burst is 100


def _open(stack: ExitStack, url: str, token: str) -> ClientConnection:
    ws = connect(
        url,
        additional_headers={"Authorization": f"Bearer {token}"},
        proxy=None,
        max_size=None,
        open_timeout=units(50),
        close_timeout=units(10),
    )
    stack.enter_context(ws)
    welcome = json.loads(ws.recv(timeout=units(50)))
    assert welcome["type"] == "welcome", welcome
    return ws


def _leak_free(text: str, frame: Any) -> None:
    for leak in LEAKS:
        assert leak not in text, f"traceback leaked for frame {frame!r}: {text[:500]}"


class Prober:
    """One fuzzing client; ``probe(frame)`` returns the replies to that frame."""

    def __init__(self, url: str, token: str) -> None:
        self._url = url
        self._token = token
        self._ws: ClientConnection | None = None
        self._stack = ExitStack()
        self._sent = 0
        self._ids = itertools.count()

    def close(self) -> None:
        self._stack.close()
        self._ws = None

    def probe(self, frame: str | bytes, wait_for_id: Any = None) -> list[dict[str, Any]]:
        """Send ``frame``; the replies before our sync pong (and the one with ``wait_for_id``)."""
        if self._ws is None or self._sent + 2 > FRAMES_PER_CONNECTION:
            self.close()
            self._ws, self._sent = _open(self._stack, self._url, self._token), 0
        ws = self._ws
        sync = f"sync-{next(self._ids)}"
        replies: list[dict[str, Any]] = []
        synced = False
        try:
            ws.send(frame)
            ws.send(json.dumps({"op": "ping", "id": sync}))
            self._sent += 2
            while not synced or (
                wait_for_id is not None and all(r.get("id") != wait_for_id for r in replies)
            ):
                text = ws.recv(timeout=units(50))
                assert isinstance(text, str), f"binary frame from the hub: {text!r}"
                _leak_free(text, frame)
                message = json.loads(text)
                if message.get("type") == "pong" and message.get("id") == sync:
                    synced = True
                elif message.get("type") != "heartbeat":
                    replies.append(message)
        except ConnectionClosed as exc:
            self.close()  # the next probe (hypothesis shrinking) starts on a fresh connection
            message = f"the hub closed the connection ({exc}) after {frame!r:.300}"
            raise AssertionError(message) from None
        except TimeoutError:
            self.close()
            raise AssertionError(f"no reply in time to {frame!r:.300}; got {replies}") from None
        return replies


class Watcher:
    """A well-behaved subscriber to ``channel`` on its own thread."""

    def __init__(self, url: str, token: str, channel: str) -> None:
        self.events: list[dict[str, Any]] = []
        self.problems: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._stack = ExitStack()
        self._ws = _open(self._stack, url, token)
        self._ws.send(json.dumps({"op": "subscribe", "id": "watch", "channels": [channel]}))
        self._thread = threading.Thread(target=self._run, name="fuzz-watcher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                text = self._ws.recv(timeout=units(1))
            except TimeoutError:
                continue
            except ConnectionClosed as exc:
                self.problems.append(f"watcher disconnected: {exc}")
                return
            with self._lock:
                if not isinstance(text, str):
                    self.problems.append(f"binary frame from the hub: {text!r:.300}")
                    continue
                message = json.loads(text)
                if any(leak in text for leak in LEAKS):
                    self.problems.append(f"traceback leaked to the watcher: {text[:300]}")
                if message["type"] == "error":
                    self.problems.append(f"watcher got an error: {text[:300]}")
                if message["type"] in ("snapshot", "event"):
                    self.events.append(message)

    def count(self) -> int:
        with self._lock:
            return len(self.events)

    def assert_live_since(self, count: int) -> None:
        """New events arrived after ``count`` were seen, gap-free, and nothing went wrong."""
        deadline = units(50)
        waited = 0.0
        while self.count() <= count and waited < deadline:
            self._stop.wait(units(1))
            waited += units(1)
        with self._lock:
            assert not self.problems, self.problems
            assert len(self.events) > count, "the watcher stopped getting events"
            seqs = [e["seq"] for e in self.events if e["type"] == "event"]
            assert all(b == a + 1 for a, b in itertools.pairwise(seqs)), f"seq gap: {seqs}"

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=units(50))
        self._stack.close()
