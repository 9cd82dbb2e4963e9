"""A plan's residual as a SQL condition, for SQLite and PostgreSQL.

Values are always bound parameters; identifiers come only from the caller's column
map. Column conventions (docs/plans.md): sets are JSON arrays in SQLite and arrays in
PostgreSQL, maps are JSON objects (SQLite text, PostgreSQL jsonb), times are epoch
seconds in SQLite and timestamptz in PostgreSQL, ips are inet in PostgreSQL.
Anything without an exact translation raises PlanUntranslatable.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ..engine.plan import ALWAYS_ALLOWED, CONDITIONAL, Attr, Expr, Node, Plan, Value
from ..values import format_ip

DIALECTS = ("sqlite", "postgresql")
_COMPARE = {"eq": "=", "ne": "<>", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
_ARITH = {"add": "+", "sub": "-", "mul": "*"}


class PlanUntranslatable(ValueError):
    """A residual with no exact SQL form here; names the attribute (or operator) and the
    rule it came from."""

    def __init__(self, message: str, attribute: str = "", rule: str = ""):
        super().__init__(message + (f" (from rule {rule})" if rule else ""))
        self.attribute, self.rule = attribute, rule


class _Failed(Exception):
    def __init__(self, node: Node, message: str, attribute: str = ""):
        self.node, self.message, self.attribute = node, message, attribute


class SqlWriter:
    """Renders residual nodes. `column(name)` gives a column's SQL (or None when not
    mapped), `param(value)` records a bound value and returns its placeholder."""

    def __init__(self, dialect: str, column: Callable[[str], str | None],
                 param: Callable[[Any], str], percent: bool):
        if dialect not in DIALECTS:
            raise ValueError(f"unknown SQL dialect {dialect!r} (one of {', '.join(DIALECTS)})")
        self.pg = dialect == "postgresql"
        self.dialect, self.column, self._param, self.percent = dialect, column, param, percent
        self.aliases = itertools.count()

    # ---- entry points -------------------------------------------------------------

    def where(self, plan: Plan) -> str:
        if plan.kind != CONDITIONAL:
            return "(1 = 1)" if plan.kind == ALWAYS_ALLOWED else "(1 = 0)"
        return self._translated(plan, plan.residual, self.cond)

    def masks(self, plan: Plan) -> list[str]:
        """`col AS field` for each visible field with a column, masked by its condition."""
        out = []
        for name, when in plan.visible.items():
            col = self.column(name)
            if col is None:
                continue
            if when is True:
                out.append(f"{col} AS {name}")
            else:
                test = self._translated(plan, when, self.cond)
                out.append(f"CASE WHEN {test} THEN {col} END AS {name}")
        return out

    def _translated(self, plan: Plan, node: Node, how) -> str:
        try:
            return how(node)
        except _Failed as failed:
            rule = next((name for name, term in plan.origins if _within(failed.node, term)),
                        "")
            raise PlanUntranslatable(failed.message, failed.attribute, rule) from None

    # ---- operands -----------------------------------------------------------------

    def lit(self, text: str) -> str:
        """SQL text holding `%`: doubled where placeholders are %-style."""
        return text.replace("%", "%%") if self.percent else text

    def param(self, value: Any, t: str) -> str:
        if t == "time":
            return self._param(datetime.fromtimestamp(value, UTC)) if self.pg \
                else self._param(float(value))
        if t == "ip":
            return f"CAST({self._param(format_ip(value))} AS inet)"
        return self._param(value)

    def attr(self, node: Attr) -> str:
        col = self.column(node.name)
        if col is None:
            raise _Failed(node, f"resource attribute `{node.name}` has no column: add it to "
                          "`columns`", node.name)
        if node.type == "ip" and not self.pg:
            raise _Failed(node, f"`{node.name}` is an ip: SQLite has no ip type", node.name)
        return col

    def expr(self, node: Node) -> str:
        """A scalar value."""
        if isinstance(node, Attr):
            return self.attr(node)
        if isinstance(node, Value):
            if node.type.startswith(("set<", "map<")):
                raise _Failed(node, "a set or map literal used as a value")
            return self.param(node.value, node.type)
        op, a = node.op, node.args
        if op in _ARITH:
            return f"({self.expr(a[0])} {_ARITH[op]} {self.expr(a[1])})"
        if op == "neg":
            return f"(-{self.expr(a[0])})"
        if op == "len":
            if a[0].type.startswith("map<") if isinstance(a[0], Attr) else False:
                keys = "jsonb_object_keys" if self.pg else "json_each"
                return f"(SELECT count(*) FROM {keys}({self.attr(a[0])}))"
            return f"{'char_length' if self.pg else 'length'}({self.expr(a[0])})"
        if op == "set_len":
            v, source = self.elements(a[0])
            return f"(SELECT count(DISTINCT {v}) FROM {source})"
        if op in ("hour", "weekday"):
            return self._clock(op, self.expr(a[0]))
        if op == "get":
            return self._get(node)
        if op in _COMPARE or op in ("and", "or", "not"):
            return self.cond(node)
        raise _Failed(node, f"operator `{op}` has no exact {self.dialect} form", "")

    def _clock(self, op: str, t: str) -> str:
        if self.pg:
            part = "hour" if op == "hour" else "isodow"
            return f"CAST(extract({part} from {t} AT TIME ZONE 'UTC') AS integer)"
        if op == "hour":
            return self.lit(f"CAST(strftime('%H', {t}, 'unixepoch') AS INTEGER)")
        return self.lit(f"((CAST(strftime('%w', {t}, 'unixepoch') AS INTEGER) + 6) % 7 + 1)")

    def _map(self, node: Node) -> str:
        if not isinstance(node, Attr):
            raise _Failed(node, "a map that is not a resource attribute")
        return self.attr(node)

    def _get(self, node: Expr) -> str:
        m, key = self._map(node.args[0]), self.expr(node.args[1])
        t = node.args[0].type[len("map<string, "):-1]
        if t not in ("string", "number", "bool"):
            raise _Failed(node, f"a map of {t} read by key", node.args[0].name)
        if self.pg:
            cast = {"string": "", "number": "::float8", "bool": "::boolean"}[t]
            return f"(({m} ->> {key}){cast})"
        return f"(SELECT value FROM json_each({m}) WHERE key = {key})"

    def elements(self, node: Node) -> tuple[str, str]:
        """(element, FROM clause) enumerating a set value."""
        alias = f"_e{next(self.aliases)}"
        if isinstance(node, Attr):
            col = self.attr(node)
            if self.pg:
                return f"{alias}.v", f"unnest({col}) AS {alias}(v)"
            return f"{alias}.value", f"json_each({col}) AS {alias}"
        if isinstance(node, Expr) and node.op == "get_or_empty":
            m, key = self._map(node.args[0]), self.expr(node.args[1])
            t = node.args[0].type[len("map<string, set<"):-2]
            if self.pg:
                cast = {"string": "", "number": "::float8"}.get(t)
                if cast is None:
                    raise _Failed(node, f"a map of set<{t}>", node.args[0].name)
                return f"{alias}.v{cast}", \
                    f"jsonb_array_elements_text({m} -> {key}) AS {alias}(v)"
            inner = f"(SELECT value FROM json_each({m}) WHERE key = {key})"
            return f"{alias}.value", f"json_each({inner}) AS {alias}"
        raise _Failed(node, "a set that is not a resource attribute")

    # ---- conditions ---------------------------------------------------------------

    def cond(self, node: Node) -> str:
        if isinstance(node, Attr):  # a bool attribute
            return self.attr(node)
        if not isinstance(node, Expr):
            raise _Failed(node, "a literal where a condition belongs")
        op, a = node.op, node.args
        if op in ("and", "or"):
            return "(" + f" {op.upper()} ".join(self.cond(x) for x in a) + ")"
        if op == "not":
            return f"(NOT {self.cond(a[0])})"
        if op in _COMPARE:
            return f"({self.expr(a[0])} {_COMPARE[op]} {self.expr(a[1])})"
        if op == "in":
            return self._in(self.expr(a[0]), a[1])
        if op == "contains":
            return self._contains(a[0], a[1])
        if op == "contains_any":
            v, source = self.elements(a[0])
            return f"EXISTS (SELECT 1 FROM {source} WHERE {self._in(v, a[1])})"
        if op == "contains_all":
            return self._contains_all(a[0], a[1])
        if op == "set_eq":
            return f"({self._contains_all(a[0], a[1])} AND {self._contains_all(a[1], a[0])})"
        if op == "like":
            return self._like(self.expr(a[0]), a[1].value)
        if op == "has":
            if len(a) != 1:
                raise _Failed(node, "`has` on a record inside a map")
            return f"({self.attr(a[0])} IS NOT NULL)"
        if op == "has_key":
            m, key = self._map(a[0]), self.expr(a[1])
            return f"jsonb_exists({m}, {key})" if self.pg else \
                f"EXISTS (SELECT 1 FROM json_each({m}) WHERE key = {key})"
        if op in ("ip_in", "ip_in_any"):
            return self._ip(node)
        if op == "get":
            return self._get(node)
        raise _Failed(node, f"operator `{op}` has no exact {self.dialect} form")

    def _in(self, x: str, values: Node) -> str:
        if not isinstance(values, Value):  # only ever an element of an outer query: no params
            return self._contains(values, None, x)
        inner = values.type[4:-1] or "string"
        items = ", ".join(self.param(v, inner) for v in sorted(values.value, key=repr))
        return f"({x} IN ({items}))" if values.value else "(1 = 0)"

    def _contains(self, s: Node, x: Node | None, x_sql: str | None = None) -> str:
        """`s` holds `x`; parameters are rendered in the order the text reads them."""
        if self.pg and isinstance(s, Attr):
            x_sql = self.expr(x) if x_sql is None else x_sql
            return f"({x_sql} = ANY({self.attr(s)}))"
        v, source = self.elements(s)
        x_sql = self.expr(x) if x_sql is None else x_sql
        return f"EXISTS (SELECT 1 FROM {source} WHERE {v} = {x_sql})"

    def _contains_all(self, s: Node, t: Node) -> str:
        if isinstance(t, Value):
            inner = t.type[4:-1] or "string"
            parts = [self._contains(s, Value(v, inner)) for v in sorted(t.value, key=repr)]
            return "(" + " AND ".join(parts) + ")" if parts else "(1 = 1)"
        v, source = self.elements(t)
        if isinstance(s, Value):
            return f"NOT EXISTS (SELECT 1 FROM {source} WHERE NOT {self._in(v, s)})"
        return f"NOT EXISTS (SELECT 1 FROM {source} WHERE NOT {self._contains(s, None, v)})"

    def _like(self, x: str, pattern: str) -> str:
        parts = pattern.split("*")
        if self.pg:  # LIKE is case-sensitive in PostgreSQL; `\\` escapes % and _
            escaped = [p.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                       for p in parts]
            return f"({x} LIKE {self._param('%'.join(escaped))} ESCAPE '\\')"
        # SQLite's LIKE ignores ASCII case; GLOB does not ([x] quotes a character)
        escaped = [p.replace("[", "[[]").replace("*", "[*]").replace("?", "[?]")
                   for p in parts]
        return f"({x} GLOB {self._param('*'.join(escaped))})"

    def _ip(self, node: Expr) -> str:
        if not self.pg:
            raise _Failed(node, "ip ranges have no SQLite form", _first_attr(node))
        x, r = node.args
        if node.op == "ip_in":
            return f"({self.expr(x)} <<= {self.expr(r)})"
        if isinstance(r, Value):
            tests = [f"{self.expr(x)} <<= {self.param(v, 'ip')}"
                     for v in sorted(r.value)]
            return "(" + " OR ".join(tests) + ")" if tests else "(1 = 0)"
        v, source = self.elements(r)
        return f"EXISTS (SELECT 1 FROM {source} WHERE {self.expr(x)} <<= {v})"


def _first_attr(node: Node) -> str:
    if isinstance(node, Attr):
        return node.name
    for a in getattr(node, "args", ()):
        found = _first_attr(a)
        if found:
            return found
    return ""


def _within(node: Node, tree) -> bool:
    if tree is node:
        return True
    return isinstance(tree, Expr) and any(_within(node, a) for a in tree.args)


def _column_lookup(columns: dict[str, str]) -> Callable[[str], str | None]:
    return columns.get


def to_sql(plan: Plan, columns: dict[str, str], dialect: str = "sqlite") -> tuple[str, list]:
    """(where_clause, params): `?` placeholders for sqlite, `%s` for postgresql."""
    params: list = []
    mark = "%s" if dialect == "postgresql" else "?"

    def param(value):
        params.append(value)
        return mark

    writer = SqlWriter(dialect, _column_lookup(columns), param, percent=mark == "%s")
    return writer.where(plan), params


def to_sql_columns(plan: Plan, columns: dict[str, str],
                   dialect: str = "sqlite") -> tuple[str, list]:
    """(select list, params): each visible field with a column, as `col AS field` or
    `CASE WHEN <visible> THEN col END AS field`; fields never visible are left out."""
    params: list = []
    mark = "%s" if dialect == "postgresql" else "?"

    def param(value):
        params.append(value)
        return mark

    writer = SqlWriter(dialect, _column_lookup(columns), param, percent=mark == "%s")
    return ", ".join(writer.masks(plan)), params


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
