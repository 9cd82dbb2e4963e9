"""From application objects to policyd entities: a declared mapping from a model class
to a type, its id and its attributes, so callers never write request dicts by hand.

Values become policyd's: sets and tuples lists, datetimes RFC 3339 UTC, enums their
value, Decimals numbers, nested dataclasses, pydantic models or objects as records
(the record's declared attributes, when the schema is known). `None` leaves an
attribute out: optional attributes are absent, required ones fail validation.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

Getter = str | Callable[[Any], Any]


@dataclass(frozen=True)
class ModelMap:
    """How objects of `model` become resources (or principals) of policyd type `type`.
    `attrs`: attribute names read from same-named fields, or {attribute: field name or
    function of the object}; None takes every declared attribute of the type."""

    model: type
    type: str
    id: Getter = "id"
    attrs: Sequence[str] | Mapping[str, Getter] | None = None

    def getters(self, declared: Sequence[str] | None) -> dict[str, Getter]:
        if self.attrs is None:
            if declared is None:
                raise ValueError(f"name the attributes of {self.model.__name__}: this "
                                 "authorizer does not know the declared types")
            return {name: name for name in declared}
        if isinstance(self.attrs, Mapping):
            return dict(self.attrs)
        return {name: name for name in self.attrs}


_PLAIN = (str, bool, int, float, type(None))


def plain(value: Any, record=None, schema=None) -> Any:
    """A value as policyd takes it; `record` is the declared record type, if any."""
    if type(value) in _PLAIN:
        return value
    if isinstance(value, enum.Enum):
        return plain(value.value)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime):
        value = value if value.tzinfo else value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, set | frozenset | list | tuple):
        items = [plain(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    if record is not None:
        return attributes(value, {a.name: a.name for a in record.attrs},
                          record_types(record, schema), schema)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(dataclasses.asdict(value))
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return plain(dump())
    raise TypeError(f"cannot pass a {type(value).__name__} to policyd: declare the "
                    "attribute's record type or map it with a function")


def record_types(entity, schema) -> dict:
    """{attribute: its declared record type} for the attributes of `entity` that are
    records (what `attributes` walks by the schema)."""
    if entity is None or schema is None:
        return {}
    return {a.name: schema.records[a.type] for a in entity.attrs if a.type in schema.records}


def attributes(obj: Any, getters: Mapping[str, Getter], records: dict | None = None,
               schema=None) -> dict:
    """The attributes of `obj`; `records` ({attribute: record type}) walks records by
    their declared attributes."""
    out = {}
    mapping = isinstance(obj, dict | Mapping)
    for name, getter in getters.items():
        if type(getter) is str:
            value = obj.get(getter) if mapping else getattr(obj, getter, None)
        else:
            value = getter(obj)
        if value is None:
            continue
        if type(value) in _PLAIN:
            out[name] = value
            continue
        out[name] = plain(value, records.get(name) if records else None, schema)
    return out
