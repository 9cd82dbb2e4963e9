"""Public request and decision models.

`Decision` is frozen and its lists are immutable (`FrozenList` compares equal to
a plain list), so the engine can share one Decision between identical outcomes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..values import printable


class FrozenList(list):
    """A list that cannot change: decisions are values, shared between requests."""

    __slots__ = ()

    def _refuse(self, *args, **kwargs):
        raise TypeError("decision lists are immutable")

    append = extend = insert = remove = pop = clear = sort = reverse = _refuse
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse

    def __hash__(self):  # immutable, so hashable like a tuple
        return hash(tuple(self))


EMPTY = FrozenList()
NO_OUTPUTS: dict = {}  # a decision's outputs when no deciding rule has any (never written)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reasons: list[str]
    visible_fields: list[str] = field(default_factory=lambda: EMPTY)
    retry_after: float = 0.0
    policy_version: str = ""
    warnings: list[str] = field(default_factory=lambda: EMPTY)
    # 1.2: rule full name -> {key: value} of each deciding rule's `output` (JSON values)
    outputs: dict[str, dict[str, Any]] = field(default_factory=lambda: NO_OUTPUTS)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "allowed": self.allowed,
            "reasons": list(self.reasons),
            "visible_fields": list(self.visible_fields),
            "retry_after": self.retry_after,
            "policy_version": self.policy_version,
        }
        if self.warnings:
            out["warnings"] = list(self.warnings)
        if self.outputs:
            out["outputs"] = {rule: dict(values) for rule, values in self.outputs.items()}
        return out


_new = object.__new__
_set = object.__setattr__


def make_decision(allowed: bool, reasons, visible, retry_after: float, version: str,
                  warnings=EMPTY, outputs=NO_OUTPUTS) -> Decision:
    """Build a Decision without the frozen dataclass's per-field setattr cost."""
    d = _new(Decision)
    _set(d, "__dict__", {"allowed": allowed, "reasons": reasons, "visible_fields": visible,
                         "retry_after": retry_after, "policy_version": version,
                         "warnings": warnings, "outputs": outputs})
    return d


class RequestError(ValueError):
    """A request that does not match the declarations; never decided, never allowed. Its
    message quotes the request, lone surrogates escaped (values.printable)."""

    def __init__(self, message: str = "invalid request"):
        super().__init__(printable(str(message)))


class EntityRef(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    type: str
    id: str


class Entity(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    type: str
    id: str
    attrs: dict[str, Any] = Field(default_factory=dict)
    parents: list[EntityRef] = Field(default_factory=list)  # 1.2: its direct parents


class CheckRequest(BaseModel):
    """The request envelope; attribute types are checked against the policy's schema."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    principal: Entity
    action: str
    resource: Entity
    context: dict[str, Any] = Field(default_factory=dict)
    write_fields: list[str] = Field(default_factory=list)
    dry_run: bool = False


@dataclass(frozen=True)
class SearchPage:
    """One page of a search: what it found, in order, and where the next page starts."""

    kind: str  # "subject", "resource" or "action"
    results: tuple[str, ...]  # ids (subjects, resources) or action names
    more: bool  # whether a next page holds more (resume after the last result)
    total: int | None  # every result of the search (counted on the first page only)
    policy_version: str
    reasons: tuple[str, ...] = ()  # a resource search's plan: why it found nothing
    warnings: tuple[str, ...] = ()
