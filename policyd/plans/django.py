"""A plan as a Django `Q`: `Order.objects.filter(q(plan, {"owner": "owner", ...}))`.
Columns are model field names (lookups through relations work: `"project__private"`);
the SQL is policyd's, for the connection's vendor (SQLite or PostgreSQL)."""

from __future__ import annotations

from django.db.models import (
    BooleanField,
    DateTimeField,
    DecimalField,
    Expression,
    F,
    FloatField,
    IntegerField,
    Q,
)

from ..engine.plan import ALWAYS_ALLOWED, CONDITIONAL, Plan
from .columns import orm_time_kind
from .sql import check_columns
from .writer import SqlWriter


class PlanCondition(Expression):
    """A plan's residual as a boolean expression, rendered when the query compiles."""

    conditional = True

    def __init__(self, plan: Plan, columns: dict[str, str]):
        super().__init__(output_field=BooleanField())
        self.plan, self.columns, self.resolved = plan, columns, {}

    def resolve_expression(self, query=None, allow_joins=True, reuse=None, summarize=False,
                           for_save=False):
        c = self.copy()
        c.resolved = {name: F(field).resolve_expression(query, allow_joins, reuse, summarize)
                      for name, field in self.columns.items()}
        return c

    def as_sql(self, compiler, connection):
        params: list = []

        def column(name: str) -> str | None:
            expr = self.resolved.get(name)
            if expr is None:
                return None
            sql, more = compiler.compile(expr)
            params.extend(more)
            return sql

        def param(value) -> str:
            params.append(value)
            return "%s"

        def time_kind(name: str) -> str | None:
            expr = self.resolved.get(name)
            field = getattr(expr, "output_field", None)
            return None if field is None else _time_kind(connection.vendor, field)

        return SqlWriter(connection.vendor, column, param, True, time_kind).where(
            self.plan), params


def _time_kind(vendor: str, field) -> str | None:
    """A time column's storage, seen from its Django field."""
    if isinstance(field, FloatField | IntegerField | DecimalField):
        return orm_time_kind(vendor, "number", False)
    if isinstance(field, DateTimeField):  # PostgreSQL: Django makes them timestamptz
        return orm_time_kind(vendor, "datetime_django", True)
    return None


def q(plan: Plan, columns: dict[str, str]) -> Q:
    """A `Q` selecting the rows the plan allows. Raises PlanUntranslatable now for a
    missing column or an operator no dialect translates."""
    if plan.kind != CONDITIONAL:
        return Q(pk__in=[]) if plan.kind != ALWAYS_ALLOWED else Q()
    check_columns(plan, set(columns))
    return Q(PlanCondition(plan, dict(columns)))
