"""What several hub instances must agree on: per-agent command locks, idempotency,
the emergency stop and who polls which bridge.

``LocalCoordination`` is one process (asyncio locks, memory, a state file);
``RedisCoordination`` shares it through Redis so the trading guarantees hold across
instances behind a load balancer:

- command lock per agent: ``SET NX PX`` with a random token, renewed while held, released
  by compare-and-delete, so a crashed holder blocks an agent for at most one TTL;
- ``client_order_id`` results: ``SET NX`` of a pending marker, then the final outcome
  (24 h); a repeat on any instance waits for and returns the same outcome;
- emergency stop: one key, read under the command lock before every trade;
- leases: ``poll:{agent}`` and ``summary`` held by one instance, renewed every TTL/3;
  another takes over within 2 x TTL of a holder's death.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

import msgspec
from redis.exceptions import RedisError

from channels import cancellation
from channels.clock import now_ms
from hub.errors import HubError
from hub.trading._files import read_json, write_json
from hub.trading.daily import DayRecord
from hub.trading.emergency import EmergencyFile, EmergencyState
from hub.trading.idempotency import IdempotencyCache, OrderKey, duplicate, fingerprint
from hub.trading.keyring import KeyRing
from hub.trading.models import Reservation

__all__ = ["Coordination", "LocalCoordination", "RedisCoordination", "open_coordination"]

log = logging.getLogger("mt4hub.coordination")


class Coordination(Protocol):
    instance_id: str
    shared: bool  # True when other instances may act on the same agents

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def lock(self, agent_id: str) -> contextlib.AbstractAsyncContextManager[None]: ...

    def risk_lock(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Serialises every check that adds risk, across agents and instances (held only
        for the check and the reservation, never while a bridge answers)."""

    async def reserve(self, reservation: Reservation) -> None: ...

    async def release(self, reservation_id: str) -> None: ...

    async def reservations(self) -> list[Reservation]:
        """Every unexpired reservation, of every agent and instance."""

    async def once(
        self, key: OrderKey | None, payload: Any, action: Callable[[], Awaitable[Any]]
    ) -> Any: ...

    async def load_emergency(self) -> EmergencyState | None:
        """The saved kill-switch state; None when there is none (or, shared, it was lost)."""

    async def save_emergency(self, state: EmergencyState) -> None: ...

    async def open_day(self, agent_id: str, record: DayRecord) -> DayRecord:
        """Store ``record`` unless the agent has one for that day already; the stored one."""

    async def save_day(self, agent_id: str, record: DayRecord) -> None: ...

    async def load_day(self, agent_id: str, day: str) -> DayRecord | None: ...

    async def mark_hub_close(self, agent_id: str, ticket: int, lots: float) -> None:
        """A close made by a hub command (on any instance): not to be announced again when
        the bridge's history shows it."""

    async def take_hub_close(self, agent_id: str, ticket: int, lots: float) -> bool:
        """True (once per mark) when that close was made by a hub command."""

    async def claim(self, key: str) -> bool:
        """True for the first caller only, on any instance (kept 3 days): one instance
        handles each closed trade the bridges' histories show."""

    async def hold_lease(self, name: str) -> bool:
        """Acquire or renew ``name`` for this instance; False when another holds it."""

    async def release_lease(self, name: str) -> None: ...

    def status(self) -> dict[str, Any]: ...


