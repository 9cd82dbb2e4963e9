"""What the checker hands to code generation: the schema and the typed rules.

Expressions are lowered to a small typed IR whose operators map one to one
onto runtime code; codegen accepts nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .schema import STRING, EntitySchema, RoleGraph, RuleInfo, Schema, runtime_type

# ---- typed expressions --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Const:
    value: Any  # runtime representation: str, int, float, bool, ip tuple, epoch float, frozenset
    type: str


@dataclass(frozen=True, slots=True)
class Read:
    """An attribute path: `resource.project.private` is ("resource", ("project", "private"))."""

    entity: str  # principal | resource | context
    path: tuple[str, ...]
    type: str

    @property
    def attr(self) -> str:
        return self.path[0]


@dataclass(frozen=True, slots=True)
class ActionName:
    type: str = STRING


@dataclass(frozen=True, slots=True)
class Op:
    """An operator applied to typed operands; `data` holds compile-time operands
    (like-pattern parts, the roles that satisfy `is`, the attribute `has` tests)."""

    op: str
    args: tuple
    type: str
    data: Any = None


IR = Const | Read | ActionName | Op


# ---- rules and the checked set -------------------------------------------------


US = 1_000_000  # microseconds per second: the unit of every rate bucket time
HORIZON_US = 100 * 365 * 86400 * US  # B * T at most: a century keeps TATs below 2**53


def rate(count: int, period_s: float, burst: int | None = None) -> tuple[float, float]:
    """(T, B * T) in whole microseconds for `count per period burst B` (B defaults to
    the count), T rounded up: B requests at one instant pass and the next does not, and
    a limit never admits more than it says (engine/ratelimit.py has the arithmetic)."""
    period_us = round(period_s * US)
    interval = max(1, -(-period_us // int(count)))
    return float(interval), float(interval * int(count if burst is None else burst))


@dataclass(frozen=True, slots=True)
class Limit:
    count: float
    period: float
    burst: float
    keys: tuple[IR, ...]

    @property
    def bucket(self) -> tuple[float, float]:
        """(T, B * T) in whole microseconds: what a generated limiter hands the store."""
        return rate(int(self.count), self.period, int(self.burst))


@dataclass(frozen=True, slots=True)
class CheckedRule:
    name: str  # full name: policy.label or policy#N
    effect: str  # allow | deny | show | write | limit
    resource: str
    actions: tuple[str, ...]  # resolved, `*` expanded
    fields: tuple[str, ...]  # show / write rules, `*` expanded
    cond: IR | None  # None: always holds
    file: str
    line: int
    column: int
    limit: Limit | None = None
    output: tuple[tuple[str, IR], ...] = ()  # `output { KEY: E }`: (key, value) pairs

    def info(self) -> RuleInfo:
        return RuleInfo(self.name, self.effect, self.resource, self.actions, self.fields,
                        self.file, self.line, self.column)


@dataclass(frozen=True)
class CheckedSet:
    principals: dict[str, EntitySchema]
    resources: dict[str, EntitySchema]
    context: EntitySchema | None
    roles: RoleGraph  # role -> every role that satisfies `is role`
    rules: dict[str, tuple[CheckedRule, ...]]  # resource type -> rules in source order
    sources: dict[str, str]
    version: str
    warnings: tuple = field(default=())
    constants: dict[str, Const] = field(default_factory=dict)  # test fixtures may name them
    records: dict[str, EntitySchema] = field(default_factory=dict)
    role_attrs: tuple[str, ...] = ()  # principal attributes besides `roles` holding role names
    routes: tuple = ()  # CheckedRoute, in source order
    entities: dict[str, EntitySchema] = field(default_factory=dict)  # `entity` types (1.2)

    def typed(self, name: str) -> EntitySchema | None:
        """The principal, resource or entity type of that name (references, parents)."""
        return self.entities.get(name) or self.principals.get(name) or \
            self.resources.get(name)

    def runtime(self, t: str) -> str:
        """A reference is its id at run time (schema.runtime_type)."""
        return runtime_type(t, self.typed)

    def schema(self) -> Schema:
        return Schema(self.principals, self.resources, self.context, frozenset(self.roles),
                      self.records, self.entities)
