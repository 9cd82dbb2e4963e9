"""A plan as a SQLAlchemy condition: `select(Order).where(where(plan, {"owner":
Order.owner, ...}))`. Rendered by policyd's SQL writer for the dialect the statement
is compiled for (SQLite or PostgreSQL), values as bound parameters."""

from __future__ import annotations

from typing import Any

import sqlalchemy
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement

from ..engine.plan import ALWAYS_ALLOWED, CONDITIONAL, Plan
from .sql import SqlWriter, check_columns


class PlanCondition(ColumnElement):
    """A plan's residual, compiled late: the dialect is known only then."""

    inherit_cache = False
    type = sqlalchemy.Boolean()

    def __init__(self, plan: Plan, columns: dict[str, Any]):
        self.plan, self.columns = plan, columns


@compiles(PlanCondition)
def _compile(element: PlanCondition, compiler, **kw) -> str:
    def column(name: str) -> str | None:
        col = element.columns.get(name)
        return None if col is None else compiler.process(col, **kw)

    def param(value: Any) -> str:
        return compiler.process(sqlalchemy.bindparam(None, value, unique=True), **kw)

    percent = compiler.dialect.paramstyle in ("format", "pyformat")
    return SqlWriter(compiler.dialect.name, column, param, percent).where(element.plan)


def where(plan: Plan, columns: dict[str, Any]):
    """A boolean SQLAlchemy expression selecting the rows the plan allows; `columns` maps
    attribute paths to column expressions. Raises PlanUntranslatable now for a missing
    column or an operator no dialect translates."""
    if plan.kind != CONDITIONAL:
        return sqlalchemy.true() if plan.kind == ALWAYS_ALLOWED else sqlalchemy.false()
    check_columns(plan, set(columns))
    return PlanCondition(plan, dict(columns))
