"""Step 4 to 7 of a decision, after validation: inventory (an undeclared type or action),
unknown-role warnings, the generated decider, writes, and the memo of identical decisions
(the same dicts the generated fast path reads)."""

from __future__ import annotations

from collections.abc import Callable

from .models import EMPTY, Decision, FrozenList, make_decision
from .outputs import with_outputs
from .policyset import ALLOW_BITS, PolicySet
from .roles import role_names_in, unknown_roles
from .state import Installed
from .writes import explained, refused_writes

_CACHE_MAX = 4096


def decide(state: Installed, failed: Callable[[PolicySet, Exception], Decision], pid, P,
           rtype, rid, R, C, ptype, action, wf, explain) -> Decision:
    """The decision of a valid request; `failed` makes the decision of an unexpected
    failure (fail closed: never an allow). With the outputs of the rules that decided,
    where the action has rules with an `output` (1.2)."""
    found = decided(state, failed, pid, P, rtype, rid, R, C, ptype, action, wf, explain)
    items = state.ps.outputs.get((rtype, action)) if state.ps.outputs else None
    if items is None:
        return found
    try:
        return with_outputs(state.ps, found, items, (pid, P, rid, R, C, ptype, action))
    except Exception as exc:  # an output that cannot be computed: fail closed
        return failed(state.ps, exc)


def decided(state: Installed, failed: Callable[[PolicySet, Exception], Decision], pid, P,
            rtype, rid, R, C, ptype, action, wf, explain) -> Decision:
    ps, role_names, role_attrs, allow_caches, deny_cache = state.deciding
    try:
        roles = P.get("roles")
        if role_attrs:
            roles = role_names_in(P, roles, role_attrs)
        warnings = EMPTY if not roles or role_names.issuperset(roles) else \
            unknown_roles(roles, role_names, ps.roles_sensitive)
        if R is None:
            return plain(ps, "unknown_resource", warnings)
        fn = ps.deciders[rtype].get(action)
        if fn is None:
            return plain(ps, "unknown_action", warnings)
        if explain:
            return explained(ps, state.bits[rtype], (pid, P, rtype, rid, R, C, ptype, action),
                             wf, warnings)
        outcome = fn(pid, P, rid, R, C, ptype)
        if type(outcome) is int:
            if wf:
                refused = refused_writes(ps, state.bits[rtype],
                                         (pid, P, rtype, rid, R, C, ptype, action), wf)
                if refused:
                    return make_decision(False, FrozenList(refused), EMPTY, 0.0, ps.version,
                                         warnings)
            if warnings:
                return allowed(ps, rtype, outcome, warnings)
            cache = allow_caches[rtype]  # the int names a rule of this type only
            found = cache.get(outcome)
            if found is None:
                found = allowed(ps, rtype, outcome, EMPTY)
                if len(cache) < _CACHE_MAX:
                    cache[outcome] = found
            return found
        if warnings:
            return make_decision(False, FrozenList(outcome or ("default_deny",)), EMPTY, 0.0,
                                 ps.version, warnings)
        found = deny_cache.get(outcome)
        if found is None:
            found = make_decision(False, FrozenList(outcome or ("default_deny",)), EMPTY, 0.0,
                                  ps.version)
            if len(deny_cache) < _CACHE_MAX:
                deny_cache[outcome] = found
        return found
    except Exception as exc:  # fail closed: never allow on an unexpected failure
        return failed(ps, exc)


def allowed(ps: PolicySet, rtype: str, outcome: int, warnings) -> Decision:
    visible = ps.fields_of(rtype, outcome >> ALLOW_BITS)
    return make_decision(True, FrozenList((ps.allow_rule(rtype, outcome).name,)),
                         FrozenList(visible), 0.0, ps.version, warnings)


def plain(ps: PolicySet, reason: str, warnings) -> Decision:
    return make_decision(False, FrozenList((reason,)), EMPTY, 0.0, ps.version, warnings)
