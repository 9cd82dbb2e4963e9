"""What the checker hands to code generation: the schema and the typed rules.

Expressions are lowered to a small typed IR whose operators map one to one
onto runtime code; codegen accepts nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .schema import STRING, EntitySchema, RoleGraph, RuleInfo, Schema

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


@dataclass(frozen=True, slots=True)
class Limit:
    count: float
    period: float
    burst: float
    keys: tuple[IR, ...]


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

    def schema(self) -> Schema:
        return Schema(self.principals, self.resources, self.context, frozenset(self.roles),
                      self.records)
