"""``GET /api/notifications``: the delivery log, newest first, paged like ``/api/logs``
(``?agent=&limit=&before=``, and ``target=``, ``status=pending|delivered``, ``event=``)."""

from __future__ import annotations

import functools

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hub.api.common import hub_of, require
from hub.api.records import page
from hub.errors import HubError

__all__ = ["routes"]

_STATUSES = ("pending", "delivered")


async def notifications(request: Request) -> Response:
    require(request, "read")  # a caller without a token learns nothing, not even a bad filter
    params = request.query_params
    status = params.get("status")
    if status is not None and status not in _STATUSES:
        raise HubError("bad_request", f"status: must be pending or delivered, got {status!r}")
    query = functools.partial(
        hub_of(request).notifier.outbox.page,
        target=params.get("target") or None,
        status=status,
        event=params.get("event") or None,
    )
    return await page(request, "notifications", query)


routes = [Route("/api/notifications", notifications)]
