"""The simulated EA Bridge over HTTP: :class:`~hub.bridge.sim.SimMarket` behind aiohttp.

Bridge endpoints (the contract of :mod:`hub.bridge.models`) obey the fault mode;
the test controls under ``/sim/`` answer in every mode:

| call | body | answer |
|---|---|---|
| ``POST /sim/price`` | ``{"symbol","bid","ask"}`` pins, ``{"symbol","walk":true}`` unpins | Tick |
| ``POST /sim/fault`` | ``{"mode":"ok|down|slow|error|garbage","delay_ms":N,"paths":…}`` | state |
| ``POST /sim/reset`` | | state |
| ``GET /sim/state`` | | state |

Fault modes: ``down`` drops the connection without an answer; ``slow`` processes
the request at once (an order IS filled) and answers after ``delay_ms``; ``error``
answers 500; ``garbage`` answers 200 with bodies that break the contract; ``reject``
answers trade calls (open, close, modify) with the MT4 error ``code`` (default 146),
``times`` times (default: until changed). Only ``ok`` and ``slow`` reach the account.
With ``paths`` (e.g. ``["/trade"]``) the mode applies to those bridge paths only; the
others answer normally.

The bridge endpoints are those of the app's bridge profile (default ``mt4hub``, the table
of :mod:`hub.bridge.models`), answered in its dialect (:mod:`hub.bridge.sim_dialect`).

Only programs may call it, never a web page: a request carrying ``Origin`` is 403 and a
``POST`` whose body is not ``application/json`` is 415 (a page's ``fetch`` with
``text/plain`` needs no CORS preflight; a JSON one does, and gets no CORS answer). The
``/sim/`` controls need ``Authorization: Bearer <control token>`` when one is set
(``HUB_SIM_CONTROL_TOKEN``, ``mt4hub sim --control-token``); without one they answer only
on a loopback address.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import itertools
import logging
import signal
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from aiohttp import web
from msgspec import Meta

from channels.clock import now_ms
from channels.validation import describe
from hub.bridge.profile import BridgeProfile, load_profile
from hub.bridge.sim import SimError, SimMarket
from hub.bridge.sim_dialect import SimDialect
from hub.config import SymbolSpec

__all__ = [
    "FaultMode",
    "SimServer",
    "SimState",
    "create_sim_app",
    "is_loopback",
    "serve_sim_forever",
    "start_sim",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

FaultMode = Literal["ok", "down", "slow", "error", "garbage", "reject"]
DEFAULT_DELAY_MS = 5000
WALK_INTERVAL = 0.1
SHUTDOWN_TIMEOUT = 1.0

_ENCODER = msgspec.json.Encoder()


class SimState(msgspec.Struct, frozen=True, kw_only=True):
    fault: FaultMode
    delay_ms: int
    orders_received: int
    orders_filled: int
    positions: int
    history: int


class _FaultBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    mode: FaultMode
    delay_ms: Annotated[int, Meta(ge=0, le=600_000)] = DEFAULT_DELAY_MS
    paths: list[str] | None = None  # only these bridge paths (e.g. ["/trade"]); None: all
    # reject: trade calls (open, close, modify) answer this MT4 error code, ``times`` times
    code: Annotated[int, Meta(ge=1)] = 146
    times: Annotated[int, Meta(ge=1)] | None = None


class _PriceBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    symbol: str
    bid: Annotated[float, Meta(gt=0)] | None = None
    ask: Annotated[float, Meta(gt=0)] | None = None
    walk: bool = False


class _Control:
    """The fault switch and order counter of one simulator app, and who may use ``/sim/``:
    anyone (``token`` None and ``open``), the holder of ``token``, or nobody."""

    def __init__(self, token: str | None = None, open: bool = True) -> None:
        self.token = token
        self.open = open and token is None
        self.mode: FaultMode = "ok"
        self.delay_ms = DEFAULT_DELAY_MS
        self.paths: list[str] | None = None
        self.orders_received = 0
        self.garbage = itertools.cycle(_GARBAGE)
        self.code = 146
        self.times: int | None = None


_MODEL = web.AppKey("sim_model", SimMarket)
_CONTROL = web.AppKey("sim_control", _Control)
_DIALECT = web.AppKey("sim_dialect", SimDialect)
_MAGIC = web.AppKey("sim_magic", dict[int, int])  # ticket -> magic number sent with it
_COMMENT_MAX = web.AppKey("sim_comment_max", int)  # what the "broker" keeps of a comment
_ROUTES = web.AppKey("sim_routes", dict[str, tuple[str, str]])  # operation -> (method, path)
_WRITES = ("open", "close", "partial_close", "modify")

# Wrong types for every required field of every bridge struct.
_WRONG_TYPES = (
    b'{"symbol":7,"bid":"1.1","ask":[],"time":"now","balance":"lots","equity":{},'
    b'"margin":"x","free_margin":null,"profit":"x","ticket":"x","action":3,"lots":"x",'
    b'"open_price":"x","close_price":"x"}'
)
# NaN is not JSON; negative prices break the Price constraint as well.
_BAD_NUMBERS = (
    b'{"symbol":"XAUUSD","bid":-2650.0,"ask":NaN,"time":0,"balance":NaN,"equity":NaN,'
    b'"margin":0,"free_margin":NaN,"profit":0,"ticket":1001,"action":"buy","lots":-0.01,'
    b'"open_price":-1.0,"close_price":NaN}'
)
_GARBAGE: tuple[tuple[bytes, bytes], ...] = (  # (object body, list body)
    (b'{"symbol":"XAUUSD","bid":2650.1', b'[{"ticket":1001,"symbol":"XAU'),
    (_WRONG_TYPES, b"[" + _WRONG_TYPES + b"]"),
    (_BAD_NUMBERS, b"[" + _BAD_NUMBERS + b"]"),
    (b'"OK"', b'"OK"'),
)


def _json(obj: Any, status: int = 200) -> web.Response:
    return web.Response(body=_ENCODER.encode(obj), status=status, content_type="application/json")


def _error(message: str, status: int = 400) -> web.Response:
    return _json({"error": message}, status)


def _bridge_error(
    request: web.Request, message: str, status: int = 400, code: int | None = None
) -> web.Response:
    """A refusal in the profile's dialect, with an MT4 error code when one fits."""
    dialect = request.app[_DIALECT]
    return _json(dialect.error_answer(message, code or _mt4_code(message, status)), status)


