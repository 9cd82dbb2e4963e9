"""The policy AST: frozen dataclasses with source spans, produced by the parser.

Nodes carry only what the text said; names are resolved and types assigned by
the checker, which produces its own checked form for code generation.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Span:
    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True, slots=True)
class Name:
    """An identifier as written, with its position (references and declarations)."""

    value: str
    span: Span


# ---- declarations ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TypeRef:
    name: Name
    args: tuple[TypeRef, ...]  # `set<string>`: name=set, args=(string,)
    span: Span

    def text(self) -> str:
        if not self.args:
            return self.name.value
        return f"{self.name.value}<{', '.join(a.text() for a in self.args)}>"


@dataclass(frozen=True, slots=True)
class AttrDecl:
    name: Name
    type: TypeRef
    optional: bool
    sensitive: bool
    span: Span
    stored: bool = False


@dataclass(frozen=True, slots=True)
class RecordDecl:
    name: Name
    attrs: tuple[AttrDecl, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class PrincipalDecl:
    name: Name
    attrs: tuple[AttrDecl, ...]
    span: Span
    parents: tuple[Name, ...] = ()  # `in T, ...`: the types its parents may have (1.2)
    stored: bool = False  # `stored` in the header: the whole entity comes from data (1.2)


@dataclass(frozen=True, slots=True)
class EntityDecl:
    """`entity NAME [in T, ...] [{ ATTRS }]`: a group, team, folder (1.2); its attributes
    and parents always come from entity data."""

    name: Name
    parents: tuple[Name, ...]
    attrs: tuple[AttrDecl, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class ContextDecl:
    attrs: tuple[AttrDecl, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class RoleDecl:
    name: Name
    parents: tuple[Name, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class ResourceDecl:
    name: Name
    owner: Name | None
    attrs: tuple[AttrDecl, ...]
    actions: tuple[Name, ...]
    span: Span
    parents: tuple[Name, ...] = ()
    stored: bool = False


@dataclass(frozen=True, slots=True)
class ConstDecl:
    name: Name
    value: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class ConditionDecl:
    """`condition NAME = E`: a named boolean expression, used by name (1.2)."""

    name: Name
    value: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class OutputField:
    key: Name
    value: Expr


@dataclass(frozen=True, slots=True)
class LimitSpec:
    """`N per DURATION [burst B] by KEY, ...` of a limit rule."""

    count: int | float
    period: float  # seconds
    period_text: str
    burst: int | float | None
    keys: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Rule:
    label: Name | None
    effect: str  # allow | deny | show | write | limit
    targets: tuple[Name, ...] | None  # None means `*`
    when: Expr | None
    unless: Expr | None
    limit: LimitSpec | None
    span: Span
    output: tuple[OutputField, ...] = ()  # `output { KEY: E, ... }` (1.2)


@dataclass(frozen=True, slots=True)
class PolicyDecl:
    name: Name
    resource: Name
    rules: tuple[Rule, ...]
    span: Span
    conditions: tuple[ConditionDecl, ...] = ()  # the policy's own named conditions


@dataclass(frozen=True, slots=True)
class Route:
    """`METHOD PATH -> ACTION` inside `routes for TYPE { ... }`."""

    method: Name
    path: str
    path_span: Span
    action: Name
    span: Span


@dataclass(frozen=True, slots=True)
class RoutesDecl:
    resource: Name
    routes: tuple[Route, ...]
    span: Span


Decl = (PrincipalDecl | ContextDecl | RoleDecl | ResourceDecl | RecordDecl | EntityDecl
        | ConstDecl | ConditionDecl | PolicyDecl | RoutesDecl)


@dataclass(frozen=True, slots=True)
class PolicyFile:
    path: str
    decls: tuple[Decl, ...]


# ---- expressions -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Literal:
    value: str | int | float | bool
    span: Span


@dataclass(frozen=True, slots=True)
class SetLit:
    items: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class RecordField:
    key: str
    value: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class RecordLit:
    """`{ a: 1, "b-c": [..] }`: a record or map value (test fixtures only)."""

    fields: tuple[RecordField, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Root:
    """`principal`, `resource`, `context` or `action`."""

    name: str
    span: Span


@dataclass(frozen=True, slots=True)
class Attr:
    obj: Expr
    name: Name
    span: Span


@dataclass(frozen=True, slots=True)
class Index:
    """`m[k]`: the value of map `m` under the string key `k`."""

    obj: Expr
    key: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class ConstRef:
    name: Name
    span: Span


@dataclass(frozen=True, slots=True)
class Call:
    func: Name
    args: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Unary:
    op: str  # not | -
    operand: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class Binary:
    """and, or, comparisons, set tests, like, arithmetic: `op` is the operator as written."""

    op: str
    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class Has:
    obj: Expr
    name: Name
    span: Span


@dataclass(frozen=True, slots=True)
class Is:
    obj: Expr
    role: Name
    span: Span


@dataclass(frozen=True, slots=True)
class Owns:
    left: Expr
    right: Expr
    span: Span


Expr = Literal | SetLit | RecordLit | Root | Attr | Index | ConstRef | Call | Unary | Binary | Has | Is | Owns
