"""The AST of `*.test.policy` files: fixtures and tests, frozen, with source spans.

Attribute values stay expressions here; the test checker evaluates and types them
against the set's declarations.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..language.nodes import Expr, Name, Span


@dataclass(frozen=True, slots=True)
class AttrValue:
    name: Name
    value: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class ParentRef:
    """`Team("eng")` after `in` in a fixture: a parent by type and id."""

    type: Name
    id: str
    span: Span


@dataclass(frozen=True, slots=True)
class EntityLit:
    """`principal User "alice" [in Team("eng"), ...] { ... }`, `resource Order "o1" { ... }`,
    `entity Team "eng" in Organization("acme") { ... }` or `context { ... }`."""

    kind: str  # principal | resource | entity | context
    type: Name | None  # None for context
    id: str | None
    attrs: tuple[AttrValue, ...]
    span: Span
    parents: tuple[ParentRef, ...] = ()


@dataclass(frozen=True, slots=True)
class FixtureDecl:
    name: Name
    value: EntityLit
    span: Span


@dataclass(frozen=True, slots=True)
class FixtureRef:
    """A fixture named in `given`, with `with { ... }` overrides (None when absent)."""

    name: Name
    overrides: tuple[AttrValue, ...] | None
    span: Span


@dataclass(frozen=True, slots=True)
class Given:
    parts: tuple[FixtureRef | EntityLit, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Reason:
    """`by orders.no_delete`, `by default_deny` or `by "orders#2"`."""

    value: str
    span: Span


@dataclass(frozen=True, slots=True)
class ExpectDecision:
    allowed: bool
    actions: tuple[Name, ...]
    writing: tuple[Name, ...]
    reasons: tuple[Reason, ...]
    repeat: int
    span: Span
    outputs: tuple[AttrValue, ...] = ()  # `output KEY: value, ...`: what a deciding rule gave


@dataclass(frozen=True, slots=True)
class ExpectVisible:
    action: Name
    fields: tuple[Name, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class After:
    seconds: float
    text: str
    span: Span


Step = Given | ExpectDecision | ExpectVisible | After


@dataclass(frozen=True, slots=True)
class TestDecl:
    name: str
    steps: tuple[Step, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class TestFile:
    file: str
    fixtures: tuple[FixtureDecl, ...]
    tests: tuple[TestDecl, ...]
