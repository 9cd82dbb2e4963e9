"""Searches over the set's entity data (AuthZEN's subject, resource and action searches):
the entities of a type, or the actions, that one request allows, a page at a time.

- A resource search is one query plan, matched against each stored entity's rows: no
  decision per entity. The plan's equality tests on stored scalar attributes pick the
  candidates from an index of the data (built once per data version), so a search for
  one owner's documents reads that owner's documents, not all of them.
- A subject search has no plan (a plan fixes the principal), so it decides principals
  in id order, validating the rest of the request once, with steps 4 to 7 only: a
  search consumes no rate tokens, and writes no record per entity.
- Pages resume after the last id returned (a keyset, not an offset): walking every
  page reads each entity once. The total is counted on the first page only.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable
from itertools import islice

from .deciding import decide
from .envelope import complete, resource_part, shared_parts
from .models import RequestError, SearchPage
from .plan import ALWAYS_DENIED, Plan
from .planner import plan_parts
from .residual import Attr, Expr, Value
from .state import Installed

_SCALARS = ("string", "number", "bool")


def _page(items: list[str], allowed: Callable[[str], bool], after: str | None, limit: int,
          kind: str, version: str, warnings: tuple = ()) -> SearchPage:
    """The page of `items` (ids in order, or actions in declared order) that `allowed`
    keeps, after `after`: on the first page every item is tried (to count them all),
    on a later one only as many as the page needs."""
    if after is None:
        hits = [i for i in items if allowed(i)]
        found, total = hits[:limit], len(hits)
        more = total > limit
    else:
        start = bisect_right(items, after) if kind != "action" else \
            items.index(after) + 1 if after in items else len(items)
        found, more, total = [], False, None
        for item in islice(items, start, None):
            if allowed(item):
                if len(found) == limit:
                    more = True
                    break
                found.append(item)
    return SearchPage(kind, tuple(found), more, total, version, (), warnings)


def _candidates(plan: Plan, table) -> list[str]:
    """The ids the residual can hold for, in order: every id, unless the index narrows
    them (`_narrowed`)."""
    found = _narrowed(plan.residual, table)
    return table.ids() if found is None else sorted(found)


def _narrowed(node, table) -> set | None:
    """The ids for which `node` can hold, from equality and membership tests on the id or
    a stored scalar attribute: an `and` is narrowed by any of its parts, an `or` only
    when all of its parts are; None when the index cannot say."""
    if not isinstance(node, Expr):
        return None
    if node.op in ("and", "or"):
        parts = [_narrowed(a, table) for a in node.args]
        if node.op == "or":
            return None if any(p is None for p in parts) else set().union(*parts)
        known = [p for p in parts if p is not None]
        return set.intersection(*known) if known else None
    if node.op not in ("eq", "in") or not isinstance(node.args[0], Attr) or \
            not isinstance(node.args[1], Value):
        return None
    attr, value = node.args[0], node.args[1].value
    values = value if node.op == "in" else (value,)
    if attr.path == ("id",):
        return {v for v in values if v in table.rows}
    if len(attr.path) == 1 and attr.type in _SCALARS:
        index = table.index(attr.path[0])
        return {eid for v in values for eid in index.get(v, ())}
    return None


def resources(state: Installed, request: dict, clock, after: str | None,
              limit: int) -> SearchPage:
    """The stored resources of `request["resource"]["type"]` the request allows; the
    resource's given `attrs` apply to each of them. Raises RequestError."""
    plan, _ = plan_parts(state, request, clock)
    rtype = plan.resource_type
    table = state.ps.entities.resources.get(rtype) if state.entities is not None else None
    if plan.kind == ALWAYS_DENIED or table is None:
        return SearchPage("resource", (), False, 0, plan.policy_version, plan.reasons,
                          plan.warnings)
    if plan.residual is not None:
        stored = {a.name for a in state.ps.schema.resources[rtype].stored}
        unknown = sorted(plan.attributes - stored - {"id"})
        if unknown:
            raise RequestError(f"resource attribute `{unknown[0]}` is not in the entity data: "
                               "give it with the resource for a search")
    match, rows = plan.stored_matcher, table.rows
    ids = table.ids() if plan.residual is None else _candidates(plan, table)
    return _page(ids, lambda eid: match(rows[eid], eid), after, limit, "resource",
                 plan.policy_version, plan.warnings)


def subjects(state: Installed, request: dict, clock, failed: Callable, after: str | None,
             limit: int) -> SearchPage:
    """The stored principals of `request["principal"]["type"]` the request allows (its
    given `attrs` apply to each), decided without rate limits. Raises RequestError."""
    ps = state.ps
    ptype = request["principal"]["type"]
    table = ps.entities.principals.get(ptype) if state.entities is not None else None
    if table is None:
        return SearchPage("subject", (), False, 0, ps.version)
    try:
        _, P, C, ptype = shared_parts(state, request, clock)
        rtype, rid, R = resource_part(state, request["resource"], [request["action"]], None,
                                      clock)
    except RequestError:
        raise
    except Exception:
        raise RequestError("the search's subject, resource or context does not fit the "
                           "declarations") from None
    action, entities = request["action"], state.entities

    def allowed(eid: str) -> bool:
        found = entities.attach(ptype, eid, P, rtype, rid, R)
        if type(found) is str:  # missing_data: denied
            return False
        return decide(state, failed, eid, found[0], rtype, rid, found[1], C, ptype, action,
                      None, False).allowed

    return _page(table.ids(), allowed, after, limit, "subject", ps.version)


def actions(state: Installed, request: dict, clock, failed: Callable, names: Iterable[str],
            after: str | None, limit: int) -> SearchPage:
    """The actions of `names` the request (without its action) allows, without rate
    limits. Raises RequestError."""
    ps = state.ps
    try:
        pid, P, C, ptype = shared_parts(state, request, clock)
        rtype, rid, R = resource_part(state, request["resource"], list(names), None, clock)
    except Exception:
        raise RequestError("the search's subject, resource or context does not fit the "
                           "declarations") from None
    found = complete(state, request["principal"], request["resource"], ptype, pid, P, rtype,
                     rid, R)
    if type(found) is str:
        return SearchPage("action", (), False, 0, ps.version, (found,))
    P, R = found

    def allowed(action: str) -> bool:
        return decide(state, failed, pid, P, rtype, rid, R, C, ptype, action, None,
                      False).allowed

    return _page(list(names), allowed, after, limit, "action", ps.version)
