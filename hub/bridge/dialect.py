"""One bridge profile's dialect, both ways: pure translation, no I/O.

:class:`Dialect` builds requests from the hub's values and reads answers into the structs
of :mod:`hub.bridge.models`; its simulator side (:mod:`hub.bridge.sim_dialect`) reads
requests and writes answers, so one model answers in every profile's dialect.

Reading is tolerant inside the profile's rules: a field is looked up at the profile's
path(s) first, then under the usual names of MT4 bridges (``freeMargin``, ``stop_loss``,
``volume`` ...); numbers may be strings; times may be epoch seconds, milliseconds or text
in the server's zone; sides may be ``buy``, ``BUY``, ``0``, ``OP_BUY`` or
``ORDER_TYPE_BUY``. Pending orders and balance/credit rows are skipped and counted, and a
bad row is skipped, never the whole list. What the hub cannot work with raises
:class:`~hub.bridge.errors.BridgeProtocolError` naming the operation, field and value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote

import msgspec

from channels.clock import now_ms
from channels.validation import describe
from hub.bridge.errors import BridgeProtocolError, BridgeRejected, BridgeServerError
from hub.bridge.models import Account, ClosedTrade, Position, Tick
from hub.bridge.profile import BridgeProfile, Operation, server_tz

__all__ = ["Dialect", "Request", "RowSkips"]

S = TypeVar("S", bound=msgspec.Struct)

_MISSING: Any = object()
_SECONDS_BELOW = 100_000_000_000  # an epoch number below this is seconds (ms: 1973)

# The usual names of MT4/MT5 bridges, compared without case, ``_`` or ``-``.
_ALIASES: dict[str, tuple[str, ...]] = {
    "ticket": ("ticket", "order", "orderid", "id", "position", "positionid", "deal"),
    "symbol": ("symbol", "instrument", "pair"),
    "action": ("action", "type", "cmd", "side", "actiontype", "ordertype", "direction"),
    "lots": ("lots", "volume", "lot", "size"),
    "open_price": ("openprice", "priceopen", "price"),
    "close_price": ("closeprice", "priceclose", "price"),
    "sl": ("sl", "stoploss"),
    "tp": ("tp", "takeprofit"),
    "profit": ("profit", "pnl"),
    "open_time": ("opentime", "timeopen", "time"),
    "close_time": ("closetime", "timeclose"),
    "comment": ("comment",),
    "magic": ("magic", "magicnumber"),
    "reason": ("reason",),
    "balance": ("balance",),
    "equity": ("equity",),
    "margin": ("margin", "usedmargin"),
    "free_margin": ("freemargin", "marginfree"),
    "currency": ("currency",),
    "leverage": ("leverage",),
    "bid": ("bid",),
    "ask": ("ask",),
    "time": ("time", "timestamp", "timemsc", "updated"),
}
# (hub field, kind, required)
_ACCOUNT = (("balance", "num", True), ("equity", "num", True), ("margin", "num", False),
            ("free_margin", "num", False), ("profit", "num", False), ("currency", "str", False),
            ("leverage", "int", False))  # fmt: skip
_TICK = (("symbol", "symbol", False), ("bid", "num", True), ("ask", "num", True),
         ("time", "time", False))  # fmt: skip
_POSITION = (("ticket", "int", True), ("symbol", "symbol", True), ("action", "action", True),
             ("lots", "num", True), ("open_price", "num", True), ("sl", "stop", False),
             ("tp", "stop", False), ("profit", "num", False), ("open_time", "time", False),
             ("comment", "str", False), ("magic", "int", False))  # fmt: skip
_CLOSED = (*_POSITION, ("close_price", "num", True), ("close_time", "time", False),
           ("reason", "reason", False))  # fmt: skip
# Optional fields a probe reports when missing (the others are extras a bridge may lack).
_EXPECTED = {"margin", "free_margin", "profit", "symbol", "time", "sl", "tp", "open_time",
             "close_time", "comment"}  # fmt: skip
_KINDS = {name: kind for name, kind, _ in (*_ACCOUNT, *_TICK, *_CLOSED)}
_KINDS.update(since="time", ticket="int", lots="num")

_SIDES = {"buy": "buy", "sell": "sell", "long": "buy", "short": "sell", "0": "buy", "1": "sell"}
_PENDING = {"buylimit", "selllimit", "buystop", "sellstop", "buystoplimit", "sellstoplimit",
            "2", "3", "4", "5"}  # fmt: skip
_BALANCE = {"balance", "credit", "deposit", "withdrawal", "bonus", "charge", "correction",
            "6", "7"}  # fmt: skip
_PREFIX = re.compile(r"^(order_type_|position_type_|deal_type_|op_|type_)")
_TEXT_TIMES = ("%Y.%m.%d %H:%M:%S", "%Y.%m.%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S")


def _norm(key: str) -> str:
    return key.lower().replace("_", "").replace("-", "")


class _Skip(Exception):
    """A row that is no open trade: a pending order or a balance/credit operation."""

    def __init__(self, kind: str) -> None:
        self.kind = kind


class _Bad(Exception):
    def __init__(self, fld: str, value: Any, problem: str) -> None:
        missing = value is _MISSING
        super().__init__(f"field {fld} missing" if missing else f"field {fld}: {value!r} {problem}")


@dataclass
class RowSkips:
    """What the last read of a list left out, by reason (``/api/status``)."""

    pending: int = 0
    balance: int = 0
    bad: int = 0
    errors: list[str] = field(default_factory=list)  # the bad rows' problems


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: bytes | None


def _get(doc: Any, path: str) -> Any:
    node = doc
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def _set(doc: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node = doc
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


def _paths(spec: str | list[str] | None, default: str) -> list[str]:
    if spec is None:
        return [default]
    return [spec] if isinstance(spec, str) else list(spec)


class Dialect:
    """``profile`` for one agent: its symbols at the bridge (``XAUUSD`` -> ``XAUUSD.m``) and
    the trade server's time zone (``timezone`` overrides the profile's)."""

    def __init__(
        self,
        profile: BridgeProfile,
        symbols: Mapping[str, str] | None = None,
        timezone: str | None = None,
    ) -> None:
        self.profile = profile
        self.to_bridge = dict(symbols or {})
        self.from_bridge = {b: h for h, b in self.to_bridge.items()}
        self.tz = server_tz(timezone or profile.time.timezone)
        self.notes: list[str] | None = None  # set by `mt4hub probe` to collect mismatches

    # -- values -------------------------------------------------------------------------

    def hub_symbol(self, name: str) -> str:
        return self.from_bridge.get(name, name)

    def bridge_symbol(self, name: str) -> str:
        return self.to_bridge.get(name, name)

    def action(self, value: Any) -> str:
        """``buy``/``sell``, or :class:`_Skip` for a pending order or a balance row."""
        acts = self.profile.actions
        for side, named in (("buy", acts.buy), ("sell", acts.sell)):
            if str(value).lower() == str(named).lower():
                return side
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ValueError("is not a side (buy or sell)")
        key = _PREFIX.sub("", str(value).strip().lower()).replace("_", "").replace(" ", "")
        if key in _SIDES:
            return _SIDES[key]
        if key in _PENDING:
            raise _Skip("pending")
        if key in _BALANCE:
            raise _Skip("balance")
        raise ValueError("is not a side (buy or sell)")

    def time_ms(self, value: Any) -> int:
        if isinstance(value, str):
            text = value.strip()
            try:
                value = float(text)
            except ValueError:
                return self._text_time(text)
        number = _number(value)
        if number < _SECONDS_BELOW:
            number *= 1000
        return round(number)

    def _text_time(self, text: str) -> int:
        patterns = (self.profile.time.text, *_TEXT_TIMES)
        for pattern in patterns:
            try:
                parsed = datetime.strptime(text.removesuffix("Z"), pattern)
            except ValueError:
                continue
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=self.tz)
            return int(parsed.timestamp() * 1000)
        raise ValueError(f"is not a time ({self.profile.time.text!r} or epoch seconds/ms)")

    def _read(self, kind: str, value: Any) -> Any:
        if kind == "num":
            return _number(value)
        if kind == "int":
            number = _number(value)
            if not number.is_integer():
                raise ValueError("is not a whole number")
            return int(number)
        if kind == "stop":
            if value is None:
                return None
            stop = _number(value)
            return None if stop == 0 else stop
        if kind == "time":
            return 0 if value is None else self.time_ms(value)
        if kind == "action":
            return self.action(value)
        if kind == "symbol":
            if not isinstance(value, str):
                raise ValueError("is not a symbol name")
            return self.hub_symbol(value)
        if kind == "reason":
            key = str(value).strip().lower()
            return {"so": "stop_out", "stopout": "stop_out"}.get(key, key)
        if value is None:
            return ""
        if isinstance(value, (dict, list)):
            raise ValueError("is not text")
        return str(value)

    def _write(self, kind: str, value: Any) -> Any:
        if value is None:
            return None
        if kind == "action":
            acts = self.profile.actions
            return acts.buy if value == "buy" else acts.sell
        if kind == "symbol":
            return self.bridge_symbol(value)
        if kind == "time":
            fmt = self.profile.time.format
            if fmt == "epoch_s":
                value = int(value // 1000)
            elif fmt == "text":
                return datetime.fromtimestamp(value / 1000, self.tz).strftime(
                    self.profile.time.text
                )
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if number and self.profile.numbers_as_strings:
            return repr(value)
        return value

    # -- requests (client side) ---------------------------------------------------------

    def request(self, name: str, values: Mapping[str, Any]) -> Request:
        """The call for operation ``name`` with the hub's ``values``; None values are left
        out (a modify that names no tp sends no tp)."""
        op = self.profile.operation(name)
        assert op is not None, name
        path = _fill(op.path, values, self._path_value)
        query: dict[str, str] = {}
        for param, template in op.query.items():
            try:
                query[param] = _fill(template, values, self._query_value)
            except KeyError:
                continue  # a value not given (no ``since``): no parameter
        body: dict[str, Any] | None = None
        if op.method in ("POST", "PUT", "PATCH") or op.body or op.const:
            body = {}
            for path_, value in op.const.items():
                _set(body, path_, value)
            for hub, bridge in op.body.items():
                value = values.get(hub)
                if value is None or value == "":
                    continue
                _set(body, bridge, self._write(_KINDS.get(hub, "str"), value))
        raw = msgspec.json.encode(body) if body is not None else None
        return Request(op.method, path, query, raw)

    def _path_value(self, name: str, value: Any) -> str:
        return quote(str(self._write(_KINDS.get(name, "str"), value)), safe="")

    def _query_value(self, name: str, value: Any) -> str:
        return str(self._write(_KINDS.get(name, "str"), value))

    # -- answers (client side) ----------------------------------------------------------

    def payload(self, name: str, status: int, raw: bytes, where: str | None = None) -> Any:
        """The answer's payload, or the bridge's refusal as an error with its MT4 code
        (``where``: the call as made, ``GET /tick/XAUUSD``)."""
        where = where or self._where(name)
        try:
            doc = msgspec.json.decode(raw)
        except msgspec.DecodeError as exc:
            if status >= 400:
                doc = None
            else:
                raise BridgeProtocolError(f"{where}: bad answer: {exc}") from None
        env = self.profile.envelope
        failed = status >= 400
        if isinstance(doc, dict):
            flag = _get(doc, env.success) if env.success else doc.get("success", _MISSING)
            if flag is False or (isinstance(flag, str) and flag.lower() == "false"):
                failed = True
            elif env.success is None and isinstance(doc.get("error"), str) and doc["error"]:
                failed = True  # {"error": "..."} with a 200
        if failed:
            message, code = self._error(doc, raw)
            text = f"{message} (HTTP {status})" if status >= 400 else message
            if status >= 500:
                raise BridgeServerError(f"{where}: HTTP {status}: {message}", mt4_code=code)
            raise BridgeRejected(text, mt4_code=code)
        if env.data is not None:
            data = _get(doc, env.data) if isinstance(doc, dict) else _MISSING
            if data is _MISSING:
                raise BridgeProtocolError(f"{where}: bad answer: no {env.data!r} in it")
            return data
        return doc

    def _error(self, doc: Any, raw: bytes) -> tuple[str, int | None]:
        env = self.profile.envelope
        message: Any = _MISSING
        code: Any = _MISSING
        if isinstance(doc, dict):
            usual = ["error", "message", "msg", "description", "error.message", "error.msg"]
            for p in [*_paths(env.message, "error"), *usual]:
                message = _get(doc, p)
                if isinstance(message, (str, int, float)) and message != "":
                    break
                message = _MISSING
            codes = [*(_paths(env.code, "code") if env.code else []), "code", "error_code",
                     "errorCode", "retcode", "lastError", "error.code"]  # fmt: skip
            for p in codes:
                code = _get(doc, p)
                if code is not _MISSING and code is not None:
                    break
        number: int | None = None
        if code is not _MISSING and code is not None:
            try:
                number = int(_number(code))
            except ValueError:
                number = None
        if message is _MISSING:
            text = raw[:200].decode("utf-8", "replace").strip() or "no body"
            message = text if not isinstance(doc, dict) else "refused without a message"
        return str(message), number

    def _where(self, name: str) -> str:
        op = self.profile.operation(name)
        return f"{op.method} {op.path}" if op is not None else name

    def _find(self, name: str, row: dict[str, Any], hub: str, op: Operation) -> Any:
        declared = _paths(op.fields.get(hub), hub)
        for p in declared:
            value = _get(row, p)
            if value is not _MISSING:
                return value
        keys = {_norm(k): k for k in row}
        for alias in (_norm(hub), *_ALIASES.get(hub, ())):
            if alias in keys:
                if self.notes is not None:
                    missing = f"field {hub} missing (profile: {' or '.join(declared)})"
                    self._note(name, f"{missing}, found as {keys[alias]!r}")
                return row[keys[alias]]
        return _MISSING

    def _note(self, name: str, text: str) -> None:
        op = self.profile.operation(name)
        if self.notes is not None:
            line = f"{op.path if op is not None else name}: {text}"
            if line not in self.notes:
                self.notes.append(line)

    def _row(self, name: str, row: Any, spec: tuple[tuple[str, str, bool], ...]) -> dict[str, Any]:
        if not isinstance(row, dict):
            raise _Bad("(row)", row, "is not an object")
        op = self.profile.operation(name)
        assert op is not None
        values: dict[str, Any] = {}
        skip: _Skip | None = None
        for hub, kind, required in spec:
            raw = self._find(name, row, hub, op)
            if raw is _MISSING:
                if self.notes is not None and (required or hub in _EXPECTED or hub in op.fields):
                    where = " or ".join(_paths(op.fields.get(hub), hub))
                    self._note(name, f"field {hub} missing (profile: {where})")
                if required:
                    values[hub] = _MISSING
                continue
            try:
                values[hub] = self._read(kind, raw)
            except _Skip as exc:
                skip = exc
            except ValueError as exc:
                raise _Bad(hub, raw, str(exc)) from None
        if skip is not None:
            raise skip
        for hub, value in values.items():
            if value is _MISSING:
                raise _Bad(hub, _MISSING, "")
        return values

    def _struct(self, typ: type[S], values: dict[str, Any]) -> S:
        try:
            return msgspec.convert(values, typ)
        except msgspec.ValidationError as exc:
            fld, _, problem = describe(exc).partition(": ")
            raise _Bad(fld, values.get(fld), problem) from None

    def account(self, data: Any) -> Account:
        try:
            values = self._row("account", data, _ACCOUNT)
            margin = values.setdefault("margin", 0.0)
            values.setdefault("free_margin", values["equity"] - margin)
            values.setdefault("profit", values["equity"] - values["balance"])
            return self._struct(Account, values)
        except (_Bad, _Skip) as exc:
            raise BridgeProtocolError(f"{self._where('account')}: bad answer: {exc}") from None

    def tick(self, data: Any, symbol: str) -> Tick:
        where = self._where("tick").replace("{symbol}", self.bridge_symbol(symbol))
        try:
            values = self._row("tick", data, _TICK)
            answered = values.setdefault("symbol", symbol)
            if answered != symbol:
                if not answered.startswith(symbol):  # XAUUSD.m for XAUUSD: a broker suffix
                    raise BridgeProtocolError(f"{where}: answered for {answered!r}")
                values["symbol"] = symbol
            if not values.get("time"):
                values["time"] = now_ms()
            tick = self._struct(Tick, values)
        except (_Bad, _Skip) as exc:
            raise BridgeProtocolError(f"{where}: bad answer: {exc}") from None
        if tick.bid > tick.ask:
            raise BridgeProtocolError(f"{where}: bid {tick.bid} above ask {tick.ask}")
        return tick

    def _rows(self, name: str, data: Any) -> list[Any]:
        op = self.profile.operation(name)
        assert op is not None
        rows = _get(data, op.rows) if op.rows is not None else data
        if isinstance(rows, dict) and op.rows is None:  # {"positions": [...]} without a key
            lists = [(k, v) for k, v in rows.items() if isinstance(v, list)]
            if len(lists) == 1:
                self._note(name, f"rows found under {lists[0][0]!r} (profile: the answer itself)")
                rows = lists[0][1]
        if not isinstance(rows, list):
            shown = "missing" if rows is _MISSING else f"{type(rows).__name__}, not a list"
            raise BridgeProtocolError(f"{self._where(name)}: bad answer: rows {shown}")
        return rows

    def positions(self, data: Any, skips: RowSkips | None = None) -> list[Position]:
        return [p for p, _ in self.position_rows(data, skips)]

    def position_rows(self, data: Any, skips: RowSkips | None = None) -> list[tuple[Position, int]]:
        """(position, magic number or 0) for each open trade in a ``/positions`` answer."""
        return self._list("positions", data, _POSITION, Position, skips)

    def history(self, data: Any, skips: RowSkips | None = None) -> list[tuple[ClosedTrade, int]]:
        return self._list("history", data, _CLOSED, ClosedTrade, skips)

    def _list(
        self,
        name: str,
        data: Any,
        spec: tuple[tuple[str, str, bool], ...],
        typ: type[S],
        skips: RowSkips | None,
    ) -> list[tuple[S, int]]:
        return self._decode(name, self._rows(name, data), spec, typ, skips)

    def tagged_history(
        self, data: Any, field: str, match: Callable[[Any], bool]
    ) -> list[ClosedTrade]:
        """The rows of a ``/history`` answer whose raw ``field`` (``comment`` or ``magic``)
        satisfies ``match``, decoded; the others are not decoded at all (a whole day of
        history is searched for one order's tag). Skipped rows are not counted here."""
        op = self._op("history")
        rows = [
            r for r in self._rows("history", data)
            if isinstance(r, dict) and match(self._find("history", r, field, op))
        ]  # fmt: skip
        return [t for t, _ in self._decode("history", rows, _CLOSED, ClosedTrade, None)]

    def tag_marks(self, data: Any, field: str) -> list[tuple[int, int, Any]]:
        """``(ticket, close time, raw field)`` of each ``/history`` row, nothing else
        decoded: what the order-tag index keeps. A row without a readable ticket or close
        time is left out (it could not be decoded as a closed trade either)."""
        op = self._op("history")
        marks = []
        for row in self._rows("history", data):
            if not isinstance(row, dict):
                continue
            try:
                ticket = self._read("int", self._find("history", row, "ticket", op))
                closed = self._read("time", self._find("history", row, "close_time", op))
            except (TypeError, ValueError):
                continue
            marks.append((ticket, closed, self._find("history", row, field, op)))
        return marks

    def _decode(
        self,
        name: str,
        rows: list[Any],
        spec: tuple[tuple[str, str, bool], ...],
        typ: type[S],
        skips: RowSkips | None,
    ) -> list[tuple[S, int]]:
        skips = skips if skips is not None else RowSkips()
        out: list[tuple[S, int]] = []
        for i, row in enumerate(rows):
            try:
                out.append(self._one(name, row, spec, typ))
            except _Skip as exc:
                setattr(skips, exc.kind, getattr(skips, exc.kind) + 1)
            except _Bad as exc:
                skips.bad += 1
                skips.errors.append(f"{self._where(name)}: row {i}: {exc}")
        return out

    def _one(
        self, name: str, row: Any, spec: tuple[tuple[str, str, bool], ...], typ: type[S]
    ) -> tuple[S, int]:
        if isinstance(row, dict) and typ is ClosedTrade:
            lots = self._find(name, row, "lots", self._op(name))
            symbol = self._find(name, row, "symbol", self._op(name))
            if symbol in (_MISSING, None, "") and lots in (_MISSING, None, 0, 0.0, "0"):
                raise _Skip("balance")  # a deposit row: no symbol, no lots
        values = self._row(name, row, spec)
        magic = values.pop("magic", 0)
        if typ is ClosedTrade and "reason" not in values:
            values["reason"] = _reason(values.get("comment", ""))
        if typ is ClosedTrade and values.get("reason") not in ("close", "sl", "tp", "stop_out"):
            values["reason"] = "close"
        return self._struct(typ, values), magic

    def _op(self, name: str) -> Operation:
        op = self.profile.operation(name)
        assert op is not None
        return op

    def filled(self, name: str, data: Any) -> tuple[Position | None, int | None, int]:
        """A fill or modify answer: (the position, None, magic) when it says it all, else
        (None, the ticket it names, 0) to be completed from ``/positions``."""
        try:
            position, magic = self._one(name, data, _POSITION, Position)
            return position, None, magic
        except (_Bad, _Skip):
            pass
        return None, self._ticket(name, data), 0

    def closed(self, name: str, data: Any) -> tuple[ClosedTrade | None, int | None]:
        try:
            trade, _ = self._one(name, data, _CLOSED, ClosedTrade)
            return trade, None
        except (_Bad, _Skip):
            return None, self._ticket(name, data)

    def _ticket(self, name: str, data: Any) -> int | None:
        if isinstance(data, (int, float)) and not isinstance(data, bool):
            return int(data) if float(data).is_integer() else None
        if not isinstance(data, dict):
            return None
        raw = self._find(name, data, "ticket", self._op(name))
        try:
            return None if raw is _MISSING else int(self._read("int", raw))
        except ValueError:
            return None


def _fill(template: str, values: Mapping[str, Any], show: Callable[[str, Any], str]) -> str:
    def one(m: re.Match[str]) -> str:
        value = values.get(m[1])
        if value is None:
            raise KeyError(m[1])
        return show(m[1], value)

    return re.sub(r"\{(\w+)\}", one, template)


def _number(value: Any) -> float:
    if isinstance(value, bool) or value is None:
        raise ValueError("is not a number")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ValueError("is not a number") from None
    if not isinstance(value, (int, float)):
        raise ValueError("is not a number")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError("is not a finite number")
    return number


def _reason(comment: str) -> str:
    text = comment.lower()
    if "[sl]" in text:
        return "sl"
    if "[tp]" in text:
        return "tp"
    if text.startswith("so:") or "[so]" in text:
        return "stop_out"
    return "close"
