"""One delivery attempt: the request a target gets for a row (pure), and sending it.

A webhook gets the JSON body ``{"id", "event", "agent_id", "ts", "text", "data"}``
with ``X-MT4Hub-Signature: sha256=<hex HMAC-SHA256 of the body keyed by the secret>``
(plus ``X-MT4Hub-Event`` and ``X-MT4Hub-Delivery``, the row id, the same on every
retry, for de-duplication). A Telegram target gets ``sendMessage`` with the one-line
text. Any 2xx answer is delivered; anything else is a failed attempt, retried.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

import aiohttp
import msgspec

from hub.config import NotifyTarget
from hub.notify.outbox import Delivery

__all__ = ["DeliveryFailed", "Request", "request_for", "send", "sign"]

SIGNATURE_HEADER = "X-MT4Hub-Signature"

_encode = msgspec.json.Encoder().encode


class DeliveryFailed(Exception):
    """An attempt failed; the message says why (kept as the row's ``last_error``)."""


class Request(msgspec.Struct, frozen=True, kw_only=True):
    url: str
    body: bytes
    headers: dict[str, str]
    redact: tuple[str, ...] = ()  # secrets in the URL, never shown in an error


def sign(secret: str, body: bytes) -> str:
    """The ``X-MT4Hub-Signature`` value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def request_for(target: NotifyTarget, row: Delivery, env: Mapping[str, str]) -> Request:
    """What ``target`` is sent for ``row``; :class:`DeliveryFailed` when a secret it
    needs is missing from the environment (the row waits for it)."""

    def need(var: str | None) -> str:
        value = env.get(var or "")
        if not value:
            raise DeliveryFailed(f"environment variable {var} is not set (target {target.name})")
        return value

    if target.type == "telegram":
        token, chat_id = need(target.token_env), need(target.chat_id_env)
        body = _encode({"chat_id": chat_id, "text": row.text, "disable_web_page_preview": True})
        return Request(
            url=f"{target.api_base.rstrip('/')}/bot{token}/sendMessage",
            body=body,
            headers={"Content-Type": "application/json"},
            redact=(token,),
        )
    secret = need(target.secret_env)
    body = _encode(
        {"id": row.id, "event": row.event, "agent_id": row.agent_id, "ts": row.created_at,
         "text": row.text, "data": row.data}
    )  # fmt: skip
    assert target.url is not None  # the config check requires it for a webhook
    return Request(
        url=target.url,
        body=body,
        headers={
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(secret, body),
            "X-MT4Hub-Event": row.event,
            "X-MT4Hub-Delivery": str(row.id),
            "User-Agent": "mt4hub-notify",
        },
    )


async def send(session: aiohttp.ClientSession, request: Request, seconds: float) -> None:
    """POST ``request``; :class:`DeliveryFailed` unless the answer is 2xx."""
    try:
        await _post(session, request, seconds)
    except DeliveryFailed as exc:
        message = str(exc)
        for secret in request.redact:
            message = message.replace(secret, "***")
        raise DeliveryFailed(message) from None


async def _post(session: aiohttp.ClientSession, request: Request, seconds: float) -> None:
    try:
        async with session.post(
            request.url,
            data=request.body,
            headers=request.headers,
            timeout=aiohttp.ClientTimeout(total=seconds),
            allow_redirects=False,
        ) as resp:
            if 200 <= resp.status < 300:
                return
            text = (await resp.text(errors="replace"))[:200]
            raise DeliveryFailed(f"HTTP {resp.status}: {text}")
    except TimeoutError:
        raise DeliveryFailed(f"no answer within {seconds:g} s") from None
    except aiohttp.ClientError as exc:
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from None