def _mt4_code(message: str, status: int) -> int | None:
    """The MT4 code a real trade server would give for the simulator's refusal."""
    if status >= 500:
        return None
    field = message.split(":", 1)[0]
    if "not enough free margin" in message:
        return 134
    return {"sl": 130, "tp": 130, "lots": 131, "ticket": 4108, "symbol": 4106}.get(field)


class _BadBody(Exception):
    """A request body that does not decode; the message names the field."""


async def _decode(request: web.Request, typ: type[T]) -> T:
    raw = await request.read()
    try:
        return msgspec.json.decode(raw, type=typ)
    except msgspec.ValidationError as exc:
        raise _BadBody(describe(exc)) from None
    except msgspec.DecodeError as exc:
        raise _BadBody(f"body: not valid JSON ({exc})") from None


def _state(app: web.Application) -> SimState:
    model, control = app[_MODEL], app[_CONTROL]
    return SimState(
        fault=control.mode,
        delay_ms=control.delay_ms,
        orders_received=control.orders_received,
        orders_filled=model.orders_filled,
        positions=len(model.positions()),
        history=len(model.history()),
    )


# -- bridge endpoints ---------------------------------------------------------
# One handler per route, in the app's profile dialect: the request's values are read into
# the hub's names, the model answers, and the answer is written back in the dialect.


