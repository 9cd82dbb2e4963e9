"""A plan's residual as a SQL condition, for SQLite and PostgreSQL.

Values are always bound parameters; identifiers come only from the caller's column
map. The column contract (docs/plans.md) says how each type is stored: sets are JSON
arrays in SQLite and arrays in PostgreSQL, maps JSON objects (SQLite text, PostgreSQL
jsonb), ips inet in PostgreSQL, times as plans/columns.py's storage kinds. A row whose
value breaks the contract in a column the plan reads is never selected (`check`
refuses such a value); every other row is selected exactly when `check` allows it,
unknown arithmetic included (SQL's NULL is the policy's unknown). Anything without
such an exact form raises PlanUntranslatable, naming the attribute and the rule.
"""

from __future__ import annotations

from collections.abc import Callable

from ..engine.plan import Plan
from . import columns as cc
from .writer import DIALECTS, PlanUntranslatable, SqlWriter

__all__ = ["DIALECTS", "PlanUntranslatable", "SqlWriter", "check_columns", "default_columns",
           "to_sql", "to_sql_columns"]


def _column_lookup(columns: dict[str, str]) -> Callable[[str], str | None]:
    return columns.get


def _writer(dialect: str, columns: dict[str, str], times: dict[str, str] | None):
    """A writer binding parameters into a list (`?` for sqlite, `%s` for postgresql)."""
    params: list = []
    mark = "%s" if dialect == "postgresql" else "?"
    if dialect not in DIALECTS:
        raise ValueError(f"unknown SQL dialect {dialect!r} (one of {', '.join(DIALECTS)})")
    kinds = cc.TIME_STORAGE[dialect]
    for name, kind in (times or {}).items():
        if kind not in kinds:
            raise ValueError(f"times[{name!r}]: {kind!r} is not a time storage of {dialect} "
                             f"(one of {', '.join(kinds)})")
    default = cc.DEFAULT_TIME[dialect]

    def param(value):
        params.append(value)
        return mark

    def time_kind(name: str) -> str:
        return (times or {}).get(name, default)

    return SqlWriter(dialect, _column_lookup(columns), param, mark == "%s", time_kind), params


def to_sql(plan: Plan, columns: dict[str, str], dialect: str = "sqlite",
           times: dict[str, str] | None = None) -> tuple[str, list]:
    """(where_clause, params). `times` names the storage of time columns that are not
    the dialect's default (docs/plans.md, "Column contract"): `epoch`, and `iso_text` or
    `django_text` in SQLite, `timestamptz` or `timestamp` in PostgreSQL."""
    writer, params = _writer(dialect, columns, times)
    return writer.where(plan), params


def to_sql_columns(plan: Plan, columns: dict[str, str], dialect: str = "sqlite",
                   times: dict[str, str] | None = None) -> tuple[str, list]:
    """(select list, params): each visible field with a column, as `col AS field` or
    `CASE WHEN <visible> THEN col END AS field`; fields never visible are left out. Never
    empty, so `SELECT {select} FROM ...` is always a query: `NULL AS id` when no field
    has a column (an always_denied plan's rows are none anyway)."""
    writer, params = _writer(dialect, columns, times)
    return ", ".join(writer.masks(plan)) or "NULL AS id", params


def check_columns(plan: Plan, names: set[str]) -> None:
    """Raise PlanUntranslatable now (not when a query compiles) for an attribute without
    a column or an operator with no SQL form in either dialect."""
    for dialect in DIALECTS:
        writer = SqlWriter(dialect, lambda name: name if name in names else None,
                           lambda value: "?", percent=False)
        try:
            writer.where(plan)
            return
        except PlanUntranslatable as exc:
            if dialect == DIALECTS[-1] or exc.attribute and exc.attribute not in names:
                raise


def default_columns(schema, rtype: str) -> dict[str, str]:
    """Each attribute path of a resource type as its own column, `.` written `_`
    (`project.private` is `project_private`): `policyd plan --sql` without --columns."""
    out = {"id": "id"}

    def walk(entity, prefix):
        for a in entity.attrs:
            path = prefix + (a.name,)
            out[".".join(path)] = "_".join(path)
            if a.type in schema.records:
                walk(schema.records[a.type], path)
    res = schema.resources.get(rtype)
    if res is not None:
        walk(res, ())
    return out
