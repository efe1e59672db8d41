"""The simulator's side of a dialect: it reads requests and writes answers the way a bridge
speaking the profile would (:mod:`hub.bridge.sim_server`), so one model answers in every
profile's dialect."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from hub.bridge.dialect import _KINDS, _MISSING, Dialect, _get, _paths, _set, _Skip
from hub.bridge.profile import BUILTIN, Operation, load_profile

__all__ = ["SimDialect"]


class SimDialect(Dialect):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The hub's own protocol with no symbol renames: an answer is the model's structs
        # as they are (the same document as field by field, at a fraction of the cost).
        renamed = any(hub != bridge for hub, bridge in self.to_bridge.items())
        self.native = self.profile == load_profile(BUILTIN) and not renamed

    def read_request(
        self, name: str, params: Mapping[str, str], query: Mapping[str, str], body: Any
    ) -> dict[str, Any]:
        """The hub's values in a request of operation ``name`` (path parameters, query
        parameters and body), or ``ValueError`` naming the bridge field."""
        op = self._op(name)
        values: dict[str, Any] = {}
        for key, text in params.items():
            values[key] = self._request_value(key, text, key)
        for param, template in op.query.items():
            m = re.fullmatch(r"\{(\w+)\}", template)
            if m is not None and param in query:
                values[m[1]] = self._request_value(m[1], query[param], param)
        if op.body and not isinstance(body, dict):
            raise ValueError("body: must be a JSON object")
        for hub, bridge in op.body.items():
            value = _get(body, bridge)
            if value is not _MISSING and value is not None:
                values[hub] = self._request_value(hub, value, bridge)
        return values

    def _request_value(self, hub: str, value: Any, shown: str) -> Any:
        kind = _KINDS.get(hub, "str")
        if kind in ("stop", "num") and hub in ("sl", "tp"):
            kind = "num"
        try:
            return self._read(kind, value)
        except _Skip:
            raise ValueError(f"{shown}: {value!r} is not buy or sell") from None
        except ValueError as exc:
            raise ValueError(f"{shown}: {value!r} {exc}") from None

    def answer(self, name: str, obj: Any, magic: Callable[[int], int] | None = None) -> Any:
        """The answer document of operation ``name`` for the model's ``obj`` (a struct or a
        list of them), in this dialect; ``magic`` gives a ticket's magic number."""
        if self.native:
            return msgspec.to_builtins(obj)
        op = self._op(name)
        if isinstance(obj, list):
            rows = [self._fields(op, o, magic) for o in obj]
            data: Any = rows
            if op.rows is not None:
                data = {}
                _set(data, op.rows, rows)
        else:
            data = self._fields(op, obj, magic)
        return self.wrap(data)

    def wrap(self, data: Any) -> Any:
        env = self.profile.envelope
        if env.data is None:
            return data
        doc: dict[str, Any] = {}
        if env.success is not None:
            _set(doc, env.success, True)
        _set(doc, env.data, data)
        return doc

    def error_answer(self, message: str, code: int | None = None) -> dict[str, Any]:
        env = self.profile.envelope
        doc: dict[str, Any] = {}
        if env.success is not None:
            _set(doc, env.success, False)
        _set(doc, _paths(env.message, "error")[0], message)
        if code is not None:  # under "code" when the profile names no place for it
            _set(doc, _paths(env.code, "code")[0] if env.code else "code", code)
        return doc

    def _fields(
        self, op: Operation, obj: msgspec.Struct, magic: Callable[[int], int] | None
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        names = list(obj.__struct_fields__)
        if magic is not None and "magic" in op.fields:
            names.append("magic")
        for hub in names:
            if hub == "magic":
                value: Any = magic(obj.ticket) if magic is not None else 0  # type: ignore[attr-defined]
            else:
                value = getattr(obj, hub)
            path = _paths(op.fields.get(hub), hub)[0]
            _set(out, path, self._write(_KINDS.get(hub, "str"), value))
        return out
