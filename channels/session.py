"""The WebSocket session: auth, welcome, ops, replies — independent of the web framework.

``await Session(node, transport, authenticate=…, on_command=…, token=…).run()`` serves
one connection until the peer leaves. The transport is three coroutines (see
:class:`Transport`); :mod:`channels.asgi` adapts a Starlette ``WebSocket``. When the
transport also offers a ``raw`` sink the outbox writes to it directly through the node's
shared lane (no writer task); otherwise a writer task drains it into ``send_text``. The
session reads on the connection's own task; an overflow (slow consumer) or a dead writer
cancels that read.

Close codes: 4001 auth failed or timed out, 4008 slow consumer, 4029 flooding or a
subscribe past ``max_subscriptions`` (answered ``rate_limited`` with its ``id`` first).
Subscribes are handled in order on the reading task; commands run as tasks (at most
``max_commands`` in flight) so pings and subscribes keep flowing.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Container
from typing import Any, Literal, Protocol

import msgspec

from channels import names
from channels.clock import now_ms
from channels.delivery import Outbox, Sink
from channels.errors import InvalidChannel, ProtocolError, too_many_subscriptions
from channels.feed import Feed, SyncResult
from channels.node import Node
from channels.protocol import (
    Auth,
    CommandOp,
    Error,
    ErrorBody,
    Heartbeat,
    Ping,
    Pong,
    Result,
    Subscribe,
    Subscribed,
    Unsubscribe,
    Unsubscribed,
    Welcome,
    decode_op,
    encode,
)

__all__ = [
    "ROLES",
    "Access",
    "Authenticate",
    "CommandReply",
    "OnCommand",
    "Role",
    "Session",
    "SessionLimits",
    "Transport",
]

log = logging.getLogger(__name__)

Role = Literal["read", "trade", "admin"]
ROLES: tuple[Role, ...] = ("read", "trade", "admin")  # each role can do what the ones before can

CLOSE_UNAUTHORIZED = 4001
CLOSE_SLOW_CONSUMER = 4008
CLOSE_FLOODING = 4029


class Access(msgspec.Struct, frozen=True, kw_only=True):
    """Who is connected: token name, role, and the agents it may touch (None: all)."""

    name: str
    role: Role
    agents: frozenset[str] | None = None

    def may_touch(self, agent: str) -> bool:
        return self.agents is None or agent in self.agents

    def allows(self, role: Role) -> bool:
        """True when this token's role includes ``role`` (read < trade < admin)."""
        return ROLES.index(self.role) >= ROLES.index(role)


