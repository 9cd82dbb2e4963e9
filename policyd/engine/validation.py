"""Explains why a request failed the generated validators, naming the attribute and
the expected type. Runs only after the fast path has already refused a request."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from .. import values
from ..language.schema import IP, NUMBER, STRING, TIME, EntitySchema, Schema, is_set
from .models import CheckRequest
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


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _kind(value: Any) -> str:
    return {bool: "bool", str: "string", int: "number", float: "number", list: "list",
            dict: "object", type(None): "null"}.get(type(value), type(value).__name__)


def _too_long(value: str, max_bytes: int) -> str | None:
    size = values.utf8_len(value)
    return f"is {size} bytes long, over the limit of {max_bytes} (--max-string-bytes)" \
        if size > max_bytes else None


def value_problem(spec_type: str, value: Any, max_bytes: int) -> str | None:
    """Why `value` is not of `spec_type`, or None if it is."""
    if spec_type == STRING and type(value) is str:
        return _too_long(value, max_bytes)
    if spec_type == "bool" and type(value) is bool:
        return None
    if spec_type == NUMBER and values.is_number(value):
        return None
    if spec_type in (IP, TIME) and type(value) is str:
        try:
            (values.parse_ip if spec_type == IP else values.parse_time)(value)
            return None
        except ValueError as exc:
            return f"expected {_EXPECTED[spec_type]}, found {_shown(value)} ({exc})"
    if is_set(spec_type) and type(value) in SEQUENCES:
        elem = spec_type[4:-1]
        for item in value:
            problem = value_problem(elem, item, max_bytes)
            if problem is not None and type(item) is str and elem == STRING:
                return f"an item {problem}"
            if problem is not None:
                return f"expected {_EXPECTED[spec_type]}, found an item {_shown(item)}"
        return None
    if spec_type == NUMBER and type(value) is float:
        return f"expected a finite number, found {value!r}"
    return f"expected {_EXPECTED.get(spec_type, spec_type)}, found {_kind(value)} {_shown(value)}"


def attrs_problem(where: str, schema: EntitySchema, attrs: Any, max_bytes: int,
                  supplied=()) -> str | None:
    if not isinstance(attrs, dict):
        return f"{where} must be an object, found {_kind(attrs)}"
    specs = schema.by_name
    for key in attrs:
        if key not in specs:
            return (f"{where}.{key} is not declared on {schema.kind} {schema.name}"
                    if schema.kind != "context" else f"{where}.{key} is not declared in context")
    for spec in schema.attrs:
        if spec.name not in attrs:
            if not spec.optional and spec.name not in supplied:
                return f"{where}.{spec.name} is required ({spec.type})"
            continue
        problem = value_problem(spec.type, attrs[spec.name], max_bytes)
        if problem:
            return f"{where}.{spec.name}{' ' if problem.startswith('is ') else ': '}{problem}"
    return None


def _envelope_problem(request: dict, max_bytes: int) -> str | None:
    """Ids present and not empty; every name and id within the string limit."""
    for part in ("principal", "resource"):
        entity = request[part]
        if entity["id"] == "":
            return f"{part}.id must not be empty"
        for key in ("type", "id"):
            problem = _too_long(entity[key], max_bytes)
            if problem:
                return f"{part}.{key} {problem}"
    problem = _too_long(request["action"], max_bytes)
    if problem:
        return f"action {problem}"
    for field in request.get("write_fields") or ():
        problem = _too_long(field, max_bytes)
        if problem:
            return f"write_fields: a field name {problem}"
    return None


def explain(schema: Schema, request: Any, max_bytes: int) -> str:
    """The first problem with a request, in the order a reader would look for it."""
    if not isinstance(request, dict):
        return f"a request must be an object, found {_kind(request)}"
    try:
        req = CheckRequest.model_validate(request)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "request"
        return f"{where}: {err['msg']}"
    problem = _envelope_problem(request, max_bytes)
    if problem:
        return problem
    cs = schema
    schema = cs.principals.get(req.principal.type)
    if schema is None:
        declared = ", ".join(cs.principals) or "none"
        return f"principal.type: unknown principal type {req.principal.type!r} (declared: {declared})"
    problem = attrs_problem("principal.attrs", schema, request["principal"].get("attrs", {}),
                            max_bytes)
    if problem:
        return problem
    if cs.context is None:
        if req.context:
            return f"context.{next(iter(req.context))} is not declared (the set has no context)"
    else:
        supplied = tuple(a.name for a in cs.context.attrs if a.name == "time" and a.type == TIME)
        problem = attrs_problem("context", cs.context, request.get("context", {}), max_bytes,
                                supplied)
        if problem:
            return problem
    res = cs.resources.get(req.resource.type)
    if res is not None:
        problem = attrs_problem("resource.attrs", res, request["resource"].get("attrs", {}),
                                max_bytes)
        if problem:
            return problem
    return "invalid request"


def explain_request(schema: Schema, request: Any, max_bytes: int) -> str:
    """Why the fast path refused a request; best effort, the refusal is not."""
    try:
        return explain(schema, request, max_bytes)
    except RecursionError:
        return "the request is nested too deeply"
    except Exception:
        return "invalid request"
