"""The SQL writer: renders a plan's residual nodes, and the column guards of every
column the plan reads, as SQLite or PostgreSQL text with bound parameters (plans/sql.py
has the entry points and the contract).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from ..engine.plan import ALWAYS_ALLOWED, CONDITIONAL, Plan
from ..engine.residual import Attr, Expr, Node, Value
from ..values import format_ip
from . import columns as cc
from .forms import epoch_clock, sqlite_arith, sqlite_clock, sqlite_length, sqlite_like

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
                 param: Callable[[Any], str], percent: bool,
                 time_kind: Callable[[str], str | None] | None = None):
        if dialect not in DIALECTS:
            raise ValueError(f"unknown SQL dialect {dialect!r} (one of {', '.join(DIALECTS)})")
        self.pg = dialect == "postgresql"
        self.dialect, self.column, self._param, self.percent = dialect, column, param, percent
        default = cc.DEFAULT_TIME[dialect]
        self.time_kind = time_kind or (lambda name: default)  # attribute -> its storage
        self.aliases = itertools.count()

    # ---- entry points -------------------------------------------------------------

    def where(self, plan: Plan) -> str:
        """The rows the plan allows: its residual, and the column contract of every column
        the plan reads (the residual and the visible fields' conditions)."""
        if plan.kind != CONDITIONAL:
            return "(1 = 1)" if plan.kind == ALWAYS_ALLOWED else "(1 = 0)"
        cond = self._translated(plan, plan.residual, self.cond)
        guards = self.guards(plan)
        return f"({cond} AND {' AND '.join(guards)})" if guards else cond

    def guards(self, plan: Plan) -> list[str]:
        out, seen = [], set()
        compared = _compared(plan.residual)  # NULL there already fails the whole residual
        for node in _attrs(plan.residual, *(v for v in plan.visible.values()
                                             if v is not True)):
            col = self.column(node.name)
            if col is None or node.name in seen:
                continue
            seen.add(node.name)
            kind = self.time_kind(node.name) if node.type == "time" else None
            found = cc.guard(col, node.type, self.pg, kind, self._param)
            if plan.optional is not None and node.name not in plan.optional and \
                    node.name != "id" and node.name not in compared:
                # required: a NULL there is outside the contract
                found = f"({col} IS NOT NULL AND {found})" if found else \
                    f"({col} IS NOT NULL)"
            if found:
                out.append(found)
        return out

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

    def param(self, value: Any, t: str, node: Node | None = None) -> str:
        if t == "ip":
            return f"CAST({self._param(format_ip(value))} AS inet)"
        if t == "time":  # a time is bound where it is compared with a column (_compare)
            raise _Failed(node or Value(value, t), "a time compared with something that is "
                          "not a time column")
        if self.pg and isinstance(value, str) and "\x00" in value:
            raise _Failed(node or Value(value, t), "a string holding U+0000: PostgreSQL text "
                          "holds none, and refuses it as a parameter")
        return self._param(value)

    def attr(self, node: Attr) -> str:
        col = self.column(node.name)
        if col is None:
            raise _Failed(node, f"resource attribute `{node.name}` has no column: add it to "
                          "`columns`", node.name)
        if node.type == "ip" and not self.pg:
            raise _Failed(node, f"`{node.name}` is an ip: SQLite has no ip type", node.name)
        if node.type == "time" and self.time_kind(node.name) is None:
            raise _Failed(node, f"`{node.name}` is a time, and its column's type holds none "
                          "the contract knows (epoch seconds as a float or integer type, or "
                          "a timestamp / DateTime)", node.name)
        if not self.pg and node.type.startswith(("set<", "map<")):
            # json_each raises on malformed JSON, and one such row would fail the query
            # for every caller: it reads an empty one instead (the guard excludes the row)
            empty = "'[]'" if node.type.startswith("set<") else "'{}'"
            return f"(CASE WHEN {col} IS NULL THEN NULL WHEN json_valid({col}) THEN {col} " \
                f"ELSE {empty} END)"
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
            if self.pg:  # float8 raises on overflow and underflow: no exact form
                raise _Failed(node, "arithmetic has no exact PostgreSQL form (PostgreSQL "
                              "raises on overflow and underflow, where the policy's result "
                              "is unknown or rounded): filter those rows with plan.matches",
                              _first_attr(node))
            return sqlite_arith(_ARITH[op], self.expr(a[0]), self.expr(a[1]))
        if op == "neg":
            return f"(-{self.expr(a[0])})"
        if op == "len":
            if a[0].type.startswith("map<") if isinstance(a[0], Attr) else False:
                if self.pg:
                    return f"(SELECT count(*) FROM jsonb_object_keys({self.attr(a[0])}))"
                # a JSON object's keys once each, as Python reads it (the last one wins)
                return f"(SELECT count(DISTINCT key) FROM json_each({self.attr(a[0])}))"
            x = self.expr(a[0])
            return f"char_length({x})" if self.pg else sqlite_length(x)
        if op == "set_len":
            v, source = self.elements(a[0])
            return f"(SELECT count(DISTINCT {v}) FROM {source})"
        if op in ("hour", "weekday"):
            return self._clock(op, a[0])
        if op == "get":
            return self._get(node)
        if op in _COMPARE or op in ("and", "or", "not"):
            return self.cond(node)
        raise _Failed(node, f"operator `{op}` has no exact {self.dialect} form", "")

    def _clock(self, op: str, node: Node) -> str:
        """`hour` or `weekday` of a time column, by its storage (columns.py)."""
        t = self.expr(node)
        kind = self.time_kind(node.name) if isinstance(node, Attr) else cc.EPOCH
        if self.pg and kind != cc.EPOCH:
            part = "hour" if op == "hour" else "isodow"
            utc = f"{t} AT TIME ZONE 'UTC'" if kind == cc.TIMESTAMPTZ else t
            return f"CAST(extract({part} from {utc}) AS integer)"
        if self.pg:  # epoch seconds: the same integer floor division as SQLite's
            return self.lit(epoch_clock(op, f"floor({t})::bigint"))
        if kind in (cc.ISO_TEXT, cc.DJANGO_TEXT):
            return self.lit(sqlite_clock(op, t))
        return self.lit(epoch_clock(op, f"(CAST({t} AS INTEGER) - (CAST({t} AS INTEGER) > "
                                        f"{t}))"))

    def _map(self, node: Node) -> str:
        if not isinstance(node, Attr):
            raise _Failed(node, "a map that is not a resource attribute")
        return self.attr(node)

    def _get(self, node: Expr) -> str:
        t = node.args[0].type[len("map<string, "):-1]
        if t not in ("string", "number", "bool"):
            raise _Failed(node, f"a map of {t} read by key", node.args[0].name)
        m = self._map(node.args[0])

        def key() -> str:  # bound anew each time the text reads it (params follow the text)
            return self.expr(node.args[1])
        if not self.pg:
            return _last_value(m, key())
        if t == "number":  # a cast that cannot raise: the guard keeps bad rows out
            return f"(CASE WHEN jsonb_typeof({m} -> {key()}) <> 'number' THEN NULL WHEN " \
                f"abs(({m} -> {key()})::numeric) <= {self._param(cc.UNDERFLOW)} THEN " \
                f"0::float8 WHEN abs(({m} -> {key()})::numeric) < " \
                f"{self._param(cc.OVERFLOW)} THEN ({m} ->> {key()})::float8 END)"
        cast = {"string": "", "bool": "::boolean"}[t]
        return f"(({m} ->> {key()}){cast})"

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
            return f"{alias}.value", f"json_each({_last_value(m, key)}) AS {alias}"
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
            return self._compare(node)
        if op == "in":
            if isinstance(a[1], Value) and a[1].type == "set<time>":
                return self._time_in(a[0], a[1])
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
            x = self.expr(a[0])
            parts = a[1].value.split("*")
            if self.pg:
                return self._like(x, a[1].value)
            return sqlite_like(x, [parts[0], *[p for p in parts[1:-1] if p], parts[-1]]
                               if len(parts) > 1 else parts, self._param)
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

    def _compare(self, node: Expr) -> str:
        """A comparison; a time against a bound is placed on the microsecond grid the
        column holds, in its storage (an epoch float between two microseconds is no
        row's time)."""
        op, (a, b) = node.op, node.args
        if isinstance(a, Attr) and a.type == "time" and isinstance(b, Value):
            kind = self.time_kind(a.name)
            col = self.attr(a)
            placed = cc.time_compare(op, b.value)
            if type(placed) is bool:
                return "(1 = 1)" if placed else "(1 = 0)"
            op, us = placed
            return f"({col} {_COMPARE[op]} {self._param(cc.time_value(us, kind))})"
        return f"({self.expr(a)} {_COMPARE[op]} {self.expr(b)})"

    def _time_in(self, x: Node, values: Value) -> str:
        kind = self.time_kind(x.name) if isinstance(x, Attr) else cc.DEFAULT_TIME[self.dialect]
        col = self.expr(x)
        exact = sorted(cc.floor_us(t) for t in values.value if cc.floor_us(t) == cc.ceil_us(t))
        if not exact:
            return "(1 = 0)"
        return f"({col} IN ({', '.join(self._param(cc.time_value(u, kind)) for u in exact)}))"

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
            attr = _first_attr(node)
            raise _Failed(node, f"`{attr}` is an ip: ip ranges have no SQLite form", attr)
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


def _attrs(*trees) -> list[Attr]:
    """Every attribute node the trees read, in the order they read them."""
    out, todo = [], [t for t in trees if t is not None][::-1]
    while todo:
        node = todo.pop()
        if isinstance(node, Attr):
            out.append(node)
        elif isinstance(node, Expr):
            todo.extend(reversed(node.args))
    return out


_NULL_FAILS = ("eq", "ne", "lt", "le", "gt", "ge", "in", "like")


def _compared(residual) -> set[str]:
    """Attributes a top-level conjunct of the residual compares directly: a NULL in such
    a column makes that conjunct, and so the residual, not true."""
    parts = residual.args if isinstance(residual, Expr) and residual.op == "and" \
        else (residual,)
    return {p.args[0].name for p in parts if isinstance(p, Expr) and p.op in _NULL_FAILS
            and isinstance(p.args[0], Attr)}


def _last_value(m: str, key: str) -> str:
    """A SQLite JSON object's value under `key`: the last one where the key repeats, as
    Python's JSON (and PostgreSQL's jsonb) keep it."""
    return f"(SELECT value FROM json_each({m}) WHERE key = {key} ORDER BY id DESC LIMIT 1)"


def _within(node: Node, tree) -> bool:
    if tree is node:
        return True
    return isinstance(tree, Expr) and any(_within(node, a) for a in tree.args)
