"""The general validation path's reading of a request, in parts: the principal and the
context (validated once per batch or plan), and a resource. Each raises on anything
off; the caller turns that into the explained RequestError."""

from __future__ import annotations

from ..values import utf8_len
from .graph import parents_of
from .runtime import ANCESTORS
from .state import Installed

_EMPTY_DICT: dict = {}


def over(max_bytes: int, *texts: str) -> bool:
    return any(utf8_len(t) > max_bytes for t in texts)


def shared_parts(state: Installed, request: dict, clock) -> tuple:
    """(pid, P, C, ptype) of a request's principal and context; raises if invalid."""
    p, ctx = request["principal"], request.get("context")
    pattrs, pid = p.get("attrs"), p["id"]
    if type(pid) is not str or not pid or len(p) != 2 + (pattrs is not None) + ("parents" in p) \
            or type(request.get("dry_run", False)) is not bool \
            or len(pid) > state.short and over(state.max_bytes, pid):
        raise ValueError
    P = state.principals[p["type"]](_EMPTY_DICT if pattrs is None else pattrs, clock)
    if p.get("parents"):  # checked here, attached after the stored attributes (attached)
        sent_parents(state, state.ps.schema.principals[p["type"]], p["parents"])
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
            or len(resource) != 2 + (rattrs is not None) + ("parents" in resource) \
            or any(type(a) is not str for a in actions) \
            or any(len(t) > state.short for t in (rid, rtype, *actions)) \
            and over(state.max_bytes, rid, rtype, *actions):
        raise ValueError
    rv = state.resources.get(rtype)
    R = None if rv is None else rv(_EMPTY_DICT if rattrs is None else rattrs, clock)
    if R is not None and resource.get("parents"):
        sent_parents(state, state.ps.schema.resources[rtype], resource["parents"])
    if wf is not None:
        check_fields(state, wf)
    return rtype, rid, R


def check_fields(state: Installed, wf) -> None:
    if type(wf) is not list or not all(type(f) is str for f in wf) \
            or any(len(f) > state.short for f in wf) and over(state.max_bytes, *wf):
        raise ValueError


def sent_parents(state: Installed, schema, value) -> tuple:
    """The parents a request sent for its principal or resource, as (type, id) pairs;
    raises for a type stored as a whole, an undeclared parent type, or an id too long."""
    if schema.whole:
        raise ValueError
    pairs = parents_of(value, schema.parents)
    if any(len(t) > state.short or len(i) > state.short for t, i in pairs) and \
            over(state.max_bytes, *(x for pair in pairs for x in pair)):
        raise ValueError
    return pairs


def parents_parts(state: Installed, p: dict, r: dict, R) -> tuple:
    """(principal's, resource's) parents a request sent, validated (None where none)."""
    schema = state.ps.schema
    return (sent_parents(state, schema.principals[p["type"]], p["parents"])
            if p.get("parents") else None,
            sent_parents(state, schema.resources[r["type"]], r["parents"])
            if R is not None and r.get("parents") else None)


def attached(state: Installed, sent: tuple, ptype: str, pid: str, P: dict, rtype: str,
             rid: str, R):
    """(P, R) with the ancestors of the parents the request sent for them (1.2), laid
    over the data's: what `in` reads (entities.EntityData.inside)."""
    graph = state.ps.entities
    if sent[0]:
        P = {**P, ANCESTORS: graph.sent(sent[0], ptype, pid)}
    if sent[1] and R is not None:
        R = {**R, ANCESTORS: graph.sent(sent[1], rtype, rid)}
    return P, R


def complete(state: Installed, p: dict, r: dict, ptype: str, pid: str, P: dict, rtype: str,
             rid: str, R):
    """(P, R) as a decision reads them: with their stored attributes and the ancestors of
    the parents the request sent; or the `missing_data:...` reason."""
    if state.entities is not None:
        found = state.entities.attach(ptype, pid, P, rtype, rid, R)
        if type(found) is str:
            return found
        P, R = found
    if p.get("parents") or r.get("parents"):
        P, R = attached(state, parents_parts(state, p, r, R), ptype, pid, P, rtype, rid, R)
    return P, R


def completed(state: Installed, request: dict, clock):
    """(pid, P, C, ptype, rtype, rid, R) of a whole request as a decision reads it, with
    stored attributes and sent parents attached (R None for an undeclared resource
    type), or the `missing_data:...` reason; raises on anything invalid."""
    pid, P, C, ptype = shared_parts(state, request, clock)
    resource = request["resource"]
    rtype, rid, R = resource_part(state, resource, [request["action"]], None, clock)
    if R is not None:
        found = complete(state, request["principal"], resource, ptype, pid, P, rtype, rid, R)
        if type(found) is str:
            return found
        P, R = found
    return pid, P, C, ptype, rtype, rid, R
