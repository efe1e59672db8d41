"""Errors a client can cause, each mapped to one error code and HTTP status (docs/protocol.md).

HubError
├── (code chosen per instance from ``STATUS``: bad_request, unauthorized, forbidden, not_found,
│    duplicate, risk_rejected, agent_disabled, not_supported, emergency_stop, rate_limited,
│    bridge_error, agent_offline, stale_quote, bridge_timeout, service_unavailable)
"""

from __future__ import annotations

from typing import Any

__all__ = ["STATUS", "HubError"]

STATUS: dict[str, int] = {
    "bad_request": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "duplicate": 409,
    "risk_rejected": 422,
    "agent_disabled": 422,
    # The bridge (its profile) cannot do this operation, e.g. close or modify.
    "not_supported": 422,
    "emergency_stop": 423,
    "rate_limited": 429,
    "bridge_error": 502,
    "agent_offline": 503,
    # No quote read from the bridge recently enough to check a trade against.
    "stale_quote": 503,
    "bridge_timeout": 504,
    # The records database, or Redis shared state, cannot answer right now.
    "service_unavailable": 503,
}


class HubError(Exception):
    """An error with a code from ``STATUS``, a human message and optional details."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        if code not in STATUS:
            raise ValueError(f"unknown error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    @property
    def status(self) -> int:
        return STATUS[self.code]

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            err["details"] = self.details
        return {"error": err}