class DayFile:
    """Each agent's current day record, in one file (``days.json`` in the data dir)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self, agent_id: str, day: str) -> DayRecord | None:
        record = self._all().get(agent_id)
        return record if record is not None and record.day == day else None

    def save(self, agent_id: str, record: DayRecord) -> None:
        days = self._all()
        days[agent_id] = record
        write_json(self.path, days)

    def _all(self) -> dict[str, DayRecord]:
        try:
            days: dict[str, DayRecord] | None = read_json(self.path, dict[str, DayRecord])
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            # Never guess a baseline: an unreadable file is an error the operator must see.
            raise HubError(
                "service_unavailable", f"day records file {self.path} is unreadable: {exc}"
            ) from None
        return days or {}


class LocalCoordination:
    """One hub process: everything in memory, the emergency stop in a file."""

    shared = False

    def __init__(self, instance_id: str, data_dir: Path, *, capacity: int = 10_000) -> None:
        self.instance_id = instance_id
        self.capacity = capacity  # of the outcomes, the hub-close marks and the claims each
        self._locks: dict[str, asyncio.Lock] = {}
        self._idempotency = IdempotencyCache(capacity, path=data_dir / "orders.log")
        self._emergency = EmergencyFile(data_dir / "emergency.json")
        self._days = DayFile(data_dir / "days.json")
        self._hub_closes: Counter[tuple[str, int, str]] = Counter()
        self._claims = KeyRing(capacity)  # the newest closed-trade rows handled
        self._reserved: dict[str, Reservation] = {}

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    @contextlib.asynccontextmanager
    async def lock(self, agent_id: str) -> AsyncIterator[None]:
        async with self._locks.setdefault(agent_id, asyncio.Lock()):
            yield

    def risk_lock(self) -> contextlib.AbstractAsyncContextManager[None]:
        return self.lock(_RISK_LOCK)

    async def reserve(self, reservation: Reservation) -> None:
        self._reserved[reservation.id] = reservation

    async def release(self, reservation_id: str) -> None:
        self._reserved.pop(reservation_id, None)

    async def reservations(self) -> list[Reservation]:
        now = now_ms()
        for rid in [r.id for r in self._reserved.values() if r.expires < now]:
            del self._reserved[rid]
        return list(self._reserved.values())

    async def once(
        self, key: OrderKey | None, payload: Any, action: Callable[[], Awaitable[Any]]
    ) -> Any:
        result, _ = await self._idempotency.run(key, payload, action)
        return result

    async def load_emergency(self) -> EmergencyState | None:
        return self._emergency.load()

    async def save_emergency(self, state: EmergencyState) -> None:
        self._emergency.save(state)

    async def open_day(self, agent_id: str, record: DayRecord) -> DayRecord:
        stored = self._days.load(agent_id, record.day)
        if stored is not None:
            return stored
        self._days.save(agent_id, record)
        return record

    async def save_day(self, agent_id: str, record: DayRecord) -> None:
        self._days.save(agent_id, record)

    async def load_day(self, agent_id: str, day: str) -> DayRecord | None:
        return self._days.load(agent_id, day)

    async def mark_hub_close(self, agent_id: str, ticket: int, lots: float) -> None:
        self._hub_closes[(agent_id, ticket, _lots(lots))] += 1
        while len(self._hub_closes) > self.capacity:  # unseen for long: history moved on
            del self._hub_closes[next(iter(self._hub_closes))]

    async def claim(self, key: str) -> bool:
        if self._claims.find(key) is not None:
            return False
        self._claims.add(key)
        return True

    async def take_hub_close(self, agent_id: str, ticket: int, lots: float) -> bool:
        key = (agent_id, ticket, _lots(lots))
        if self._hub_closes[key] <= 0:
            self._hub_closes.pop(key, None)
            return False
        self._hub_closes[key] -= 1
        if self._hub_closes[key] == 0:
            del self._hub_closes[key]
        return True

    async def hold_lease(self, name: str) -> bool:
        return True

    async def release_lease(self, name: str) -> None:
        return None

    def status(self) -> dict[str, Any]:
        return {"kind": "local", "instance": self.instance_id}


_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RESTORE_NEWEST = """
local cur = redis.call('GET', KEYS[1])
if cur then
  local since = cjson.decode(cur)['since']
  if type(since) == 'number' and since >= tonumber(ARGV[2]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1])
return 1
"""
_TAKE = """
local n = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if n <= 0 then return 0 end
if n == 1 then redis.call('HDEL', KEYS[1], ARGV[1])
else redis.call('HINCRBY', KEYS[1], ARGV[1], -1) end
return 1
"""
_LEASE = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if not holder then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
return 0
"""


_DAY_TTL = 3 * 86_400  # seconds a day record (and the closes made by hub commands) is kept
_RISK_LOCK = ":risk"  # not an agent id (ids have no ':'): the lock of every check adding risk


def _lots(lots: float) -> str:
    return f"{lots:.8f}"


