"""Explains why a request (or an entity data entry) does not fit the declarations: the
first problem, named by its whole path (`resource.attrs.project.members`) with the
expected type, in policyd's own words. Runs only after the generated validators have
refused something, so it may be thorough rather than fast."""

from __future__ import annotations

from typing import Any

from .. import values
from ..language.schema import (
    IP,
    NUMBER,
    STRING,
    TIME,
    EntitySchema,
    Schema,
    is_map,
    is_set,
    map_value,
)
from .graph import ParentsInvalid, parents_of
from .runtime import SEQUENCES

_EXPECTED = {
    IP: "an ip (IPv4/IPv6 address or CIDR range, as a string)",
    TIME: "a time (RFC 3339, as a string)",
    NUMBER: "a number",
    STRING: "a string",
    "bool": "a bool",
    "set<string>": "a set<string> (a list of strings)",
    "set<number>": "a set<number> (a list of numbers)",
}
REQUEST_KEYS = ("principal", "action", "resource", "context", "write_fields", "dry_run")
ENTITY_KEYS = ("type", "id", "attrs", "parents")


def _shown(value: Any) -> str:
    """A value for a message, at most 60 characters (an integer too long to print, as
    Python refuses past 4,300 digits, by its size)."""
    if type(value) is int and value.bit_length() > 190:
        return f"({value.bit_length() * 30103 // 100000 + 1}-digit)"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def kind(value: Any) -> str:
    return {bool: "bool", str: "string", int: "number", float: "number", list: "list",
            dict: "object", type(None): "null"}.get(type(value), type(value).__name__)


