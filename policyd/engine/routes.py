"""Matching HTTP requests to the set's routes: (method, path) to the resource type,
action, id and path attributes, or None for a request no route declares (the caller's
reason is `unknown_route`: anything else is a shadow endpoint).

Exact: the method as given, segments compared as they are (no case folding, no
trailing-slash or prefix matching), each segment percent-decoded once. A path with
an empty, `.` or `..` segment (before or after decoding), an invalid escape, or a
segment that decodes to `/`, `\\` or NUL matches nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..language.routes import CheckedRoute

_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_BAD_CHAR = re.compile("[/\\\\\x00]")  # a segment may not decode to `/`, `\\` or NUL


@dataclass(frozen=True, slots=True)
class RouteMatch:
    resource: str
    action: str
    id: str | None  # None: the route has no {id} (a collection or a create)
    attrs: dict[str, str]
    route: CheckedRoute


def _decoded(segment: str) -> str | None:
    if "%" in segment:
        if segment.count("%") != len(_ESCAPE.findall(segment)):
            return None  # a `%` that starts no valid escape
        try:
            segment = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), segment)
            segment = segment.encode("latin-1").decode("utf-8")
        except UnicodeError:
            return None
    if not segment or segment in (".", "..") or _BAD_CHAR.search(segment):
        return None
    return segment


class RouteTable:
    """The routes of a set, indexed by (method, number of segments); literal segments
    are tried before parameters, position by position."""

    def __init__(self, routes: tuple[CheckedRoute, ...] = ()):
        self.routes = routes
        self._index: dict[tuple[str, int], list[CheckedRoute]] = {}
        for r in routes:
            self._index.setdefault((r.method, len(r.segments)), []).append(r)
        for candidates in self._index.values():
            candidates.sort(key=lambda r: tuple(s is None for s in r.segments))

    def __bool__(self) -> bool:
        return bool(self.routes)

    def match(self, method: str, path: str) -> RouteMatch | None:
        path = path.split("?", 1)[0].split("#", 1)[0]
        if not path.startswith("/"):
            return None
        raw = path.split("/")[1:] if path != "/" else []
        candidates = self._index.get((method, len(raw)))
        if not candidates:
            return None
        segments = [_decoded(s) for s in raw]
        if any(s is None for s in segments):
            return None
        for route in candidates:
            values = []
            for lit, seg in zip(route.segments, segments, strict=True):  # one length
                if lit is None:
                    values.append(seg)
                elif lit != seg:
                    break
            else:
                attrs = dict(zip(route.params, values, strict=True))
                rid = attrs.pop("id", None)
                return RouteMatch(route.resource, route.action, rid, attrs, route)
        return None