class _Outcome(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    fp: str
    done: bool = False
    result: Any = None
    error: dict[str, Any] | None = None


class RedisCoordination:
    """Shared state in Redis (``REDIS_URL``); one client per instance."""

    shared = True

    def __init__(
        self,
        url: str,
        instance_id: str,
        data_dir: Path,
        *,
        prefix: str = "mt4hub",
        lock_ttl: float = 15.0,
        lease_ttl: float = 3.0,
        result_ttl: float = 86_400.0,
    ) -> None:
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import ExponentialWithJitterBackoff

        self.instance_id = instance_id
        self._redis = aioredis.Redis.from_url(
            url,
            socket_timeout=5,
            socket_connect_timeout=5,
            protocol=2,
            # A restarted Redis: reconnect and retry a few times before failing the command.
            retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), retries=4),
        )
        # The kill switch is also kept on disk: a Redis restart (no persistence) must not
        # silently lift it.
        self._emergency_file = EmergencyFile(data_dir / "emergency.json")
        self._days = DayFile(data_dir / "days.json")  # likewise the day records
        self._p = prefix
        self.lock_ttl = lock_ttl
        self.lease_ttl = lease_ttl
        self._result_ttl = result_ttl
        self._release = self._redis.register_script(_RELEASE)
        self._renew = self._redis.register_script(_RENEW)
        self._lease = self._redis.register_script(_LEASE)
        self._restore = self._redis.register_script(_RESTORE_NEWEST)
        self._take = self._redis.register_script(_TAKE)
        self._local_locks: dict[str, asyncio.Lock] = {}
        self.last_error: str | None = None

    async def start(self) -> None:
        await self._redis.ping()

    async def close(self) -> None:
        await self._redis.aclose()

    @contextlib.asynccontextmanager
    async def lock(self, agent_id: str) -> AsyncIterator[None]:
        # Local first, so one instance queues its own commands without hammering Redis.
        async with self._local_locks.setdefault(agent_id, asyncio.Lock()):
            key, token = f"{self._p}:lock:{agent_id}", secrets.token_hex(8)
            ttl_ms = int(self.lock_ttl * 1000)
            delay = 0.002
            async with _shared_state(f"lock agent {agent_id}"):
                while not await self._redis.set(key, token, nx=True, px=ttl_ms):
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 0.05)
            renew = asyncio.create_task(self._keep(key, token, ttl_ms))
            try:
                yield
            finally:
                renew.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await renew
                try:
                    await self._release(keys=[key], args=[token])
                except RedisError as exc:  # it expires by itself within the lock TTL
                    log.warning("lock_release_failed key=%s error=%r", key, str(exc))

    async def _keep(self, key: str, token: str, ttl_ms: int) -> None:
        while True:
            await cancellation.sleep(ttl_ms / 3000)
            try:
                renewed = await self._renew(keys=[key], args=[token, ttl_ms])
            except RedisError as exc:
                log.error("lock_renew_failed key=%s error=%r", key, str(exc))
                continue
            if not renewed:
                log.error("lock_lost key=%s: a command outlived its lock", key)
                return

    async def once(
        self, key: OrderKey | None, payload: Any, action: Callable[[], Awaitable[Any]]
    ) -> Any:
        if key is None:
            return await action()
        async with _shared_state(f"check client_order_id {key[1]!r}"):
            return await self._once(key, payload, action)

    async def _once(self, key: OrderKey, payload: Any, action: Callable[[], Awaitable[Any]]) -> Any:
        rkey = f"{self._p}:order:{key[0]}:{key[1]}"
        fp = fingerprint(payload).decode()
        pending = msgspec.json.encode(_Outcome(fp=fp))
        if await self._redis.set(rkey, pending, nx=True, ex=int(self._result_ttl)):
            try:
                result = await action()
            except HubError as exc:
                if exc.code == "duplicate":  # the id belongs to an earlier order
                    await self._redis.delete(rkey)
                    raise
                outcome = _Outcome(fp=fp, done=True, error=exc.body()["error"])
                await self._redis.set(rkey, msgspec.json.encode(outcome), ex=int(self._result_ttl))
                raise
            except BaseException:
                await self._redis.delete(rkey)  # undecided: a retry may run it
                raise
            outcome = _Outcome(fp=fp, done=True, result=result)
            await self._redis.set(rkey, msgspec.json.encode(outcome), ex=int(self._result_ttl))
            return result
        while True:  # someone else has it: same payload → wait for its outcome
            raw = await self._redis.get(rkey)
            if raw is None:  # the first attempt failed undecided; take over
                return await self._once(key, payload, action)
            seen = msgspec.json.decode(raw, type=_Outcome)
            if seen.fp != fp:
                raise duplicate(key)
            if seen.done:
                if seen.error is not None:
                    err = seen.error
                    raise HubError(err["code"], err["message"], err.get("details"))
                return seen.result
            await asyncio.sleep(0.01)

    async def load_emergency(self) -> EmergencyState | None:
        key = f"{self._p}:emergency"
        async with _shared_state("read the emergency stop"):
            raw = await self._redis.get(key)
            if raw is not None:
                state = msgspec.json.decode(raw, type=EmergencyState)
                if state != self._emergency_file.load():
                    self._emergency_file.save(state)  # every instance keeps its own copy
                return state
            # Redis lost it (restart without persistence, flush): put back this instance's copy
            # unless another instance already restored a more recent one. This read still
            # answers None, so callers fail safe until the next read.
            saved = self._emergency_file.load()
            if saved is not None:
                await self._restore(keys=[key], args=[msgspec.json.encode(saved), saved.since or 0])
            return None

    async def save_emergency(self, state: EmergencyState) -> None:
        self._emergency_file.save(state)
        async with _shared_state("save the emergency stop"):
            await self._redis.set(f"{self._p}:emergency", msgspec.json.encode(state))

    async def open_day(self, agent_id: str, record: DayRecord) -> DayRecord:
        key = f"{self._p}:day:{agent_id}:{record.day}"
        # After a Redis restart, this instance's copy of the day (if any) is the candidate.
        candidate = self._days.load(agent_id, record.day) or record
        async with _shared_state(f"fix the start of day of {agent_id}"):
            await self._redis.set(key, msgspec.json.encode(candidate), nx=True, ex=_DAY_TTL)
            raw = await self._redis.get(key)
        stored = msgspec.json.decode(raw, type=DayRecord) if raw is not None else candidate
        self._days.save(agent_id, stored)
        return stored

    async def save_day(self, agent_id: str, record: DayRecord) -> None:
        self._days.save(agent_id, record)
        async with _shared_state(f"save the day record of {agent_id}"):
            await self._redis.set(
                f"{self._p}:day:{agent_id}:{record.day}", msgspec.json.encode(record), ex=_DAY_TTL
            )

    def risk_lock(self) -> contextlib.AbstractAsyncContextManager[None]:
        return self.lock(_RISK_LOCK)

    async def reserve(self, reservation: Reservation) -> None:
        async with _shared_state(f"reserve the risk of an order on {reservation.agent_id}"):
            await self._redis.hset(
                f"{self._p}:reserved", reservation.id, msgspec.json.encode(reservation)
            )

    async def release(self, reservation_id: str) -> None:
        async with _shared_state("release a reservation"):
            await self._redis.hdel(f"{self._p}:reserved", reservation_id)

    async def reservations(self) -> list[Reservation]:
        key, now = f"{self._p}:reserved", now_ms()
        async with _shared_state("read the reservations"):
            raw = await self._redis.hgetall(key)
            found = [msgspec.json.decode(v, type=Reservation) for v in raw.values()]
            expired = [r.id for r in found if r.expires < now]
            if expired:
                await self._redis.hdel(key, *expired)
        return [r for r in found if r.expires >= now]

    async def mark_hub_close(self, agent_id: str, ticket: int, lots: float) -> None:
        key = f"{self._p}:closes:{agent_id}"
        async with _shared_state(f"record a close of {agent_id}"):
            await self._redis.hincrby(key, f"{ticket}:{_lots(lots)}", 1)
            await self._redis.expire(key, _DAY_TTL)

    async def claim(self, key: str) -> bool:
        async with _shared_state("claim a closed trade"):
            return bool(await self._redis.set(f"{self._p}:claim:{key}", 1, nx=True, ex=_DAY_TTL))

    async def take_hub_close(self, agent_id: str, ticket: int, lots: float) -> bool:
        key = f"{self._p}:closes:{agent_id}"
        async with _shared_state(f"check a close of {agent_id}"):
            return bool(await self._take(keys=[key], args=[f"{ticket}:{_lots(lots)}"]))

    async def load_day(self, agent_id: str, day: str) -> DayRecord | None:
        async with _shared_state(f"read the day record of {agent_id}"):
            raw = await self._redis.get(f"{self._p}:day:{agent_id}:{day}")
        if raw is None:
            return self._days.load(agent_id, day)
        record: DayRecord = msgspec.json.decode(raw, type=DayRecord)
        self._days.save(agent_id, record)
        return record

    async def hold_lease(self, name: str) -> bool:
        ttl_ms = int(self.lease_ttl * 1000)
        held = await self._lease(keys=[f"{self._p}:lease:{name}"], args=[self.instance_id, ttl_ms])
        return bool(held)

    async def release_lease(self, name: str) -> None:
        await self._release(keys=[f"{self._p}:lease:{name}"], args=[self.instance_id])

    def status(self) -> dict[str, Any]:
        return {"kind": "redis", "instance": self.instance_id, "last_error": self.last_error}


@contextlib.asynccontextmanager
async def _shared_state(what: str) -> AsyncIterator[None]:
    """Redis failures past the client's retries become a clear 503 for the caller."""
    try:
        yield
    except RedisError as exc:
        log.error("shared_state_unavailable what=%r error=%r", what, str(exc))
        raise HubError(
            "service_unavailable", f"cannot {what}: shared state (Redis) unavailable: {exc}"
        ) from None


def open_coordination(
    redis_url: str | None, instance_id: str, data_dir: Path, prefix: str = "mt4hub"
) -> Coordination:
    if redis_url:
        return RedisCoordination(redis_url, instance_id, data_dir, prefix=prefix)
    return LocalCoordination(instance_id, data_dir)
