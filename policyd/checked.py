"""What the checker hands to code generation: the resolved schema and typed rules.

Types are plain strings (`string`, `set<number>`) so messages can name them.
Expressions are lowered to a small typed IR whose operators map one to one
onto runtime code; codegen accepts nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

STRING, NUMBER, BOOL, TIME, IP = "string", "number", "bool", "time", "ip"
SCALARS = (STRING, NUMBER, BOOL, TIME, IP)
DECLARABLE = (STRING, NUMBER, BOOL, TIME, IP, "set<string>", "set<number>")
EMPTY_SET = "set<>"
ERROR = "?"  # the type of an expression that already has a diagnostic


def set_of(t: str) -> str:
    return f"set<{t}>"


def is_set(t: str) -> bool:
    return t.startswith("set<")


def element(t: str) -> str:
    return t[4:-1]


def compatible(a: str, b: str) -> bool:
    """Like with like; the empty set literal fits every set type."""
    if ERROR in (a, b) or a == b:
        return True
    return is_set(a) and is_set(b) and EMPTY_SET in (a, b)


# ---- schema ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AttrSpec:
    name: str
    type: str
    optional: bool
    sensitive: bool


@dataclass(frozen=True)
class EntitySchema:
    """A principal type, a resource type or the context: its declared attributes."""

    kind: str  # principal | resource | context
    name: str
    attrs: tuple[AttrSpec, ...]
    actions: tuple[str, ...] = ()
    owner: str | None = None
    file: str = ""
    line: int = 0

    @property
    def by_name(self) -> dict[str, AttrSpec]:
        return {a.name: a for a in self.attrs}

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.attrs)


# ---- typed expressions --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Const:
    value: Any  # runtime representation: str, int, float, bool, ip tuple, epoch float, frozenset
    type: str


@dataclass(frozen=True, slots=True)
class Read:
    entity: str  # principal | resource | context
    attr: str
    type: str


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


@dataclass(frozen=True)
class CheckedSet:
    principals: dict[str, EntitySchema]
    resources: dict[str, EntitySchema]
    context: EntitySchema | None
    roles: dict[str, frozenset[str]]  # role -> every role that satisfies `is role`
    rules: dict[str, tuple[CheckedRule, ...]]  # resource type -> rules in source order
    sources: dict[str, str]
    version: str
    warnings: tuple = field(default=())
    constants: dict[str, Const] = field(default_factory=dict)  # test fixtures may name them
