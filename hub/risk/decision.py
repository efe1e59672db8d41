"""The risk engine's answer: :class:`RiskDecision`, allowed or denied by one named check."""

from __future__ import annotations

from typing import Literal

import msgspec

__all__ = ["DenialCode", "Detail", "RiskDecision", "allow", "deny"]

DenialCode = Literal["agent_disabled", "emergency_stop", "risk_rejected"]
Detail = float | int | str | bool | list[str] | None


class RiskDecision(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Allowed, or denied by ``check`` with the ``limit`` it enforces and the ``value`` seen.

    ``code`` is the error code of a denial (None when allowed). Money in
    ``limit``/``value`` is rounded to cents. Accepted opens carry ``risk`` (money at
    the SL, account currency) and ``risk_pct`` (percent of balance); accepted signal
    sizings carry ``lots``.
    """

    allowed: bool
    code: DenialCode | None = None
    check: str | None = None
    limit: Detail = None
    value: Detail = None
    message: str = ""
    risk: float | None = None
    risk_pct: float | None = None
    lots: float | None = None

    def details(self) -> dict[str, Detail]:
        """The ``error.details`` body: ``{"check", "limit", "value"}`` (docs/risk.md)."""
        return {"check": self.check, "limit": self.limit, "value": self.value}


def deny(
    check: str,
    message: str,
    *,
    limit: Detail = None,
    value: Detail = None,
    code: DenialCode = "risk_rejected",
) -> RiskDecision:
    return RiskDecision(
        allowed=False, code=code, check=check, limit=limit, value=value, message=message
    )


def allow(
    message: str,
    *,
    risk: float | None = None,
    risk_pct: float | None = None,
    lots: float | None = None,
) -> RiskDecision:
    return RiskDecision(allowed=True, message=message, risk=risk, risk_pct=risk_pct, lots=lots)
