"""Fixture attribute values: typed like policy literals, then written as a request
would carry them (ip and time as strings, sets as sorted lists)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ..language import nodes as n
from ..language.checked import Const
from ..language.diagnostics import Diagnostic, did_you_mean
from ..language.exprs import ExprChecker, Scope
from ..language.schema import ERROR, IP, TIME, compatible, is_map, is_set, map_value

_LITERAL_FORMS = (n.Literal, n.SetLit, n.Call, n.Unary, n.ConstRef)


def literal(expr: n.Expr, constants: dict[str, Const],
            report: Callable[[Diagnostic], None], cs=None) -> Const | None:
    """The typed value of a fixture attribute, or None after reporting why not; with the
    checked set `cs`, entity literals (`Team("eng")`) are values too (1.2)."""
    bad = _first_non_literal(expr, cs)
    if bad is not None:
        report(Diagnostic.at(bad.span, "E417", "a fixture value must be a literal, a constant, "
                             "or ip(...)/time(...) of a string",
                             "fixtures hold data; conditions belong in policies"))
        return None
    scope = Scope({}, None, None, {}, constants, report, const_only=True)
    if cs is not None:
        scope = Scope(cs.principals, None, None, {}, constants, report, const_only=True,
                      entities=cs.entities, resources_all=cs.resources)
    value = ExprChecker(scope).expr(expr, frozenset())
    if isinstance(value, Const):
        return value if value.type != ERROR else None  # an error has been reported
    report(Diagnostic.at(expr.span, "E417", "a fixture value must be a literal value",
                         "fixtures hold data, not computations"))
    return None


def _first_non_literal(expr: n.Expr, cs=None) -> n.Expr | None:
    entity = cs is not None and isinstance(expr, n.Call) and \
        cs.typed(expr.func.value) is not None
    if not isinstance(expr, _LITERAL_FORMS) or (isinstance(expr, n.Unary) and expr.op != "-") \
            or (isinstance(expr, n.Call) and expr.func.value not in ("ip", "time") and
                not entity):
        return expr
    children = expr.items if isinstance(expr, n.SetLit) else \
        (expr.operand,) if isinstance(expr, n.Unary) else ()
    for child in children:
        found = _first_non_literal(child, cs)
        if found is not None:
            return found
    return None


FAIL = object()  # fixture_value's answer for a value it reported


def fixture_value(expr: n.Expr, declared: str, cs, report: Callable[[Diagnostic], None],
                  where: str):
    """A fixture attribute's value as a request carries it, checked against its declared
    type (records and maps written as `{ ... }`), or FAIL after reporting why not."""
    record = cs.records.get(declared)
    if record is not None or is_map(declared):
        if not isinstance(expr, n.RecordLit):
            report(Diagnostic.at(expr.span, "E415", f"`{where}`: expected {declared}, "
                                 "written `{ name: value, ... }`"))
            return FAIL
        out, ok = {}, True
        for f in expr.fields:
            if f.key in out:
                report(Diagnostic.at(f.span, "E418", f"`{where}.{f.key}` is given twice"))
                ok = False
                continue
            spec = record.by_name.get(f.key) if record is not None else None
            if record is not None and spec is None:
                report(Diagnostic.at(f.span, "E414", f"`{f.key}` is not declared on record "
                                     f"{record.name}", did_you_mean(f.key, record.by_name)))
                ok = False
                continue
            t = spec.type if spec is not None else map_value(declared)
            value = fixture_value(f.value, t, cs, report, f"{where}.{f.key}")
            if value is FAIL:
                ok = False
            else:
                out[f.key] = value
        for spec in record.attrs if record is not None else ():
            if spec.name not in out and not spec.optional and ok:
                report(Diagnostic.at(expr.span, "E416", f"`{where}.{spec.name}` ({spec.type}) "
                                     f"is required by record {record.name}"))
                ok = False
        return out if ok else FAIL
    value = literal(expr, cs.constants, report, cs)
    problem = None if value is None else type_problem(cs.runtime(declared),
                                                      _runtime(value, cs))
    if problem is not None:
        report(Diagnostic.at(expr.span, "E415", f"`{where}`: {problem[0]}", problem[1]))
    if value is None or problem is not None:
        return FAIL
    return request_value(value.value, value.type)


def _runtime(value: Const, cs) -> Const:
    """A reference (or a set of them) as its ids: a fixture may write `"eng"` or
    `Team("eng")` where a Team is declared (1.2)."""
    return Const(value.value, cs.runtime(value.type))


def type_problem(declared: str, value: Const) -> tuple[str, str | None] | None:
    """(message, hint) when a typed value does not fit the declared attribute type."""
    if compatible(declared, value.type):
        return None
    hint = None
    if declared in (IP, TIME) and value.type == "string":
        hint = f'write {declared}("{value.value}")'
    return f"expected {declared}, found {value.type}", hint


def request_value(value: Any, t: str) -> Any:
    """The runtime value of a checked literal, as a JSON request carries it."""
    if is_set(t) or isinstance(value, frozenset):
        element = t[4:-1] if is_set(t) else ""
        return sorted((request_value(v, element) for v in value), key=repr)
    if t == IP:
        return _ip_text(value)
    if t == TIME:
        return datetime.fromtimestamp(value, tz=UTC).isoformat().replace("+00:00", "Z")
    return value


def _ip_text(value: tuple[int, int, int]) -> str:
    version, first, last = value
    cls = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
    if first == last:
        return str(cls(first))
    return next(ipaddress.summarize_address_range(cls(first), cls(last))).with_prefixlen