def _operation(name: str) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        dialect = request.app[_DIALECT]
        body: Any = None
        if request.body_exists:
            raw = await request.read()
            try:
                body = msgspec.json.decode(raw)
            except msgspec.DecodeError as exc:
                raise _BadBody(f"body: not valid JSON ({exc})") from None
        try:
            values = dialect.read_request(name, request.match_info, request.query, body)
        except ValueError as exc:
            raise _BadBody(str(exc)) from None
        for need in _NEEDS.get(name, ()):
            if need not in values:
                raise _BadBody(f"{_bridge_name(dialect, name, need)}: required field missing")
        result = _run(request.app, name, values)
        magic = request.app[_MAGIC]
        return _json(dialect.answer(name, result, magic=lambda t: magic.get(t, 0)))

    return handle


_NEEDS = {"tick": ("symbol",), "open": ("symbol", "action", "lots"),
          "close": ("ticket",), "partial_close": ("ticket",), "modify": ("ticket",)}  # fmt: skip


def _bridge_name(dialect: SimDialect, name: str, hub: str) -> str:
    op = dialect.profile.operation(name)
    return op.body.get(hub, hub) if op is not None else hub


def _run(app: web.Application, name: str, values: dict[str, Any]) -> Any:
    model = app[_MODEL]
    if name == "account":
        return model.account()
    if name == "tick":
        return model.tick(values["symbol"])
    if name == "positions":
        return model.positions()
    if name == "history":
        return model.history(values.get("since"))
    if name == "open":
        comment = str(values.get("comment", ""))[: app[_COMMENT_MAX]]
        position = model.trade(values["symbol"], values["action"], values["lots"],
                               values.get("sl"), values.get("tp"), comment)  # fmt: skip
        if values.get("magic"):
            app[_MAGIC][position.ticket] = values["magic"]
        return position
    if name in ("close", "partial_close"):
        return model.close(values["ticket"], values.get("lots"))
    assert name == "modify", name
    return model.modify(values["ticket"], values.get("sl"), values.get("tp"))


# -- test controls ------------------------------------------------------------


async def _sim_price(request: web.Request) -> web.Response:
    body = await _decode(request, _PriceBody)
    model = request.app[_MODEL]
    if body.walk:
        if body.bid is not None or body.ask is not None:
            return _error("walk: give either bid and ask (pin) or walk: true (unpin), not both")
        return _json(model.unpin(body.symbol))
    if body.bid is None or body.ask is None:
        missing = "bid" if body.bid is None else "ask"
        return _error(f"{missing}: required to pin a price (or send walk: true to unpin)")
    return _json(model.pin(body.symbol, body.bid, body.ask))


async def _sim_fault(request: web.Request) -> web.Response:
    body = await _decode(request, _FaultBody)
    control = request.app[_CONTROL]
    control.mode, control.delay_ms, control.paths = body.mode, body.delay_ms, body.paths
    control.code, control.times = body.code, body.times
    log.info("simulated bridge fault mode: %s (delay %d ms)", body.mode, body.delay_ms)
    return _json(_state(request.app))


async def _sim_reset(request: web.Request) -> web.Response:
    request.app[_MODEL].reset(now_ms())
    control = request.app[_CONTROL]
    control.mode, control.delay_ms, control.orders_received = "ok", DEFAULT_DELAY_MS, 0
    control.paths = None
    return _json(_state(request.app))


async def _sim_state(request: web.Request) -> web.Response:
    return _json(_state(request.app))


# -- middleware and app -------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every refusal as ``{"error": "..."}`` with its status."""
    try:
        return await handler(request)
    except _BadBody as exc:
        return _bridge_error(request, str(exc))
    except SimError as exc:
        return _bridge_error(request, str(exc), exc.status)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _bridge_error(request, f"{request.method} {request.path}: {exc.reason}", exc.status)