class CommandReply(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of a command: ``data`` when ok, else ``error``.

    ``refused``: the op never ran (bad input, not allowed): answered as an ``error``
    message rather than a ``result``."""

    ok: bool
    data: Any = None
    error: ErrorBody | None = None
    refused: bool = False

    @classmethod
    def success(cls, data: Any = None) -> CommandReply:
        return cls(ok=True, data=data)

    @classmethod
    def failure(
        cls, code: str, message: str, details: dict[str, Any] | None = None
    ) -> CommandReply:
        return cls(ok=False, error=ErrorBody(code=code, message=message, details=details))

    @classmethod
    def refusal(cls, code: str, message: str) -> CommandReply:
        return cls(ok=False, error=ErrorBody(code=code, message=message), refused=True)


class Transport(Protocol):
    """What a session needs from a WebSocket."""

    async def send_text(self, text: str) -> None: ...

    async def receive(self) -> str | bytes | None:
        """The next message; None once the peer closed."""

    async def close(self, code: int, reason: str) -> None: ...

    @property
    def raw(self) -> Sink | None:
        """A direct frame sink, when the server offers one (else None: ``send_text``)."""


Authenticate = Callable[[str], Awaitable[Access | None]]
# The server's answer to a command op: a reply at once (refused before it runs), or the
# command itself, which the session runs as a task so that pings and subscribes keep flowing.
OnCommand = Callable[[CommandOp, Access], CommandReply | Callable[[], Awaitable[CommandReply]]]


class SessionLimits(msgspec.Struct, frozen=True, kw_only=True):
    """Per-connection limits and timings (seconds, frames, messages)."""

    auth_timeout: float = 5.0
    heartbeat: float = 15.0
    max_frame_bytes: int = 64 * 1024
    max_subscriptions: int = 256
    rate: float = 50.0
    burst: int = 100
    flood_limit: int = 100
    max_commands: int = 16
    soft_limit: int = 256
    hard_limit: int = 4096
    flush_interval: float = 0.01
    close_timeout: float = 1.0


class _Bucket:
    """Token bucket: ``rate`` per second up to ``burst``; refusals decay at the same rate."""

    def __init__(self, rate: float, burst: int) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._refused = 0.0
        self._at = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        elapsed, self._at = now - self._at, now
        self._tokens = min(self._burst, self._tokens + elapsed * self._rate)
        self._refused = max(0.0, self._refused - elapsed * self._rate)
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        self._refused += 1
        return False

    @property
    def refused(self) -> float:
        return self._refused


def _heartbeat_frame() -> str:
    return encode(Heartbeat(ts=now_ms())).decode()


class Session:
    """One WebSocket connection's state machine."""

    def __init__(
        self,
        node: Node,
        transport: Transport,
        *,
        authenticate: Authenticate,
        on_command: OnCommand,
        commands: Container[str] = frozenset(),
        token: str | None = None,
        batch: bool = False,
        limits: SessionLimits | None = None,
    ) -> None:
        self.id = secrets.token_urlsafe(8)
        self._node = node
        self._transport = transport
        self._authenticate = authenticate
        self._on_command = on_command
        self._command_names = commands
        self._token = token
        self._batch = batch
        self._limits = limits or SessionLimits()
        self._bucket = _Bucket(self._limits.rate, self._limits.burst)
        self._overflowed = False
        self._halted = False
        self._runner: asyncio.Task[Any] | None = None
        self._outbox = Outbox(
            soft_limit=self._limits.soft_limit,
            hard_limit=self._limits.hard_limit,
            on_overflow=self._on_overflow,
        )
        self._commands: set[asyncio.Task[None]] = set()
        self._close: tuple[int, str, str | int | None] | None = None  # code, reason, op id
        self.access: Access | None = None

    async def run(self) -> None:
        """Serve the connection until it ends; never raises for client behaviour."""
        access = await self._login()
        if access is None:
            return
        self.access = access
        limits = self._limits
        feed = Feed(self._node, self._outbox, agents=access.agents, max_pending=limits.hard_limit)
        beat = limits.heartbeat
        raw = self._transport.raw
        writer: asyncio.Task[None] | None = None
        if raw is not None:
            self._outbox.attach(
                raw,
                self._node.lane,
                batch=self._batch,
                flush_interval=limits.flush_interval,
                heartbeat=beat,
                heartbeat_frame=_heartbeat_frame,
            )
        self._send(Welcome(session=self.id, heartbeat=int(beat) if beat.is_integer() else beat))
        if raw is None:
            writer = asyncio.create_task(
                self._outbox.run(
                    self._transport.send_text,
                    batch=self._batch,
                    flush_interval=limits.flush_interval,
                    heartbeat=beat,
                    heartbeat_frame=_heartbeat_frame,
                )
            )
            writer.add_done_callback(lambda _: self._halt())
        tasks = set() if writer is None else {writer}
        runner = self._runner = asyncio.current_task()
        try:
            if not self._halted:
                await self._read(access, feed)
        except asyncio.CancelledError:
            if not self._halted or runner is None or runner.uncancel() > 0:
                raise
        finally:
            self._runner = None
            for task in tasks | self._commands:
                task.cancel()
            results = await asyncio.gather(*tasks, *self._commands, return_exceptions=True)
            self._outbox.detach()
            await feed.close()
        for result in results:
            if isinstance(result, Exception):
                log.info("session %s ended: %r", self.id, result)
        if self._overflowed:
            log.warning("session %s (%s): slow consumer, closing", self.id, access.name)
            await self._last_words(
                "slow_consumer", "too many messages queued: read faster", CLOSE_SLOW_CONSUMER
            )
        elif self._close is not None:
            code, reason, op_id = self._close
            await self._last_words("rate_limited", reason, code, op_id)

    def _on_overflow(self) -> None:
        self._overflowed = True
        self._halt()

    def _halt(self) -> None:
        """Stop reading (the outbox overflowed or the writer ended); run() then closes."""
        if self._halted:
            return
        self._halted = True
        if self._runner is not None:
            self._runner.cancel()

    async def _login(self) -> Access | None:
        token, limits = self._token, self._limits
        if token is None:
            try:
                async with asyncio.timeout(limits.auth_timeout):
                    raw = await self._transport.receive()
            except TimeoutError:
                await self._refuse(f"no auth message within {limits.auth_timeout:g} s")
                return None
            if raw is None:
                return None
            op = decode_op(raw) if len(raw) <= limits.max_frame_bytes else None
            if not isinstance(op, Auth):
                await self._refuse('first message must be {"op":"auth","token":"…"}')
                return None
            token, self._batch = op.token, self._batch or op.batch
        try:
            access = await self._authenticate(token)
        except ProtocolError as exc:  # a valid token refused for now (too many connections)
            close = CLOSE_FLOODING if exc.code == "rate_limited" else CLOSE_UNAUTHORIZED
            await self._last_words(exc.code, exc.message, close)
            return None
        if access is None:
            await self._refuse("invalid or expired token")
        return access

    async def _refuse(self, message: str) -> None:
        await self._last_words("unauthorized", message, CLOSE_UNAUTHORIZED)

    async def _last_words(
        self, code: str, message: str, close_code: int, op_id: str | int | None = None
    ) -> None:
        frame = encode(Error(id=op_id, error=ErrorBody(code=code, message=message))).decode()
        try:
            async with asyncio.timeout(self._limits.close_timeout):
                await self._transport.send_text(frame)
        except Exception as exc:  # the peer may be gone or stalled; closing is what matters
            log.info("session %s: could not send %s: %r", self.id, code, exc)
        try:
            async with asyncio.timeout(self._limits.close_timeout):
                await self._transport.close(close_code, message[:120])
        except Exception as exc:
            log.info("session %s: close %d failed: %r", self.id, close_code, exc)

    def _send(self, message: msgspec.Struct) -> None:
        self._outbox.put(encode(message).decode())

    def _error(self, id: str | int | None, code: str, message: str) -> None:
        self._send(Error(id=id, error=ErrorBody(code=code, message=message)))

    async def _read(self, access: Access, feed: Feed) -> None:
        limits = self._limits
        while True:
            raw = await self._transport.receive()
            if raw is None:
                return
            if not self._bucket.take():
                if self._bucket.refused > limits.flood_limit:
                    self._close = (CLOSE_FLOODING, "flooding: too many messages", None)
                    return
                self._error(None, "rate_limited", f"more than {limits.rate:g} messages/s")
                continue
            if len(raw) > limits.max_frame_bytes:
                self._error(
                    None, "bad_request", f"frame: over the limit of {limits.max_frame_bytes} bytes"
                )
                continue
            op = decode_op(raw, self._command_names)
            if isinstance(op, ProtocolError):
                self._error(op.id, op.code, op.message)
            elif isinstance(op, Ping):
                self._send(Pong(id=op.id, ts=now_ms()))
            elif isinstance(op, Subscribe):
                await self._subscribe(op, access, feed)
                if self._close is not None:
                    return
            elif isinstance(op, Unsubscribe):
                await feed.unsubscribe(op.channels)
                self._send(Unsubscribed(id=op.id, channels=op.channels))
            elif isinstance(op, Auth):
                self._error(op.id, "bad_request", "op: already authenticated")
            elif isinstance(op, CommandOp):
                self._command(op, access)

    async def _subscribe(self, op: Subscribe, access: Access, feed: Feed) -> None:
        try:
            self._check_subscribe(op, access, feed)
        except ProtocolError as exc:
            if exc.code == "rate_limited":  # a limit: answered, then the socket is closed
                self._close = (CLOSE_FLOODING, exc.message, op.id)
            else:
                self._error(op.id, exc.code, exc.message)
            return

        def announce(result: SyncResult) -> None:
            self._send(
                Subscribed(
                    id=op.id,
                    channels=op.channels,
                    recovered=result.recovered,
                    epochs=result.epochs,
                )
            )

        try:
            await feed.subscribe(op.channels, op.since, announce)
        except Exception:
            log.exception("session %s: subscribe %s failed", self.id, op.channels)
            self._error(op.id, "internal_error", "subscribe failed on the server; retry")

    def _check_subscribe(self, op: Subscribe, access: Access, feed: Feed) -> None:
        for i, name in enumerate(op.channels):
            try:
                names.validate(name)
            except InvalidChannel as exc:
                raise ProtocolError("bad_request", f"channels[{i}]: {exc}") from None
            refused = names.refusal(name, access.agents)
            if refused is not None:
                raise ProtocolError("forbidden", f"channels[{i}]: {refused}")
        for key in op.since:
            if not any(names.matches(n, key) for n in op.channels):
                raise ProtocolError("bad_request", f"since: {key!r} is not in channels")
        if len(feed.names | set(op.channels)) > self._limits.max_subscriptions:
            raise too_many_subscriptions(self._limits.max_subscriptions)

    def _command(self, op: CommandOp, access: Access) -> None:
        if len(self._commands) >= self._limits.max_commands:
            self._error(op.id, "rate_limited", "too many commands in flight")
            return
        try:
            outcome = self._on_command(op, access)
        except Exception:
            log.exception("session %s: command %s failed", self.id, op.name)
            outcome = CommandReply.failure("internal_error", "the command failed on the server")
        if isinstance(outcome, CommandReply):
            self._reply(op, outcome)
            return
        task = asyncio.create_task(self._run_command(op, outcome))
        self._commands.add(task)
        task.add_done_callback(self._commands.discard)

    async def _run_command(
        self, op: CommandOp, command: Callable[[], Awaitable[CommandReply]]
    ) -> None:
        try:
            reply = await command()
        except Exception:
            log.exception("session %s: command %s failed", self.id, op.name)
            reply = CommandReply.failure("internal_error", "the command failed on the server")
        self._reply(op, reply)

    def _reply(self, op: CommandOp, reply: CommandReply) -> None:
        if reply.refused and reply.error is not None:
            self._send(Error(id=op.id, error=reply.error))
        else:
            self._send(Result(id=op.id, ok=reply.ok, data=reply.data, error=reply.error))
