"""Role names a principal holds that no `role` declares: ignored when deciding, and
reported in the decision's warnings (`unknown_role:NAME`)."""

from __future__ import annotations

from .models import FrozenList


def role_names_in(P: dict, roles, role_attrs: tuple[str, ...]) -> set[str]:
    """Every role name a principal holds: `roles` and the attributes `is` tests read
    (a set of names, or a map of them: workspace -> roles)."""
    names = set(roles or ())
    for attr in role_attrs:
        value = P.get(attr)
        if isinstance(value, dict):
            for held in value.values():
                names.update(held)
        elif value:
            names.update(value)
    return names


def unknown_roles(roles, role_names: frozenset, masked: bool = False) -> FrozenList:
    """The warnings; one `unknown_role:***` when the attribute holding roles is
    `sensitive` (the names would put its values in every decision log line)."""
    if masked:
        return FrozenList(("unknown_role:***",))
    return FrozenList(f"unknown_role:{r}" for r in sorted(set(roles) - role_names))
