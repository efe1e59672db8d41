"""The results of one run, as one msgspec struct (``bench/results/latest.json``)."""

from __future__ import annotations

import msgspec

from bench.churn import ChurnResult
from bench.commands import RiskResult, RoundTripResult
from bench.fanout import FanoutResult, IdleResult, SlowConsumerResult
from bench.poller import PollerResult
from bench.records import RecordsResult
from bench.redis_path import RedisPathResult

__all__ = ["Results", "decode", "encode"]


class Results(msgspec.Struct, kw_only=True):
    scale: str
    started: str  # ISO time, UTC
    seconds: float = 0.0
    machine: dict[str, str] = {}
    commands: list[str] = []
    fanout: FanoutResult | None = None
    slow_consumer: list[SlowConsumerResult] | None = None
    idle: IdleResult | None = None
    round_trip: RoundTripResult | None = None
    risk: RiskResult | None = None
    poller: PollerResult | None = None
    records: RecordsResult | None = None
    churn: ChurnResult | None = None
    redis_path: RedisPathResult | None = None
    errors: dict[str, str] = {}  # benchmark -> what failed
    rerun: dict[str, str] = {}  # benchmark -> when and how it was re-run alone (--only)


def encode(results: Results) -> bytes:
    return msgspec.json.format(msgspec.json.encode(results), indent=2) + b"\n"


def decode(data: bytes) -> Results:
    return msgspec.json.decode(data, type=Results)
