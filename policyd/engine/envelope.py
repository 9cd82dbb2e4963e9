"""The general validation path's reading of a request, in parts: the principal and the
context (validated once per batch or plan), and a resource. Each raises on anything
off; the caller turns that into the explained RequestError."""

from __future__ import annotations

from ..values import utf8_len
from .state import Installed

_EMPTY_DICT: dict = {}


def over(max_bytes: int, *texts: str) -> bool:
    return any(utf8_len(t) > max_bytes for t in texts)


def shared_parts(state: Installed, request: dict, clock) -> tuple:
    """(pid, P, C, ptype) of a request's principal and context; raises if invalid."""
    p, ctx = request["principal"], request.get("context")
    pattrs, pid = p.get("attrs"), p["id"]
    if type(pid) is not str or not pid or len(p) != 2 + (pattrs is not None) \
            or type(request.get("dry_run", False)) is not bool \
            or len(pid) > state.short and over(state.max_bytes, pid):
        raise ValueError
    P = state.principals[p["type"]](_EMPTY_DICT if pattrs is None else pattrs, clock)
    if state.context is not None:
        C = state.context(_EMPTY_DICT if ctx is None else ctx, clock)
    elif ctx:
        raise ValueError
    else:
        C = _EMPTY_DICT
    return pid, P, C, p["type"]


def resource_part(state: Installed, resource: dict, actions: list, wf: list | None,
                  clock) -> tuple:
    """(rtype, rid, R) of a request's resource, R None for an undeclared type."""
    rtype, rid, rattrs = resource["type"], resource["id"], resource.get("attrs")
    if type(rid) is not str or not rid or type(rtype) is not str \
            or len(resource) != 2 + (rattrs is not None) \
            or any(type(a) is not str for a in actions) \
            or any(len(t) > state.short for t in (rid, rtype, *actions)) \
            and over(state.max_bytes, rid, rtype, *actions):
        raise ValueError
    rv = state.resources.get(rtype)
    R = None if rv is None else rv(_EMPTY_DICT if rattrs is None else rattrs, clock)
    if wf is not None:
        check_fields(state, wf)
    return rtype, rid, R


def check_fields(state: Installed, wf) -> None:
    if type(wf) is not list or not all(type(f) is str for f in wf) \
            or any(len(f) > state.short for f in wf) and over(state.max_bytes, *wf):
        raise ValueError
