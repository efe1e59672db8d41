"""A CPU-bound process for the busy-machine variant: ``python -m bench.hog``.

Pinned (by :class:`bench.rig.Rig`) to the server's core, it spins without pause so the
server under test shares its core with one other busy process, as on a machine where
other work runs. It answers the :mod:`bench._proc` protocol: ready, then ``quit``.
"""

from __future__ import annotations

import json
import sys
import threading

__all__ = ["main"]


def _spin() -> None:
    n = 0
    while True:
        n += 1


def main() -> None:
    threading.Thread(target=_spin, daemon=True).start()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        if json.loads(line).get("cmd") == "quit":
            print(json.dumps({"ok": True}), flush=True)
            return
        print(json.dumps({"error": "hog: only quit is understood"}), flush=True)


if __name__ == "__main__":
    main()
