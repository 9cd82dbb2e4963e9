"""The state an engine decides with, as one frozen object: `swap` replaces it whole."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .entities import EntityData
from .policyset import PolicySet
from .records import RecordBuilder


@dataclass(frozen=True, slots=True)
class Installed:
    """Everything one decision reads, replaced whole by `swap`: a decision and its record
    never mix two sets (the validators, caches and audit masks of one set)."""

    ps: PolicySet
    principals: dict  # principal type -> generated validator
    resources: dict  # resource type -> generated validator
    context: Callable | None
    bits: dict  # resource type -> {field: bit}
    role_names: frozenset
    deny_cache: dict  # deny outcome -> Decision
    allow_caches: dict  # resource type -> {allow outcome -> Decision}
    records: RecordBuilder
    short: int  # a string of at most this many characters is within max_bytes
    max_bytes: int
    entities: EntityData | None  # None: no type has stored attributes
    role_attrs: tuple[str, ...]  # principal attributes besides `roles` that hold roles
    hot: tuple  # what the hot path reads, as one tuple: one unpack beats many loads
    deciding: tuple  # likewise for the step after validation
    fast: Callable | None  # the generated fast path, bound to an engine (fastpath.py)

    @classmethod
    def of(cls, ps: PolicySet, log_attributes: bool = False) -> Installed:
        schema = ps.schema
        principals = {name: ps.validators[f"principal:{name}"] for name in schema.principals}
        resources = {name: ps.validators[f"resource:{name}"] for name in schema.resources}
        entities = ps.entities if any(s.stored or s.whole for s in (
            *schema.principals.values(), *schema.resources.values())) else None
        short = ps.max_string_bytes // 4
        deny_cache, allow_caches = ps.memo()
        return cls(
            ps=ps,
            principals=principals,
            resources=resources,
            context=ps.validators.get("context"),
            bits={r: {f: 1 << i for i, f in enumerate(fields)} for r, fields in ps.fields.items()},
            role_names=schema.roles,
            deny_cache=deny_cache,
            allow_caches=allow_caches,
            records=RecordBuilder(schema, log_attributes),
            short=short,
            max_bytes=ps.max_string_bytes,
            entities=entities,
            role_attrs=ps.role_attrs,
            hot=(principals, resources, ps.validators.get("context"), short, entities,
                 ps.limiters),
            deciding=(ps, schema.roles, ps.role_attrs, allow_caches, deny_cache),
            fast=None,
        )
