"""Bridge failures, each mapped to the hub error code it becomes.

BridgeError
├── BridgeUnavailable   connection refused or dropped (agent_offline)
├── BridgeTimeout       no answer in time; for an order the outcome is unknown (bridge_timeout)
├── BridgeServerError   5xx from the bridge (bridge_error)
├── BridgeRejected      the bridge refused the request, e.g. bad stops (bridge_error); an MT4
│                       error code rides along as ``mt4_code``
├── BridgeProtocolError the answer does not fit the bridge's profile (bridge_error)
└── BridgeNotSupported  the profile has no such operation; nothing was sent (not_supported)
"""

from __future__ import annotations

from typing import Any

from hub.bridge.mt4_errors import meaning

__all__ = [
    "BridgeError",
    "BridgeNotSupported",
    "BridgeProtocolError",
    "BridgeRejected",
    "BridgeServerError",
    "BridgeTimeout",
    "BridgeUnavailable",
]


class BridgeError(Exception):
    """Base of every bridge failure; ``code`` is the hub error code it maps to."""

    code = "bridge_error"

    def __init__(self, message: str, *, mt4_code: int | None = None) -> None:
        super().__init__(message)
        self.mt4_code = mt4_code

    @property
    def details(self) -> dict[str, Any] | None:
        """``{"mt4_error": {"code", "meaning"}}`` when the bridge gave an MT4 error code."""
        if self.mt4_code is None:
            return None
        return {"mt4_error": {"code": self.mt4_code, "meaning": meaning(self.mt4_code)}}


class BridgeUnavailable(BridgeError):
    """``sent`` is False when the connection was never made (the request surely not seen)."""

    code = "agent_offline"

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


class BridgeTimeout(BridgeError):
    code = "bridge_timeout"


class BridgeServerError(BridgeError):
    pass


class BridgeRejected(BridgeError):
    pass


class BridgeProtocolError(BridgeError):
    pass


class BridgeNotSupported(BridgeError):
    code = "not_supported"
