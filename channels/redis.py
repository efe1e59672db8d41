"""The Redis broker: one shared sequence, history and last value per channel for every hub instance.

Storage, per channel ``C`` under ``prefix`` (default ``mt4hub``):

- ``{prefix}:seq:C`` the last seq (INCR), ``{prefix}:epoch:C`` the epoch (SET NX of a random
  string on first use, so a flushed Redis yields a new epoch), ``{prefix}:hist:C`` a LIST of the
  last ``history_size`` encoded publications, ``{prefix}:last:C`` a HASH key → encoded
  publication for state channels, and ``{prefix}:channels`` the SET of channel names.
- ``publish`` runs one Lua script (EVALSHA, reloaded on NOSCRIPT) that does all of the above and
  PUBLISHes the same bytes on ``{prefix}:pub:C``: seq is gap-free across instances, and history
  and live delivery agree. The client encodes the publication once; the script only prepends
  ``seq``, ``ts`` (Redis TIME) and ``epoch``.

Delivery: ONE pub/sub connection per broker, owned by a supervised listener task. ``subscribe``
sends SUBSCRIBE (or PSUBSCRIBE with a broader glob, filtered with :func:`channels.names.matches`)
and returns once Redis confirmed it. For every concrete channel received the broker remembers the
epoch and last seq handed to the handler, so the handler gets each publication once, in seq order:
duplicates (a channel and a pattern both matching) are dropped and a seq gap is filled from
history before later publications. When the connection drops the listener reconnects with
backoff and jitter, resubscribes everything and fills each channel's gap from history; when the
epoch changed (Redis lost its data) it hands over the new stream's retained publications, whose
new epoch makes :class:`~channels.feed.Feed` resend a snapshot (``recovered: false``).

Publications of channels this instance does not subscribe to are handed to the handler directly
by ``publish``; subscribed ones arrive through pub/sub (a moment after ``publish`` returns).
``publish`` and the reads raise :class:`RedisUnavailable` while Redis cannot be reached: the
publication did not happen (the poller counts it as a failed poll). :attr:`RedisBroker.healthy`
and :meth:`RedisBroker.status` report the pub/sub connection for ``/api/status``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
from collections import deque
from collections.abc import Awaitable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import msgspec
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from channels import cancellation, names
from channels.broker import Handler, Publication, encode_data
from channels.errors import ChannelsError

__all__ = ["RedisBroker", "RedisUnavailable"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_MAX_PENDING = 10_000  # live publications buffered per channel while its gap is being filled
_NOWHERE = 2**53  # a seq past any stream's end: asks the tail script for its position only

_PUBLISH = """
redis.call('SET', KEYS[2], ARGV[2], 'NX')
local epoch = redis.call('GET', KEYS[2])
local seq = redis.call('INCR', KEYS[1])
local now = redis.call('TIME')
local ts = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local msg = string.format('{"seq":%d,"ts":%d,"epoch":"%s",', seq, ts, epoch) .. ARGV[3]
redis.call('RPUSH', KEYS[3], msg)
redis.call('LTRIM', KEYS[3], -tonumber(ARGV[4]), -1)
if ARGV[5] == '1' then redis.call('HSET', KEYS[4], ARGV[6], msg) end
redis.call('SADD', KEYS[5], ARGV[1])
redis.call('PUBLISH', ARGV[7], msg)
return msg
"""

_TAIL = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local epoch = redis.call('GET', KEYS[2]) or ''
local since = tonumber(ARGV[1])
if since >= cur then return {cur, epoch, {}} end
return {cur, epoch, redis.call('LRANGE', KEYS[3], since - cur, -1)}
"""

_EPOCH = """
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])
"""


class RedisUnavailable(ChannelsError, ConnectionError):
    """Redis could not be reached (or did not answer in time); the operation did not happen."""


class _Body(msgspec.Struct, frozen=True, kw_only=True):
    """The part of a publication the client encodes; the script prepends seq, ts and epoch."""

    channel: str
    key: str | None
    data: msgspec.Raw


class _Track:
    """Where the handler is in one concrete channel's stream."""

    __slots__ = ("epoch", "fill", "fresh", "pending", "seq")

    def __init__(self, epoch: str = "", seq: int = 0, *, fresh: bool = False) -> None:
        self.epoch = epoch
        self.seq = seq
        self.fresh = fresh  # position unknown: start at the stream's current end, no replay
        self.pending: deque[Publication] | None = None  # live ones held while filling
        self.fill: asyncio.Task[None] | None = None


_decoder = msgspec.json.Decoder(Publication)
_body_encoder = msgspec.json.Encoder()


