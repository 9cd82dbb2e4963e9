"""`Engine.plan`: a check request without a whole resource, answered as a Plan.

The combining rule is `check`'s, evaluated partially: the denies that hold for every
resource deny outright; the rest appear negated in the residual; the first allow that
holds for every resource ends the list of allows. Rate limits and write fields are
not part of a plan (a plan consumes no tokens).
"""

from __future__ import annotations

from typing import Any

from ..language.schema import IP, TIME, EntitySchema, is_map, is_set, map_value
from .envelope import attached, over, parents_parts, shared_parts
from .models import RequestError
from .partial import Env
from .plan import ALWAYS_ALLOWED, ALWAYS_DENIED, CONDITIONAL, Plan, make_plan
from .residual import UNKNOWN, conj, disj, negate, truthy
from .roles import role_names_in, unknown_roles
from .runtime import MissingData, ip, time
from .state import Installed
from .validation import Explainer, kind

PLAN_KEYS = frozenset(("principal", "action", "resource", "context"))


def plan(state: Installed, request: Any, clock) -> Plan:
    """Raises RequestError for a request that does not fit the declarations."""
    return plan_parts(state, request, clock)[0]


def plan_parts(state: Installed, request: Any, clock) -> tuple[Plan, tuple | None]:
    """The plan and what it was made from, (pid, P, C, ptype, rid, R) with the principal's
    stored attributes attached (None when the plan was decided before evaluating)."""
    try:
        parsed = _parse(state, request, clock)
    except RequestError:
        raise
    except Exception:
        raise RequestError(_problem(state, request)) from None
    if isinstance(parsed, Plan):
        return parsed, None
    pid, P, C, ptype, res, rid, R, action, warnings = parsed
    return _evaluate(state, *parsed), (pid, P, C, ptype, rid, R)


def _parse(state: Installed, request, clock):
    ps = state.ps
    if type(request) is not dict or not PLAN_KEYS.issuperset(request):
        raise ValueError
    r, action = request["resource"], request["action"]
    if type(action) is not str or len(action) > state.short and over(state.max_bytes, action):
        raise ValueError
    pid, P, C, ptype = shared_parts(state, request, clock)
    if type(r) is not dict or not {"type", "id", "attrs"}.issuperset(r):
        raise ValueError
    rtype, rid, rattrs = r["type"], r.get("id"), r.get("attrs")
    if type(rtype) is not str or rid is not None and (type(rid) is not str or not rid) \
            or max(len(rtype), len(rid or "")) > state.short and \
            over(state.max_bytes, rtype, rid or ""):
        raise ValueError
    res = ps.schema.resources.get(rtype)
    R = None if res is None else _known(state, res, {} if rattrs is None else rattrs)
    if state.entities is not None:
        found = state.entities.attach(ptype, pid, P, rtype, rid, None if rid is None else R)
        if type(found) is str:
            return _denied(ps, rtype, action, (found,))
        P, R = found[0], R if rid is None else found[1]
    if request["principal"].get("parents"):  # the ancestors of parents it sent (1.2)
        P = attached(state, parents_parts(state, request["principal"], {}, None), ptype, pid,
                     P, rtype, rid, None)[0]
    roles = P.get("roles")
    if state.role_attrs:
        roles = role_names_in(P, roles, state.role_attrs)
    warnings = () if not roles or state.role_names.issuperset(roles) else \
        tuple(unknown_roles(roles, state.role_names, ps.roles_sensitive))
    if res is None:
        return _denied(ps, rtype, action, ("unknown_resource",), warnings)
    if action not in ps.plans.types[rtype].actions:
        return _denied(ps, rtype, action, ("unknown_action",), warnings)
    return pid, P, C, ptype, res, rid, R, action, warnings


def _known(state: Installed, res: EntitySchema, attrs: dict) -> dict:
    """The resource attributes a plan request knows, each checked and converted."""
    if type(attrs) is not dict:
        raise RequestError(f"resource.attrs must be an object, found {kind(attrs)}")
    if not attrs:
        return {}
    explain = Explainer(state.ps.schema, state.max_bytes)
    out = {}
    for name, value in attrs.items():
        spec = res.by_name.get(name)
        where = f"resource.attrs.{name}"
        if spec is None:
            raise RequestError(f"{where} is not declared on resource {res.name}")
        if spec.stored:
            raise RequestError(f"{where} is stored: it comes from the policy set's entity "
                               "data, never from the request")
        problem = explain.value(where, spec.type, value)
        if problem:
            raise RequestError(problem)
        out[name] = _converted(spec.type, value, state.ps.schema.records)
    return out


