"""Applying a decision to data: `visible` masks what a response may show (excessive data
exposure), `guard_writes` refuses a body that sets fields nobody authorized (mass
assignment). Both work on dicts, pydantic models, dataclasses and plain objects."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import BadRequest, Forbidden

_ABSENT = object()


def _fields(decision_or_fields: Any) -> list[str]:
    found = getattr(decision_or_fields, "visible_fields", None)
    return list(decision_or_fields if found is None else found)


def visible(decision: Any, obj: Any) -> dict:
    """The fields of `obj` the decision lets the caller see, in the set's order; a
    record is shown or hidden whole. `decision` is a Decision or a list of field names.
    A field the set does not declare is never shown (default deny)."""
    return shown(_fields(decision), obj)


def shown(fields: list[str], obj: Any) -> dict:
    """`obj`'s values of `fields` (the kind of object told apart by its class: cheap)."""
    cls = type(obj)
    if cls is dict or isinstance(obj, Mapping):
        source = obj
    elif hasattr(cls, "model_dump"):
        source = obj.model_dump()
    elif hasattr(cls, "__dataclass_fields__"):
        source = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    else:
        out = {}
        for f in fields:  # one attribute read each (an ORM's attributes are descriptors)
            value = getattr(obj, f, _ABSENT)
            if value is not _ABSENT:
                out[f] = value
        return out
    return {f: source[f] for f in fields if f in source}


def written_fields(body: Any) -> list[str]:
    """The top-level fields a request body sets: a JSON object's keys, a pydantic model's
    fields set explicitly (not defaults). Anything else is refused as a bad request."""
    if body is None:
        return []
    if isinstance(body, Mapping):
        if not all(isinstance(k, str) for k in body):
            raise BadRequest("a body's field names must be strings")
        return list(body)
    if callable(getattr(body, "model_dump", None)):
        return list(body.model_dump(exclude_unset=True))
    if dataclasses.is_dataclass(body) and not isinstance(body, type):
        return [f.name for f in dataclasses.fields(body)]
    raise BadRequest(f"a {type(body).__name__} body cannot be checked for written fields")


def guard_writes(decision_fields: Iterable[str] | Any, body: Any) -> list[str]:
    """Refuse (403) a body that sets any field outside `decision_fields`: the fields a
    write decision was made for (an `Access` carries them as `write_fields`). Returns
    the fields the body sets."""
    allowed = set(getattr(decision_fields, "write_fields", decision_fields))
    written = written_fields(body)
    extra = [f for f in written if f not in allowed]
    if extra:
        raise Forbidden(f"the body sets fields that were not authorized: {', '.join(extra)}",
                        getattr(decision_fields, "decision_id", ""),
                        tuple(f"not_writable:{f}" for f in extra))
    return written