class Explainer:
    """The first problem of a value, an entity's attributes, or a whole request."""

    def __init__(self, schema: Schema, max_bytes: int):
        self.schema, self.max_bytes = schema, max_bytes

    def _too_long(self, value: str) -> str | None:
        size = values.utf8_len(value)
        return f"is {size} bytes long, over the limit of {self.max_bytes} " \
            "(--max-string-bytes)" if size > self.max_bytes else None

    def value(self, where: str, t: str, value: Any) -> str | None:
        """`where` and why `value` is not a `t`, or None if it is."""
        t = self.schema.runtime(t)  # a reference is its id
        if t == STRING and type(value) is str:
            problem = self._too_long(value)
            return f"{where} {problem}" if problem else None
        if t == "bool" and type(value) is bool or t == NUMBER and values.is_number(value):
            return None
        if t in (IP, TIME) and type(value) is str:
            try:
                (values.parse_ip if t == IP else values.parse_time)(value)
                return None
            except ValueError as exc:
                return f"{where}: expected {_EXPECTED[t]}, found {_shown(value)} ({exc})"
        if is_set(t) and type(value) in SEQUENCES:
            for i, item in enumerate(value):
                problem = self.value(f"{where}[{i}]", t[4:-1], item)
                if problem:
                    return problem
            return None
        if is_map(t) and type(value) is dict:
            for key, item in value.items():
                if type(key) is not str:
                    return f"{where}: map keys are strings, found {kind(key)} {_shown(key)}"
                problem = self._too_long(key) and f"{where}: a key {self._too_long(key)}" or \
                    self.value(f"{where}.{key}", map_value(t), item)
                if problem:
                    return problem
            return None
        record = self.schema.records.get(t)
        if record is not None and type(value) is dict:
            return self.attrs(where, record, value)
        if t == NUMBER and type(value) is float:
            return f"{where}: expected a finite number, found {value!r}"
        if t == NUMBER and type(value) is int:
            return f"{where}: expected a number, found the integer {_shown(value)}, beyond " \
                f"+-2**53 ({values.MAX_INT}): integers past it are not exact in JSON " \
                "(I-JSON, RFC 7493); send it as a string, or as a decimal"
        expected = _EXPECTED.get(t) or (f"a {t} (an object)" if record or is_map(t) else t)
        return f"{where}: expected {expected}, found {kind(value)} {_shown(value)}"

    def attrs(self, where: str, schema: EntitySchema, attrs: Any, supplied=(),
              stored: bool = False) -> str | None:
        """Exactly the declared attributes a request sends (or, with `stored`, that entity
        data holds), each of its type; `supplied` ones may be left out."""
        if not isinstance(attrs, dict):
            return f"{where} must be an object, found {kind(attrs)}"
        specs = schema.by_name
        for key in attrs:
            spec = specs.get(key)
            if spec is None:
                owner = "in context" if schema.kind == "context" else \
                    f"on {schema.kind} {schema.name}"
                return f"{where}.{key} is not declared {owner}"
            if spec.stored and not stored:
                return (f"{where}.{key} is stored: it comes from the policy set's entity "
                        "data, never from the request")
            if stored and not spec.stored:
                return f"{where}.{key} is not a stored attribute of {schema.kind} {schema.name}"
        for spec in schema.attrs:
            if spec.stored != stored:
                continue
            if spec.name not in attrs:
                if not spec.optional and not stored and spec.name not in supplied:
                    return f"{where}.{spec.name} is required ({spec.type})"
                continue
            problem = self.value(f"{where}.{spec.name}", spec.type, attrs[spec.name])
            if problem:
                return problem
        return None

    def request(self, request: Any) -> str:
        """The first problem with a request, in the order a reader would look for it."""
        problem = self._envelope(request)
        if problem:
            return problem
        s = self.schema
        p = request["principal"]
        schema = s.principals.get(p["type"])
        if schema is None:
            declared = ", ".join(s.principals) or "none"
            return f"principal.type: unknown principal type {p['type']!r} (declared: {declared})"
        problem = self.whole("principal", schema, p) or \
            self.attrs("principal.attrs", schema, p.get("attrs", {}))
        if problem:
            return problem
        context = request.get("context")
        if s.context is None:
            if context:
                return f"context.{next(iter(context))} is not declared (the set has no context)"
        else:
            supplied = tuple(a.name for a in s.context.attrs if a.name == "time" and a.type == TIME)
            problem = self.attrs("context", s.context, context or {}, supplied)
            if problem:
                return problem
        res = s.resources.get(request["resource"]["type"])
        if res is not None:
            r = request["resource"]
            problem = self.whole("resource", res, r) or \
                self.attrs("resource.attrs", res, r.get("attrs", {}))
            if problem:
                return problem
        return "invalid request"

    def whole(self, part: str, schema: EntitySchema, entity: dict) -> str | None:
        """A type stored as a whole is named by type and id alone; parents only where the
        type declares parent types (1.2)."""
        if schema.whole:
            for key in ("attrs", "parents"):
                if entity.get(key):
                    return (f"{part}.{key}: {schema.kind} {schema.name} is stored as a whole "
                            "(`stored` in its declaration): a request names it by type and id "
                            f"alone, and its {key} come from the policy set's entity data")
        if "parents" not in entity or schema.whole:
            return None
        try:
            parents_of(entity["parents"], schema.parents)
        except ParentsInvalid as exc:
            hint = "" if schema.parents else f" ({schema.name} declares no parent types)"
            return f"{part}.{exc}{hint}"
        for p in entity["parents"]:
            if self._too_long(p["id"]) or self._too_long(p["type"]):
                return f"{part}.parents: an id {self._too_long(p['id']) or 'is too long'}"
        return None

    def _envelope(self, request: Any) -> str | None:
        if not isinstance(request, dict):
            return f"a request must be an object, found {kind(request)}"
        for key in request:
            if key not in REQUEST_KEYS:
                hint = " (attributes belong under principal.attrs or resource.attrs)" \
                    if key != "attrs" else ""
                return f"`{key}` is not part of a request; it has " \
                    f"{', '.join(REQUEST_KEYS)}{hint}"
        for part in ("principal", "resource"):
            problem = self._entity(part, request.get(part))
            if problem:
                return problem
        action = request.get("action")
        if type(action) is not str:
            return "action: expected the action's name as a string, found " + \
                ("nothing" if "action" not in request else kind(action))
        if self._too_long(action):
            return f"action {self._too_long(action)}"
        if type(request.get("context", {})) is not dict:
            return f"context must be an object, found {kind(request['context'])}"
        fields = request.get("write_fields", [])
        if type(fields) is not list or any(type(f) is not str for f in fields):
            return "write_fields: expected a list of field names (strings)"
        for f in fields:
            if self._too_long(f):
                return f"write_fields: a field name {self._too_long(f)}"
        if type(request.get("dry_run", False)) is not bool:
            return f"dry_run: expected a bool, found {kind(request['dry_run'])}"
        return None

    def _entity(self, part: str, entity: Any) -> str | None:
        if entity is None:
            return f"the request needs `{part}`: an object with type, id and attrs"
        if type(entity) is not dict:
            return f"{part} must be an object with type, id and attrs, found {kind(entity)}"
        for key in entity:
            if key not in ENTITY_KEYS or key == "parents" and not self.schema.hierarchy:
                keys = "type, id, attrs, parents" if self.schema.hierarchy else "type, id, attrs"
                return f"{part}.{key} is not part of an entity ({keys}); " \
                    f"attributes belong under {part}.attrs"
        for key in ("type", "id"):
            if type(entity.get(key)) is not str:
                found = "nothing" if key not in entity else kind(entity[key])
                return f"{part}.{key}: expected a string, found {found}"
            if self._too_long(entity[key]):
                return f"{part}.{key} {self._too_long(entity[key])}"
        if entity["id"] == "":
            return f"{part}.id must not be empty"
        if type(entity.get("attrs", {})) is not dict:
            return f"{part}.attrs must be an object, found {kind(entity['attrs'])}"
        return None


def explain_request(schema: Schema, request: Any, max_bytes: int) -> str:
    """Why the fast path refused a request; best effort, the refusal is not."""
    try:
        return Explainer(schema, max_bytes).request(request)
    except RecursionError:
        return "the request is nested too deeply"
    except Exception:
        return "invalid request"