def _converted(t: str, value, records: dict):
    if t == IP:
        return ip(value)
    if t == TIME:
        return time(value)
    if is_set(t):
        return [_converted(t[4:-1], v, records) for v in value]
    if is_map(t):
        return {k: _converted(map_value(t), v, records) for k, v in value.items()}
    record = records.get(t)
    if record is not None:
        return {k: _converted(record.by_name[k].type, v, records) for k, v in value.items()}
    return value


def _problem(state: Installed, request) -> str:
    """Why a plan request was refused, in the words `check` uses."""
    if type(request) is not dict:
        return f"a plan request must be an object, found {kind(request)}"
    extra = sorted(set(request) - PLAN_KEYS)
    if extra:
        return f"`{extra[0]}` is not part of a plan request; it has principal, action, " \
            "resource (type, and optionally id and the attributes known) and context"
    resource = request.get("resource")
    if type(resource) is not dict or type(resource.get("type")) is not str:
        return "resource: a plan needs the resource type (and optionally an id and attrs)"
    if "id" in resource and (type(resource["id"]) is not str or not resource["id"]):
        return "resource.id, when given, must be a non-empty string"
    stand_in = {**request, "resource": {"type": resource["type"], "id": "x"}}
    problem = Explainer(state.ps.schema, state.max_bytes).request(stand_in)
    return problem if problem != "invalid request" else "invalid plan request"


def _denied(ps, rtype: str, action: str, reasons, warnings=()) -> Plan:
    return make_plan(ALWAYS_DENIED, None, {}, tuple(reasons), ps.version, rtype, action,
                     tuple(warnings))


def _evaluate(state: Installed, pid, P, C, ptype, res, rid, R, action, warnings) -> Plan:
    ps = state.ps
    compiled = ps.planner[res.name]
    denies, allows = compiled.actions[action]
    env = Env(pid, P, C, ptype, res.name, rid, R, action, ps.entities)
    memo: dict = {}  # closure -> its value: a condition several rules repeat is made once
    try:
        held, terms, origins, unknown = [], [], [], False
        for name, fn in denies:
            v = True if fn is None else memo.get(fn, memo)
            if v is memo:
                v = memo[fn] = fn(env)
            if v is True:
                held.append(name)
            elif v is UNKNOWN:  # unknown for every resource: it denies, as check does
                unknown = True
            elif v is not False:
                terms.append(negate(v))
                origins.append((name, v))
        if held or unknown:
            return _denied(ps, res.name, action, held + ["error"] * unknown, warnings)
        options, allowed_by = [], ()
        for name, fn in allows:
            v = True if fn is None else memo.get(fn, memo)
            if v is memo:
                v = memo[fn] = fn(env)
            if v is True:
                options.append(v)
                allowed_by = (name,)
                break  # later allows are never reached
            unknown = unknown or v is UNKNOWN
            if v is not False and v is not UNKNOWN:
                options.append(v)
                origins.append((name, v))
        # a row is selected where this is true: an unknown part is never true (kleene.py)
        residual = conj([*terms, disj(options)])
        if compiled.fallible:
            residual = truthy(residual)
        if residual is False:
            return _denied(ps, res.name, action, ("error",) if unknown and not options else
                           ("default_deny",), warnings)
        visible = _visible(env, compiled, origins, memo)
        if env.guards and residual is not False:  # rows whose references the data holds
            residual = conj([residual, *env.guards])
    except MissingData as exc:  # a known reference the data lacks: check denies so too
        return _denied(ps, res.name, action, (f"missing_data:{exc.path}",), warnings)
    except Exception:  # arithmetic that fails for every resource: check fails closed too
        return _denied(ps, res.name, action, ("error",), warnings)
    if residual is True:  # the reason: the allow that holds for every resource
        return make_plan(ALWAYS_ALLOWED, None, visible, allowed_by, ps.version, res.name,
                         action, tuple(warnings), tuple(origins), compiled.optional)
    return make_plan(CONDITIONAL, residual, visible, (), ps.version, res.name, action,
                     tuple(warnings), tuple(origins), compiled.optional)


def _visible(env: Env, compiled, origins: list, memo: dict) -> dict:
    """field -> True or the residual it is visible under; fields never visible left out."""
    if not compiled.shows:
        return dict.fromkeys(compiled.fields, True)
    held = []
    for name, fn in compiled.shows:
        v = True if fn is None else memo.get(fn, memo)
        if v is memo:
            v = memo[fn] = fn(env)
        if compiled.fallible:  # a field is visible where its rule's condition is true
            v = truthy(v)
        if v is not True and v is not False:
            origins.append((name, v))
        held.append(v)
    found: dict = {}
    for rules, fields in compiled.grants:
        v = disj([held[i] for i in rules]) if len(rules) != 1 else held[rules[0]]
        if v is not False:
            for f in fields:
                found[f] = v
    out = {"id": True}
    for f in compiled.fields[1:]:  # declaration order
        if f in found:
            out[f] = found[f]
    return out
