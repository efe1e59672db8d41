"""Shared endpoint helpers: JSON responses, auth, errors. Endpoints stay thin."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from channels.asgi import bearer_token
from channels.errors import ProtocolError
from channels.session import Access, Role
from channels.validation import describe
from hub.errors import HubError

if TYPE_CHECKING:
    from hub.app import Hub

__all__ = [
    "authenticate",
    "hub_of",
    "json_response",
    "read_body",
    "require",
]

_encoder = msgspec.json.Encoder()


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        _encoder.encode(data), status_code=status, media_type="application/json", headers=headers
    )


def hub_of(conn: HTTPConnection) -> Hub:
    hub: Hub = conn.app.state.hub
    return hub


def authenticate(conn: HTTPConnection) -> Access:
    """The caller's access, or 401."""
    try:
        token = bearer_token(conn.headers, conn.scope.get("query_string", b""))
    except ProtocolError as exc:
        raise HubError(exc.code, exc.message) from None
    if token is None:
        raise HubError("unauthorized", "missing token: send 'Authorization: Bearer <token>'")
    access = hub_of(conn).auth.authenticate(token)
    if access is None:
        raise HubError("unauthorized", "invalid or expired token")
    return access


def require(conn: HTTPConnection, role: Role = "read", agent: str | None = None) -> Access:
    """The caller's access, or 401/403. ``agent``: the agent the request touches."""
    access = authenticate(conn)
    if not access.allows(role):
        raise HubError("forbidden", f"this needs the {role!r} role; the token has {access.role!r}")
    if agent is not None and not access.may_touch(agent):
        raise HubError("forbidden", f"this token may not touch agent {agent!r}")
    return access


async def read_body(request: Request, typ: type[Any], max_bytes: int = 65536) -> Any:
    """Decode a JSON body into ``typ``; errors name the field at fault."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():  # stop reading at the limit, never buffer more
        size += len(chunk)
        if size > max_bytes:
            raise HubError("bad_request", f"body too large (over {max_bytes} bytes)")
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body.strip():
        body = b"{}"
    try:
        return msgspec.json.decode(body, type=typ)
    except msgspec.ValidationError as exc:
        if exc.args and str(exc).startswith("Expected `object`, got"):
            raise HubError("bad_request", f"body must be a JSON object: {describe(exc)}") from None
        raise HubError("bad_request", describe(exc)) from None
    except msgspec.DecodeError as exc:
        raise HubError("bad_request", f"body is not valid JSON: {exc}") from None
