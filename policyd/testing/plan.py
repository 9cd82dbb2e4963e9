"""What the test checker hands to the runner: tests as concrete requests and the
expectations about their decisions. Nothing here needs the policy text again."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Expectation:
    """`expect allow|deny ...` (visible is None) or `expect visible ACTION: FIELDS`."""

    file: str
    line: int
    text: str  # the expectation as the report prints it
    request: dict  # principal, resource and context; the action is added per decision
    actions: tuple[str, ...]
    allowed: bool
    writing: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    repeat: int = 1
    visible: tuple[str, ...] | None = None
    data: dict = field(default_factory=dict)  # (kind, type, id) -> stored attributes
    parents: dict = field(default_factory=dict)  # (type, id) -> ((type, id), ...): 1.2
    outputs: tuple = ()  # (key, JSON value): what some deciding rule's output must hold


@dataclass(frozen=True)
class Advance:
    """`after DURATION`: the test's clock moves on (rate buckets refill)."""

    seconds: float
    file: str
    line: int


@dataclass(frozen=True)
class CheckedTest:
    __test__ = False  # not a pytest class

    name: str
    file: str
    line: int
    steps: tuple[Expectation | Advance, ...]
