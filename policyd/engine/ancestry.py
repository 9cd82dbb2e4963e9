"""What the decision log says of relationships (1.2): for each rule that decided, the
chains of parents that made its `in` tests hold (`User("ana") -> Team("sre") ->
RepoPermission("api_maintainers")`): the ancestors used, never the graph. Computed only
for a record, and only when a deciding rule has an `in`; the decision is already made."""

from __future__ import annotations

from .envelope import complete
from .explain import Explainer
from .explain_rel import chains
from .partial import Env


def ancestors_used(state, request: dict, decision) -> dict | None:
    """{rule: [chain, ...]} for the deciding rules with an `in`, or None. Never raises:
    a record must not fail a decision (a request the decision refused has no chains)."""
    rules = state.ps.rules_with_in
    names = [n for n in decision.reasons if n in rules]
    if not names:
        return None
    try:  # the decision validated the request: only the `in` operands are evaluated, and
        # they are entity ids (references, literals, data), the same raw as converted
        p, r = request["principal"], request["resource"]
        ptype, pid, rtype, rid = p["type"], p["id"], r["type"], r["id"]
        found = complete(state, p, r, ptype, pid, dict(p.get("attrs") or {}), rtype, rid,
                         dict(r.get("attrs") or {}))
        if type(found) is str:
            return None
        env = Env(pid, found[0], {}, ptype, rtype, rid, found[1], request["action"],
                  state.ps.entities)
        explainer = state.ps.explainers.get(rtype)
        if explainer is None:
            explainer = state.ps.explainers[rtype] = Explainer(state.ps, rtype)
        out = {n: via for n in names if (via := chains(explainer, rules[n], env))}
    except Exception:
        return None
    return out or None


def batch_used(state, principal: dict, items: list, decisions: list) -> list:
    """`ancestors_used` for each (item, action) decision of a batch, in order."""
    pairs = ((item, action) for item in items for action in item["actions"])
    return [ancestors_used(state, {"principal": principal, "action": action,
                                   "resource": item["resource"]}, d) if d.reasons else None
            for (item, action), d in zip(pairs, decisions, strict=True)]