@web.middleware
async def _callers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Programs only (no ``Origin``, JSON bodies); ``/sim/`` for the control token's holder."""
    if "Origin" in request.headers:
        return _error(f"{request.method} {request.path}: requests from web pages are refused", 403)
    if request.method == "POST" and request.content_type != "application/json":
        return _error(f"POST {request.path}: the body must be application/json", 415)
    if request.path.startswith("/sim/"):
        refused = _control_refusal(request.app[_CONTROL], request.headers.get("Authorization"))
        if refused is not None:
            return _error(f"{request.method} {request.path}: {refused}", 403)
    return await handler(request)


def _control_refusal(control: _Control, authorization: str | None) -> str | None:
    if control.open:
        return None
    if control.token is None:
        return "the controls answer on loopback only; set a control token to use them here"
    scheme, _, presented = (authorization or "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(
        presented.strip().encode(), control.token.encode()
    ):
        return None
    return "send Authorization: Bearer <the control token>"


@web.middleware
async def _faults(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Apply the fault mode to bridge endpoints; advance the walk before answering."""
    if request.path.startswith("/sim/"):
        return await handler(request)
    control, routes = request.app[_CONTROL], request.app[_ROUTES]
    here = (request.method, request.path)
    if here == routes.get("open"):
        control.orders_received += 1
    mode = control.mode
    if control.paths is not None and request.path not in control.paths:
        mode = "ok"
    if mode == "reject":
        writes = {routes[w][1] for w in _WRITES if w in routes}
        if control.paths is None and _route_of(request) not in writes:
            mode = "ok"
        elif control.times is None or control.times > 0:
            if control.times is not None:
                control.times -= 1
            message = f"simulated trade server error {control.code}"
            return _bridge_error(request, message, 400, control.code)
    if mode == "down":
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=503)  # never written: the connection is gone
    if mode == "error":
        return _error("simulated bridge failure", 500)
    if mode == "garbage":
        as_object, as_list = next(control.garbage)
        lists = {routes[name][1] for name in ("positions", "history") if name in routes}
        body = as_list if request.path in lists else as_object
        return web.Response(body=body, content_type="application/json")
    request.app[_MODEL].step(now_ms())
    response = await handler(request)
    if mode == "slow":
        await asyncio.sleep(control.delay_ms / 1000)
    return response


def _route_of(request: web.Request) -> str:
    info = request.match_info.route.resource
    return info.canonical if info is not None else request.path


async def _walk(model: SimMarket, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            model.step(now_ms())
        except Exception:  # a bug in the model must not stop the walk silently
            log.exception("simulated bridge: price step failed")


def create_sim_app(
    model: SimMarket,
    *,
    walk_interval: float = WALK_INTERVAL,
    control_token: str | None = None,
    controls_open: bool = True,
    profile: BridgeProfile | None = None,
    comment_max: int = 31,
    names: dict[str, str] | None = None,
) -> web.Application:
    """The simulator app; while it runs, a task advances ``model`` every ``walk_interval`` s.

    It speaks ``profile``'s dialect (default: the hub's own, ``mt4hub``) and keeps
    ``comment_max`` characters of an order's comment, as MT4 brokers do (31, some 16);
    ``names`` are the symbols' names at this "broker" (``XAUUSD`` -> ``XAUUSD.m``).
    ``/sim/`` controls: for the holder of ``control_token`` when given, else for anyone
    when ``controls_open``, else for nobody."""
    app = web.Application(middlewares=[_errors, _callers, _faults])
    app[_MODEL] = model
    app[_CONTROL] = _Control(control_token, controls_open)
    profile = profile or load_profile()
    app[_DIALECT] = SimDialect(profile, names)
    app[_MAGIC] = {}
    app[_COMMENT_MAX] = comment_max
    routes: dict[str, tuple[str, str]] = {}

    async def walker(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(_walk(model, walk_interval), name="sim-walk")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(walker)
    # partial_close first: where it shares close's route, its reading (with lots) serves both
    for name in ("account", "tick", "positions", "history", "open", "partial_close", "close",
                 "modify"):  # fmt: skip
        op = profile.operation(name)
        if op is None:
            continue
        routes[name] = (op.method, op.path)
        if (op.method, op.path) not in [routes[n] for n in routes if n != name]:
            app.router.add_route(op.method, op.path, _operation(name))
    app[_ROUTES] = routes
    app.router.add_post("/sim/price", _sim_price)
    app.router.add_post("/sim/fault", _sim_fault)
    app.router.add_post("/sim/reset", _sim_reset)
    app.router.add_get("/sim/state", _sim_state)
    return app


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (``127.0.0.1``, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SimServer:
    """A running simulator: ``url`` to talk to, ``model`` to inspect, ``close()`` to stop."""

    def __init__(self, runner: web.AppRunner, model: SimMarket, host: str, port: int) -> None:
        self._runner = runner
        self.model = model
        self.host = host
        self.port = port
        self.url = f"http://{host}:{port}"

    async def close(self) -> None:
        await self._runner.cleanup()

    async def __aenter__(self) -> SimServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def start_sim(
    host: str,
    port: int,
    *,
    symbols: dict[str, SymbolSpec],
    balance: float,
    leverage: int = 100,
    currency: str = "USD",
    seed: int | None = None,
    control_token: str | None = None,
    profile: BridgeProfile | None = None,
    comment_max: int = 31,
    names: dict[str, str] | None = None,
) -> SimServer:
    """Serve a fresh simulated account on ``host:port`` (0 picks a free port).

    Its ``/sim/`` controls need ``control_token`` when given; without one they answer
    only when ``host`` is a loopback address."""
    model = SimMarket(symbols, balance, leverage, currency, seed)
    if control_token is None and not is_loopback(host):
        log.warning(
            "simulated EA Bridge on %s: /sim/ controls disabled (not loopback, no control token)",
            host,
        )
    runner = web.AppRunner(
        create_sim_app(
            model,
            control_token=control_token,
            controls_open=is_loopback(host),
            profile=profile,
            comment_max=comment_max,
            names=names,
        ),
        access_log=None,
        handler_cancellation=True,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
    )
    await runner.setup()
    try:
        # Bound here, not by aiohttp: a port another process takes at the same instant is
        # always an OSError (EADDRINUSE), which several instances on one config rely on.
        sock = socket.create_server((host, port))
        await web.SockSite(runner, sock).start()
    except OSError as exc:
        await runner.cleanup()
        reason = exc.strerror or str(exc)
        raise OSError(
            exc.errno, f"simulated EA Bridge cannot listen on {host}:{port}: {reason}"
        ) from exc
    bound = runner.addresses[0]
    return SimServer(runner, model, host, int(bound[1]))


async def serve_sim_forever(
    host: str,
    port: int,
    *,
    symbols: dict[str, SymbolSpec],
    balance: float,
    leverage: int = 100,
    currency: str = "USD",
    seed: int | None = None,
    control_token: str | None = None,
    profile: BridgeProfile | None = None,
) -> None:
    """Run a simulator until cancelled, SIGINT or SIGTERM (the ``mt4hub sim`` command)."""
    server = await start_sim(
        host,
        port,
        symbols=symbols,
        balance=balance,
        leverage=leverage,
        currency=currency,
        seed=seed,
        control_token=control_token,
        profile=profile,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
        except (NotImplementedError, RuntimeError) as exc:  # not the main thread, or Windows
            log.debug("simulated EA Bridge: no %s handler (%s)", sig.name, exc)
    log.info(
        "simulated EA Bridge listening on %s (balance %s %s, symbols %s, profile %s)",
        server.url,
        balance,
        currency,
        ",".join(symbols),
        (profile.name if profile else "mt4hub"),
    )
    try:
        await stop.wait()
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
        await server.close()
        log.info("simulated EA Bridge on %s stopped", server.url)
