"""A plan as a SQLAlchemy condition: `select(Order).where(where(plan, {"owner":
Order.owner, ...}))`. Rendered by policyd's SQL writer for the dialect the statement
is compiled for (SQLite or PostgreSQL), values as bound parameters."""

from __future__ import annotations

import operator
from typing import Any

import sqlalchemy
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement

from ..engine.plan import ALWAYS_ALLOWED, CONDITIONAL, Plan
from ..engine.residual import Attr, Value
from .columns import orm_time_kind
from .sql import check_columns
from .writer import SqlWriter


class PlanCondition(ColumnElement):
    """A plan's residual, compiled late: the dialect is known only then."""

    inherit_cache = False
    type = sqlalchemy.Boolean()
    _is_implicitly_boolean = True  # a comparison already: never `(...) = 1` on SQLite

    def __init__(self, plan: Plan, columns: dict[str, Any]):
        self.plan, self.columns = plan, columns


@compiles(PlanCondition)
def _compile(element: PlanCondition, compiler, **kw) -> str:
    def column(name: str) -> str | None:
        col = element.columns.get(name)
        return None if col is None else compiler.process(col, **kw)

    def param(value: Any) -> str:
        return compiler.process(sqlalchemy.bindparam(None, value, unique=True), **kw)

    def time_kind(name: str) -> str | None:
        col = element.columns.get(name)
        return None if col is None else _time_kind(compiler.dialect.name, col.type)

    percent = compiler.dialect.paramstyle in ("format", "pyformat")
    return SqlWriter(compiler.dialect.name, column, param, percent, time_kind).where(
        element.plan)


def _time_kind(dialect: str, sqltype) -> str | None:
    """A time column's storage, seen from its SQLAlchemy type (an untyped column cannot
    say: refused, as any type the contract does not know)."""
    if isinstance(sqltype, (sqlalchemy.Float, sqlalchemy.Numeric, sqlalchemy.Integer)):
        return orm_time_kind(dialect, "number", False)
    if isinstance(sqltype, sqlalchemy.DateTime):
        return orm_time_kind(dialect, "datetime_sa", bool(sqltype.timezone))
    return None


def where(plan: Plan, columns: dict[str, Any]):
    """A boolean SQLAlchemy expression selecting the rows the plan allows; `columns` maps
    attribute paths to column expressions. Raises PlanUntranslatable now for a missing
    column or an operator no dialect translates."""
    if plan.kind != CONDITIONAL:
        return sqlalchemy.true() if plan.kind == ALWAYS_ALLOWED else sqlalchemy.false()
    check_columns(plan, set(columns))
    native = _native(plan.residual, columns)
    return native if native is not None else PlanCondition(plan, dict(columns))


_SCALARS = ("string", "bool")  # numbers and times need the writer's guards and forms
_COMPARE = {"eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "le": operator.le,
            "gt": operator.gt, "ge": operator.ge}


def _native(node, columns: dict[str, Any]):
    """The residual in SQLAlchemy's own operators, when it is only and/or/not, `has`, and
    comparisons and `in` over scalar columns and literals: the same SQL the writer
    renders, but with real bound parameters, so SQLAlchemy's compiled cache applies.
    None: anything else, rendered by the writer."""
    if isinstance(node, Attr):
        return columns.get(node.name) if node.type == "bool" else None
    if isinstance(node, Value):
        return sqlalchemy.literal(node.value) if node.type in _SCALARS and \
            node.value is not None else None
    op, args = node.op, node.args
    if op in ("and", "or", "not"):
        parts = [_native(a, columns) for a in args]
        if any(p is None for p in parts) or any(isinstance(a, Value) for a in args):
            return None
        return sqlalchemy.not_(parts[0]) if op == "not" else \
            (sqlalchemy.and_ if op == "and" else sqlalchemy.or_)(*parts)
    if op in _COMPARE:
        a, b = (_operand(x, columns) for x in args)
        return None if a is None or b is None else _COMPARE[op](a, b)
    if op == "in" and isinstance(args[1], Value) and args[1].value and \
            args[1].type in ("set<string>", "set<number>"):
        x = _operand(args[0], columns)
        return None if x is None else x.in_(sorted(args[1].value, key=repr))
    if op == "has" and len(args) == 1 and isinstance(args[0], Attr):
        col = columns.get(args[0].name)
        return None if col is None else col.is_not(None)
    return None


def _operand(node, columns: dict[str, Any]):
    if isinstance(node, Attr):
        return columns.get(node.name) if node.type in _SCALARS else None
    if isinstance(node, Value):
        return _native(node, columns)
    return None
