"""List endpoints filtered by a plan: `authorized_query(select(Order), access)` keeps
only the rows the caller may act on, in the database, with the model's mapping giving
the columns (or pass them)."""

from __future__ import annotations

from typing import Any

from ..plans.sqlalchemy import where


def columns_of(authorizer, rtype: str) -> dict[str, Any]:
    """{attribute: column} from the ModelMap registered for `rtype` (fields by name)."""
    m = authorizer.mapping_of(rtype)
    out = {name: getattr(m.model, g) for name, g in authorizer.getters(m).items()
           if isinstance(g, str) and hasattr(m.model, g)}
    if isinstance(m.id, str) and hasattr(m.model, m.id):
        out["id"] = getattr(m.model, m.id)
    return out


def authorized_query(statement, plan_or_access, columns: dict[str, Any] | None = None):
    """`statement` with the plan's condition added (WHERE ... AND <plan>); an Access
    brings its plan and, without `columns`, its model's columns. Raises
    PlanUntranslatable for an attribute without a column: never a query without the
    condition."""
    plan = getattr(plan_or_access, "plan", plan_or_access)
    if plan is None:
        raise ValueError("this access decided one object; it has no plan to filter by")
    if columns is None:
        columns = columns_of(plan_or_access.authorizer, plan.resource_type)
    return statement.where(where(plan, columns))
