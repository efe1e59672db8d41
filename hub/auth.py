"""Who may do what: static tokens (``HUB_ADMIN_TOKEN`` and config ``auth.tokens``) and HS256 JWTs.

Roles nest: read < trade < admin. A token may be limited to some agents. Secrets are
compared in constant time and never logged (``secrets`` feeds the log formatter's mask).
If no token at all is configured, a random admin token is generated at start
(``generated``). :meth:`Authenticator.weak_secrets` names every secret too short to trust
(a static token under 16 characters, a JWT secret under 32 bytes); ``mt4hub run`` refuses
to start with one unless given ``--insecure-dev``.

A JWT's name is its ``sub`` in the ``jwt:`` namespace (``jwt:alice``), so its rate limit,
connection slots and records' ``by`` are never a configured token's (config token names
cannot hold ``:``).
"""

from __future__ import annotations

import hmac
import os
import secrets
import time
from collections import Counter
from collections.abc import Mapping
from typing import Annotated

import jwt
import msgspec
from msgspec import Meta

from channels.session import Access
from hub.config import AgentId, AuthConfig, Role
from hub.errors import HubError

__all__ = ["Access", "Authenticator", "CommandLimiter", "ConnectionSlots"]

JWT_NAMESPACE = "jwt:"  # a JWT's name is "jwt:" + its sub: never a configured token's name
MIN_TOKEN_CHARS = 16
MIN_JWT_SECRET_BYTES = 32


class _Claims(msgspec.Struct, frozen=True, kw_only=True):
    """What the hub reads from a verified JWT (other claims are ignored); a claim of the
    wrong type or shape makes the token invalid (401), never an error."""

    sub: Annotated[str, Meta(min_length=1, max_length=200)]
    role: Role
    agents: list[AgentId] | None = None


class Authenticator:
    def __init__(self, config: AuthConfig, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self._static: list[tuple[bytes, Access]] = []
        self._sources: dict[str, str] = {}  # environment variable -> its secret
        admin = env.get("HUB_ADMIN_TOKEN")
        self._admin = admin or None
        if admin:
            self._static.append((admin.encode(), Access(name="admin", role="admin", agents=None)))
            self._sources["HUB_ADMIN_TOKEN"] = admin
        for tok in config.tokens:
            secret = env.get(tok.secret_env)
            if secret:
                agents = frozenset(tok.agents) if tok.agents is not None else None
                self._static.append(
                    (secret.encode(), Access(name=tok.name, role=tok.role, agents=agents))
                )
                self._sources[tok.secret_env] = secret
        self._jwt_secret = env.get(config.jwt_secret_env) or None
        self._jwt_env = config.jwt_secret_env
        self.generated: str | None = None
        if not self._static and not self._jwt_secret:
            self.generated = secrets.token_urlsafe(24)
            self._static.append(
                (self.generated.encode(), Access(name="admin", role="admin", agents=None))
            )

    @property
    def secrets(self) -> list[str]:
        """Every secret the hub holds (to mask in the log, whatever its encoding)."""
        held = [secret.decode() for secret, _ in self._static]
        return held + ([self._jwt_secret] if self._jwt_secret else [])

    def weak_secrets(self) -> list[str]:
        """One line per secret too short to trust, naming its environment variable."""
        weak = [
            f"{env}: {len(secret)} characters; a token needs at least {MIN_TOKEN_CHARS}"
            for env, secret in self._sources.items()
            if len(secret) < MIN_TOKEN_CHARS
        ]
        if self._jwt_secret and len(self._jwt_secret.encode()) < MIN_JWT_SECRET_BYTES:
            weak.append(
                f"{self._jwt_env}: {len(self._jwt_secret.encode())} bytes; an HS256 secret "
                f"needs at least {MIN_JWT_SECRET_BYTES}"
            )
        return weak

    @property
    def admin_token(self) -> str | None:
        """The token to print at start: the generated one, else ``HUB_ADMIN_TOKEN``."""
        return self.generated or self._admin

    def authenticate(self, token: str | None) -> Access | None:
        if not token:
            return None
        presented = token.encode()
        found: Access | None = None
        for secret, access in self._static:
            # Compare against every secret, so timing says nothing about which one matched.
            if hmac.compare_digest(presented, secret) and found is None:
                found = access
        if found is not None:
            return found
        if self._jwt_secret and token.count(".") == 2:
            return self._from_jwt(token)
        return None

    def _from_jwt(self, token: str) -> Access | None:
        assert self._jwt_secret is not None
        try:
            claims = jwt.decode(
                token,
                self._jwt_secret,
                algorithms=["HS256"],
                options={"require": ["exp", "sub", "role"]},
            )
        except jwt.PyJWTError:
            return None
        try:
            read = msgspec.convert(claims, _Claims, strict=True)
        except msgspec.ValidationError:
            return None
        return Access(
            name=f"{JWT_NAMESPACE}{read.sub}",
            role=read.role,
            agents=frozenset(read.agents) if read.agents is not None else None,
        )


class CommandLimiter:
    """Trading commands per second per token (socket and REST together): a token bucket.

    One bucket per token name that sent a command; JWT subjects have no bound, so past
    ``MAX_BUCKETS`` the buckets that refilled (the same as none) are dropped.
    """

    MAX_BUCKETS = 1000

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}  # name -> (tokens, at)

    def _prune(self, now: float) -> None:
        full = [
            name
            for name, (tokens, at) in self._buckets.items()
            if tokens + (now - at) * self.rate >= self.burst
        ]
        for name in full:
            del self._buckets[name]

    def check(self, access: Access) -> None:
        now = time.monotonic()
        if len(self._buckets) >= self.MAX_BUCKETS and access.name not in self._buckets:
            self._prune(now)
        tokens, at = self._buckets.get(access.name, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        if tokens < 1:
            self._buckets[access.name] = (tokens, now)
            raise HubError(
                "rate_limited",
                f"token {access.name!r}: more than {self.rate:g} commands per second",
            )
        self._buckets[access.name] = (tokens - 1, now)


class ConnectionSlots:
    """Open connections per token (WebSocket and SSE together), at most ``limit`` each."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open: Counter[str] = Counter()

    def claim(self, access: Access) -> None:
        """Take a slot for ``access``, or raise ``rate_limited``; :meth:`release` it after."""
        if self.open[access.name] >= self.limit:
            raise HubError(
                "rate_limited", f"token {access.name!r}: at most {self.limit} connections at once"
            )
        self.open[access.name] += 1

    def release(self, access: Access) -> None:
        self.open[access.name] -= 1
        if self.open[access.name] <= 0:
            del self.open[access.name]