def _glob(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


class RedisBroker:
    """The broker for ``redis://`` URLs: shared by every hub instance on one Redis."""

    def __init__(
        self,
        url: str | None,
        history_size: int = 1000,
        prefix: str = "mt4hub",
        *,
        timeout: float = 5.0,
        ping_interval: float = 5.0,
        backoff: tuple[float, float] = (0.05, 2.0),
    ) -> None:
        if history_size < 1:
            raise ValueError(f"history_size: must be >= 1, got {history_size}")
        if not prefix:
            raise ValueError("prefix: must not be empty")
        if timeout <= 0 or ping_interval <= 0:
            raise ValueError("timeout and ping_interval: must be > 0")
        if not url:
            raise ValueError("url: a redis:// or rediss:// URL is required")
        parts = urlsplit(url)
        self.where = f"{parts.hostname or 'localhost'}:{parts.port or 6379}{parts.path}"
        self._url = url
        self._history_size = history_size
        self._prefix = prefix
        self._pub_prefix = f"{prefix}:pub:"
        self._timeout = timeout
        self._ping_interval = ping_interval
        self._backoff = backoff
        self._handler: Handler | None = None
        self._client: Redis | None = None
        self._scripts: dict[str, AsyncScript] = {}
        self._names: set[str] = set()
        self._tracks: dict[str, _Track] = {}
        self._waiters: dict[tuple[bytes, bytes], deque[asyncio.Future[None]]] = {}
        self._conn: AbstractConnection | None = None
        self._ready = asyncio.Event()
        self._listener: asyncio.Task[None] | None = None
        self._closed = False
        self._sessions = 0
        self._gaps = 0
        self._last_error: str | None = None

    # -- lifecycle and health ------------------------------------------------------------------

    async def connect(self) -> None:
        """Check that Redis answers, then start the listener and wait for its connection."""
        client = Redis.from_url(
            self._url,
            socket_timeout=self._timeout,
            socket_connect_timeout=self._timeout,
            protocol=2,
            retry=Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.1), retries=1),
        )
        self._client = client
        self._scripts = {
            "publish": client.register_script(_PUBLISH),
            "tail": client.register_script(_TAIL),
            "epoch": client.register_script(_EPOCH),
        }
        await self._call("connect", client.ping())
        self._listener = asyncio.create_task(self._listen(), name=f"redis-broker {self.where}")
        try:
            await self._wait_ready("connect")
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Stop the listener and fills and close the connections."""
        self._closed = True
        self._handler = None
        tasks = [t.fill for t in self._tracks.values() if t.fill is not None]
        if self._listener is not None:
            tasks.append(self._listener)
        for task in tasks:
            task.cancel()
        if tasks:
            _, stuck = await asyncio.wait(tasks, timeout=self._timeout)
            if stuck:
                log.error("redis broker: %d tasks did not stop on close: %r", len(stuck), stuck)
        self._tracks.clear()
        if self._client is not None:
            await self._client.aclose()

    @property
    def healthy(self) -> bool:
        """True while the listener runs and its pub/sub connection is up."""
        return self._listener is not None and not self._listener.done() and self._ready.is_set()

    def status(self) -> dict[str, Any]:
        """For /api/status: the pub/sub connection's state and its history."""
        return {
            "kind": "redis",
            "url": self.where,
            "prefix": self._prefix,
            "healthy": self.healthy,
            "connected": self._ready.is_set(),
            "last_error": self._last_error,
            "reconnects": max(0, self._sessions - 1),
            "subscriptions": len(self._names),
            "gaps": self._gaps,
        }

    def set_handler(self, handler: Handler) -> None:
        self._handler = handler

    # -- publishing and reads -------------------------------------------------------------------

    async def publish(self, channel: str, data: object, *, key: str | None = None) -> Publication:
        names.validate(channel)
        if names.is_pattern(channel):
            raise ValueError(f"channel {channel!r}: cannot publish to a pattern")
        body = _body_encoder.encode(_Body(channel=channel, key=key, data=encode_data(data)))
        state = names.is_state(channel)
        raw = await self._eval(
            f"publish to {channel!r}",
            "publish",
            [*self._keys(channel), f"{self._prefix}:channels"],
            [
                channel,
                secrets.token_hex(4),
                body[1:],
                self._history_size,
                "1" if state else "0",
                "" if key is None else "=" + key,
                self._pub_prefix + channel,
            ],
        )
        pub = _decoder.decode(raw)
        if not self._covered(channel):
            self._hand(pub)
        return pub

    async def last(self, channel: str) -> list[Publication]:
        client = self._need_client()
        values = await self._call(f"last of {channel!r}", client.hgetall(self._keys(channel)[3]))
        return sorted((_decoder.decode(v) for v in values.values()), key=lambda p: p.seq)

    async def history(
        self, channel: str, since_seq: int, epoch: str | None = None
    ) -> list[Publication] | None:
        current_epoch, current, items = await self._tail(channel, since_seq)
        if epoch is not None and epoch != current_epoch:
            return None
        if since_seq > current:
            return None
        if since_seq == current:
            return []
        if not items or items[0].seq != since_seq + 1:
            return None
        return items

    async def epoch(self, channel: str) -> str:
        raw = await self._eval(
            f"epoch of {channel!r}", "epoch", [self._keys(channel)[1]], [secrets.token_hex(4)]
        )
        return bytes(raw).decode()

    async def channels(self, pattern: str) -> list[str]:
        client = self._need_client()
        members = await self._call("channels", client.smembers(f"{self._prefix}:channels"))
        found = (m.decode() if isinstance(m, bytes) else m for m in members)
        return sorted(c for c in found if names.matches(pattern, c))

    # -- subscriptions --------------------------------------------------------------------------

    async def subscribe(self, channel: str) -> None:
        """Receive ``channel`` (or a pattern); returns once Redis confirmed and positions are known.

        Raises :class:`RedisUnavailable` when the pub/sub connection is down or too slow.
        """
        names.validate(channel)
        if channel in self._names:
            return
        await self._wait_ready(f"subscribe to {channel!r}")
        self._names.add(channel)
        fresh = []  # channels new to us: held until their position is read, after the confirm
        try:
            if not names.is_pattern(channel) and channel not in self._tracks:
                fresh.append(self._hold(channel, _Track(fresh=True)))
            await self._confirm(channel)
            if names.is_pattern(channel):
                for found in await self.channels(channel):
                    if found not in self._tracks:
                        fresh.append(self._hold(found, _Track(fresh=True)))
            fills = [self._start_fill(c, t) for c, t in fresh if self._tracks.get(c) is t]
            async with asyncio.timeout(self._timeout):
                await asyncio.shield(asyncio.gather(*fills))
        except BaseException as exc:
            self._names.discard(channel)
            self._drop_uncovered()
            if isinstance(exc, RedisError | OSError | TimeoutError) and not isinstance(
                exc, RedisUnavailable
            ):
                raise RedisUnavailable(
                    f"subscribe to {channel!r}: Redis at {self.where} did not confirm: {exc!r}"
                ) from exc
            raise

    async def unsubscribe(self, channel: str) -> None:
        """Stop receiving ``channel`` (or a pattern); works during an outage too."""
        if channel not in self._names:
            return
        self._names.discard(channel)
        self._drop_uncovered()
        conn = self._conn
        if conn is None or not self._ready.is_set():
            return  # the next connection subscribes only to what is still wanted
        command = "PUNSUBSCRIBE" if names.is_pattern(channel) else "UNSUBSCRIBE"
        try:
            async with asyncio.timeout(self._timeout):
                await conn.send_command(command, self._redis_name(channel))
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning(
                "redis broker: %s %s failed (%r); the listener reconnects", command, channel, exc
            )

    # -- internals: calls -----------------------------------------------------------------------

    def _need_client(self) -> Redis:
        if self._client is None:
            raise RuntimeError("RedisBroker: call connect() first")
        return self._client

    async def _eval(self, what: str, script: str, keys: list[str], args: list[Any]) -> Any:
        """Run one of the Lua scripts (EVALSHA; redis-py reloads it on NOSCRIPT)."""
        self._need_client()
        return await self._call(what, self._scripts[script](keys=keys, args=args))

    async def _call(self, what: str, pending: Awaitable[T]) -> T:
        try:
            async with asyncio.timeout(self._timeout * 2):
                return await pending
        except (RedisError, OSError, TimeoutError) as exc:
            raise RedisUnavailable(f"{what}: Redis at {self.where} failed: {exc!r}") from exc

    def _keys(self, channel: str) -> list[str]:
        """The seq, epoch, history and last-value keys of ``channel``."""
        return [f"{self._prefix}:{kind}:{channel}" for kind in ("seq", "epoch", "hist", "last")]

    async def _tail(self, channel: str, since_seq: int) -> tuple[str, int, list[Publication]]:
        """The stream's epoch, its last seq and the retained publications after ``since_seq``."""
        current, epoch, items = await self._eval(
            f"history of {channel!r}", "tail", self._keys(channel)[:3], [since_seq]
        )
        return bytes(epoch).decode(), int(current), [_decoder.decode(i) for i in items]

    def _redis_name(self, name: str) -> str:
        if not names.is_pattern(name):
            return self._pub_prefix + name
        segments = ("*" if s == "*" else _glob(s) for s in name.split(":"))
        return _glob(self._pub_prefix) + ":".join(segments)

    async def _wait_ready(self, what: str) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                await self._ready.wait()
        except TimeoutError:
            raise RedisUnavailable(
                f"{what}: no pub/sub connection to Redis at {self.where} "
                f"(last error: {self._last_error})"
            ) from None

    async def _confirm(self, name: str) -> None:
        conn = self._conn
        if conn is None:
            raise RedisUnavailable(f"subscribe to {name!r}: Redis at {self.where} is not connected")
        kind, redis_name = "SUBSCRIBE", self._redis_name(name)
        if names.is_pattern(name):
            kind = "PSUBSCRIBE"
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        key = (kind.lower().encode(), redis_name.encode())
        self._waiters.setdefault(key, deque()).append(waiter)
        async with asyncio.timeout(self._timeout):
            await conn.send_command(kind, redis_name)
        async with asyncio.timeout(self._timeout):
            await waiter

    # -- internals: the listener ----------------------------------------------------------------

    async def _listen(self) -> None:
        """Supervise the pub/sub connection: reconnect with backoff and jitter until closed."""
        low, high = self._backoff
        delay = low
        while not self._closed:
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                cause = exc.exceptions[0] if isinstance(exc, BaseExceptionGroup) else exc
                was_ready = self._ready.is_set()
                self._ready.clear()
                self._last_error = f"{type(cause).__name__}: {cause}"
                if isinstance(cause, RedisError | OSError | TimeoutError):
                    log.warning(
                        "redis broker: pub/sub to %s lost: %s", self.where, self._last_error
                    )
                else:
                    log.exception("redis broker: listener failed; restarting it", exc_info=cause)
                if was_ready:
                    delay = low
            # Not cancellation.sleep: on 3.11 a failed TaskGroup leaves this task's
            # cancelling() raised; close() sets _closed, which ends this loop.
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(high, delay * 2)

    async def _session(self) -> None:
        """One pub/sub connection: subscribe to every name, catch up, then dispatch replies."""
        client = self._need_client()
        conn: AbstractConnection = client.connection_pool.make_connection()  # type: ignore[no-untyped-call]
        try:
            async with asyncio.timeout(self._timeout):
                await conn.connect()  # type: ignore[no-untyped-call]
            self._conn = conn
            for track in self._tracks.values():
                if track.pending is None:
                    track.pending = deque(maxlen=_MAX_PENDING)
            async with asyncio.TaskGroup() as group:
                group.create_task(self._resume(conn))
                group.create_task(self._read(conn))
        finally:
            self._conn = None
            lost = RedisUnavailable(f"Redis at {self.where}: pub/sub connection lost")
            for waiter in (w for ws in self._waiters.values() for w in ws if not w.done()):
                waiter.set_exception(lost)
            self._waiters.clear()
            await conn.disconnect(nowait=True)

    async def _resume(self, conn: AbstractConnection) -> None:
        """Resubscribe everything, then fill every channel's gap (a no-op on first connect)."""
        confirmations = [self._confirm(name) for name in sorted(self._names)]
        await asyncio.gather(*confirmations)
        for pattern in [n for n in self._names if names.is_pattern(n)]:
            for found in await self.channels(pattern):
                if found not in self._tracks:  # created while we were away: replay it whole
                    self._hold(found, _Track())
        self._sessions += 1
        if self._sessions > 1:
            log.info("redis broker: pub/sub to %s back; filling gaps", self.where)
        for channel, track in self._tracks.items():
            if track.fill is None:
                self._start_fill(channel, track)
        self._ready.set()

    async def _read(self, conn: AbstractConnection) -> None:
        awaiting_pong = False
        while True:
            cancellation.raise_if_cancelled()  # redis-py can lose a cancel during a read
            reply = await conn.read_response(timeout=self._ping_interval, push_request=True)
            if reply is None:
                if awaiting_pong:
                    raise TimeoutError(f"no reply to PING within {self._ping_interval}s")
                async with asyncio.timeout(self._timeout):
                    await conn.send_command("PING")
                awaiting_pong = True
                continue
            awaiting_pong = False
            self._dispatch(reply)

    def _dispatch(self, reply: list[Any]) -> None:
        if not isinstance(reply, list) or not reply:
            return  # PONG of the health check
        kind = bytes(reply[0])
        if kind == b"message":
            self._receive(reply[2])
        elif kind == b"pmessage":
            self._receive(reply[3])
        elif kind in (b"subscribe", b"psubscribe"):
            waiters = self._waiters.get((kind, bytes(reply[1])))
            if waiters:
                waiter = waiters.popleft()
                if not waiter.done():
                    waiter.set_result(None)

    def _receive(self, raw: bytes) -> None:
        try:
            pub = _decoder.decode(raw)
        except msgspec.DecodeError as exc:
            log.error(
                "redis broker: undecodable message on %s (%s): %r", self.where, exc, raw[:200]
            )
            return
        track = self._tracks.get(pub.channel)
        if track is None:
            if not self._covered(pub.channel):
                return
            track = self._tracks[pub.channel] = _Track(pub.epoch, pub.seq - 1)
        if track.pending is not None:
            track.pending.append(pub)
            return
        self._advance(pub.channel, track, pub)

    # -- internals: ordering and gap filling ------------------------------------------------------

    def _covered(self, channel: str) -> bool:
        return any(name in self._names for name in names.subscriptions_for(channel))

    def _drop_uncovered(self) -> None:
        for channel in [c for c in self._tracks if not self._covered(c)]:
            track = self._tracks.pop(channel)
            if track.fill is not None:
                track.fill.cancel()

    def _hold(self, channel: str, track: _Track) -> tuple[str, _Track]:
        """Track a channel new to us, holding what arrives until it is positioned or filled."""
        track.pending = deque(maxlen=_MAX_PENDING)
        self._tracks[channel] = track
        return channel, track

    def _start_fill(self, channel: str, track: _Track) -> asyncio.Task[None]:
        if track.pending is None:
            track.pending = deque(maxlen=_MAX_PENDING)
        track.fill = asyncio.create_task(self._fill(channel, track), name=f"redis-fill {channel}")
        return track.fill

    def _advance(self, channel: str, track: _Track, pub: Publication) -> None:
        """Hand ``pub`` on if it is the next one; on a gap, hold it and fill from history."""
        if pub.epoch == track.epoch and pub.seq > track.seq + 1:
            track.pending = deque([pub], maxlen=_MAX_PENDING)
            self._start_fill(channel, track)
            return
        self._step(track, pub)

    def _step(self, track: _Track, pub: Publication) -> None:
        if pub.epoch == track.epoch and pub.seq <= track.seq:
            return
        track.epoch, track.seq = pub.epoch, pub.seq
        self._hand(pub)

    def _hand(self, pub: Publication) -> None:
        if self._handler is None:
            return
        try:
            self._handler(pub)
        except Exception:
            log.exception("redis broker: handler failed on %s seq %d", pub.channel, pub.seq)

    async def _fill(self, channel: str, track: _Track) -> None:
        """Catch ``track`` up from history (retrying while Redis is away), then release the held."""
        delay = self._backoff[0]
        items: list[Publication] = []
        while True:
            try:
                items = await self._catch_up(channel, track)
                break
            except RedisUnavailable as exc:
                log.warning("redis broker: filling %s failed (%s); retrying", channel, exc)
                await cancellation.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(self._backoff[1], delay * 2)
            except Exception as exc:
                log.exception("redis broker: filling %s failed; continuing with a gap", channel)
                self._last_error = f"fill {channel}: {exc!r}"
                self._gaps += 1
                track.fresh = False
                break
        track.fill = None
        if self._tracks.get(channel) is not track:
            return
        for pub in items:
            self._step(track, pub)
        held, track.pending = track.pending or deque(), None
        for pub in held:
            if track.pending is not None:  # a new gap: keep holding behind its fill
                track.pending.append(pub)
            else:
                self._advance(channel, track, pub)

    async def _catch_up(self, channel: str, track: _Track) -> list[Publication]:
        if track.fresh:  # just subscribed: start at the stream's current end
            epoch, current, _ = await self._tail(channel, _NOWHERE)
            track.epoch, track.seq, track.fresh = epoch, current, False
            return []
        epoch, current, items = await self._tail(channel, track.seq)
        if epoch != track.epoch:  # history lost: the new stream, whatever it still holds
            epoch, current, items = await self._tail(channel, 0)
            if items:
                log.warning("redis broker: %s has a new epoch %s; resyncing", channel, epoch)
            return items
        if not items or items[0].seq == track.seq + 1:
            return items
        lost = items[0].seq - track.seq - 1
        log.warning("redis broker: %s lost %d publications beyond history", channel, lost)
        self._gaps += 1
        if names.is_state(channel):  # the latest value of every key, even ones not in history
            merged = {p.seq: p for p in await self.last(channel) if p.seq > track.seq}
            merged.update((p.seq, p) for p in items)
            return [merged[s] for s in sorted(merged)]
        return items
