"""Checks `routes for TYPE { METHOD PATH -> ACTION ... }`: the HTTP inventory of an API.

Each route is a method, a template of literal segments and whole-segment `{name}`
parameters, and one of the type's declared actions. `{id}` is the resource id; any
other parameter is a declared, required, non-stored string attribute of the type.
Two routes that match the same requests are an error, so a request matches at most
one route of each shape; where a literal and a parameter could both match, the
literal wins (engine/routes.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from . import nodes as n
from .diagnostics import Diagnostic, did_you_mean
from .schema import STRING, EntitySchema

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_LITERAL = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@]+")


@dataclass(frozen=True, slots=True)
class CheckedRoute:
    method: str
    template: str
    segments: tuple[str | None, ...]  # a literal segment, or None for a parameter
    params: tuple[str, ...]  # the parameters' names, in path order
    resource: str
    action: str
    file: str
    line: int
    column: int

    @property
    def shape(self) -> tuple:
        """Routes of one shape match the same requests."""
        return (self.method, self.segments)


def check_routes(decls: list[n.RoutesDecl], resources: dict[str, EntitySchema],
                 report) -> tuple[CheckedRoute, ...]:
    out: list[CheckedRoute] = []
    seen: dict[tuple, CheckedRoute] = {}
    for d in decls:
        res = resources.get(d.resource.value)
        if res is None:
            report(Diagnostic.at(d.resource.span, "E125", f"routes for an unknown resource "
                                 f"type `{d.resource.value}`",
                                 did_you_mean(d.resource.value, resources)))
            continue
        for route in d.routes:
            checked = _route(route, res, report)
            if checked is None:
                continue
            first = seen.get(checked.shape)
            if first is not None:
                report(Diagnostic.at(route.span, "E130", f"`{checked.method} "
                                     f"{checked.template}` matches the same requests as "
                                     f"`{first.method} {first.template}` ({first.file}:"
                                     f"{first.line})", "each request must map to one action"))
                continue
            seen[checked.shape] = checked
            out.append(checked)
    return tuple(out)


def _route(route: n.Route, res: EntitySchema, report) -> CheckedRoute | None:
    ok = True
    method = route.method.value
    if method not in METHODS:
        report(Diagnostic.at(route.method.span, "E126", f"unknown HTTP method `{method}`",
                             did_you_mean(method.upper(), METHODS) or
                             "methods: " + ", ".join(METHODS)))
        ok = False
    if route.action.value not in res.actions:
        report(Diagnostic.at(route.action.span, "E118", f"`{res.name}` declares no action "
                             f"`{route.action.value}`",
                             did_you_mean(route.action.value, res.actions)))
        ok = False
    parsed = _template(route, res, report)
    if parsed is None or not ok:
        return None
    segments, params = parsed
    return CheckedRoute(method, route.path, segments, params, res.name, route.action.value,
                        route.span.file, route.span.line, route.span.column)


def _template(route: n.Route, res: EntitySchema, report):
    path, where = route.path, route.path_span
    parts = path.split("/")[1:] if path != "/" else []
    segments: list[str | None] = []
    params: list[str] = []
    for part in parts:
        param = _PARAM.fullmatch(part)
        if param is not None:
            name = param.group(1)
            if name in params:
                report(Diagnostic.at(where, "E129", f"`{{{name}}}` appears twice in `{path}`"))
                return None
            if name != "id" and not _string_attribute(name, res, where, report):
                return None
            segments.append(None)
            params.append(name)
            continue
        problem = "an empty segment (`//`, or a trailing `/`)" if not part else \
            f"`{part}`: a parameter is a whole segment, `{{name}}`" if "{" in part or "}" in part \
            else f"`{part}`: `.` and `..` are not path segments" if part in (".", "..") \
            else f"`{part}`: write literal segments decoded, with letters, digits and " \
            "-._~!$&'()*+,;=:@" if not _LITERAL.fullmatch(part) else None
        if problem:
            report(Diagnostic.at(where, "E127", f"invalid route path `{path}`: {problem}"))
            return None
        segments.append(part)
    return tuple(segments), tuple(params)


def _string_attribute(name: str, res: EntitySchema, where, report) -> bool:
    spec = res.by_name.get(name)
    if spec is None or spec.type != STRING or spec.optional or spec.stored:
        what = "is not declared" if spec is None else \
            f"is {'optional' if spec.optional else 'stored' if spec.stored else spec.type}"
        report(Diagnostic.at(where, "E128", f"route parameter `{{{name}}}`: `{res.name}.{name}` "
                             f"{what}", "a parameter other than {id} names a required string "
                             "attribute the request supplies"
                             + (f" ({did_you_mean(name, res.by_name)})"
                                if spec is None and did_you_mean(name, res.by_name) else "")))
        return False
    return True
