"""MT4 trade server return codes: what a bridge's error code means, and which may be retried.

Only codes that prove the order never reached the market are retried, once, after a short
delay (:data:`RETRYABLE`): 136 off quotes and 146 trade context busy. A requote (138) and
every other code are answered at once: the price moved or the request itself is wrong, and a
second send could trade at a price the caller never saw (docs/bridges.md, "Retry policy").
"""

from __future__ import annotations

__all__ = ["MEANINGS", "RETRYABLE", "RETRY_DELAY", "meaning"]

MEANINGS: dict[int, str] = {
    0: "no error",
    1: "no error, trade conditions not changed",
    2: "common error",
    3: "invalid trade parameters",
    4: "trade server is busy",
    5: "old version of the client terminal",
    6: "no connection with trade server",
    7: "not enough rights",
    8: "too frequent requests",
    9: "malfunctional trade operation",
    64: "account disabled",
    65: "invalid account",
    128: "trade timeout",
    129: "invalid price",
    130: "invalid stops",
    131: "invalid trade volume",
    132: "market is closed",
    133: "trade is disabled",
    134: "not enough money",
    135: "price changed",
    136: "off quotes",
    137: "broker is busy",
    138: "requote",
    139: "order is locked",
    140: "long positions only allowed",
    141: "too many requests",
    145: "modification denied because order is too close to market",
    146: "trade context is busy",
    147: "expirations are denied by broker",
    148: "the amount of open and pending orders has reached the limit set by the broker",
    149: "hedging is prohibited",
    150: "prohibited by FIFO rules",
    4108: "invalid ticket",
    4109: "trading is not allowed in the expert properties",
    4110: "longs are not allowed in the expert properties",
    4111: "shorts are not allowed in the expert properties",
}

RETRYABLE = frozenset({136, 146})
RETRY_DELAY = 0.5  # seconds before the one retry


def meaning(code: int) -> str:
    return MEANINGS.get(code, "unknown trade server error")
