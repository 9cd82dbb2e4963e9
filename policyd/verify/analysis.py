"""What `policyd verify` proves: rules no request satisfies (dead), allows a deny always
overrides and show/write rules no allowed request meets (shadowed), and whether a new
set gives access an old one does not, or decides anything differently. Every
counterexample is replayed through the compiled engines before it is reported."""

from __future__ import annotations

from dataclasses import dataclass, field

import z3

from ..engine import Engine
from ..engine.models import RequestError
from .decisions import Decision, shapes, supported
from .encode import Shape
from .terms import Map, Unsupported
from .witness import request_of, strings_of

TIMEOUT_MS = 20_000
QUICK_MS = 2_000
LEAN_MS = 2_000  # a leaner counterexample is worth this much more time, no more


class ReplayMismatch(RuntimeError):
    """The engine did not confirm a counterexample: a bug in the model, never output."""


@dataclass
class RuleFindings:
    dead: list[str] = field(default_factory=list)
    shadowed: list[str] = field(default_factory=list)
    unknown: dict[str, str] = field(default_factory=dict)  # rule -> the construct


def _solve(facts, goal, soft=()):
    """A model, None when unsatisfiable; Unsupported when the solver cannot say. `soft`:
    what a counterexample should rather be (a set without a member it does not need),
    sought within LEAN_MS; past that, the first model found is the counterexample."""
    solver = z3.Solver()
    solver.set("timeout", TIMEOUT_MS)
    solver.add(*facts, goal)
    found = solver.check()
    if found == z3.unsat:
        return None
    if found != z3.sat:
        raise Unsupported(f"the solver gave up ({solver.reason_unknown()})")
    if not soft:
        return solver.model()
    lean = z3.Optimize()
    lean.set("timeout", LEAN_MS)
    lean.add(*facts, goal)
    for wish in soft:
        lean.add_soft(wish)
    return lean.model() if lean.check() == z3.sat else solver.model()


def _proved_quickly(facts, claim) -> bool:
    """Whether `claim` holds on every request, proved within QUICK_MS (False: not known
    yet; the caller asks the smaller questions one at a time)."""
    solver = z3.Solver()
    solver.set("timeout", QUICK_MS)
    solver.add(*facts, z3.Not(claim))
    return solver.check() == z3.unsat


def _lean(shape, candidates) -> list:
    """Soft wishes for a minimal counterexample: no set member, map key or map set member
    it does not need (over the policy's strings and the request's own string values)."""
    strings = [z3.StringVal(c) for c in sorted(candidates)] + [shape.pid, shape.rid] + \
        [term for term, spec in shape.vars.values() if spec.type == "string"]
    wishes = []
    for term, spec in shape.vars.values():
        if spec.type == "set<string>":
            wishes += [z3.Not(z3.IsMember(s, term)) for s in strings]
        elif isinstance(term, Map):
            for key in strings:
                wishes.append(z3.Not(z3.Select(term.keys, key)))
                if term.type == "set<string>":
                    wishes += [z3.Not(z3.IsMember(s, z3.Select(term.values, key)))
                               for s in strings]
    return wishes


def _decision(ps, pt, rt, action):
    supported(ps, pt, rt)
    shape = Shape(ps.schema, pt, rt, action)
    return shape, Decision(ps, shape)


def rule_findings(ps) -> RuleFindings:
    alive: set[str] = set()
    deciding: set[str] = set()
    unknown: dict[str, str] = {}
    every = {r.name: r for tp in ps.plans.types.values() for r in tp.every
             if r.effect in ("allow", "deny", "show", "write")}
    for pt, rt, action in shapes(ps):
        try:
            shape, d = _decision(ps, pt, rt, action)
            denied = z3.Or(*[c for _, c in d.denies])
            for name, cond in d.denies + d.allows:
                if name not in alive and _solve(shape.facts, cond) is not None:
                    alive.add(name)
            for name, cond in d.allows:
                if name not in deciding and _solve(shape.facts,
                                                   z3.And(cond, z3.Not(denied))) is not None:
                    deciding.add(name)
            for r in ps.plans.types[rt].every:
                if r.effect in ("show", "write") and r.name not in deciding:
                    cond = d.cond(r)
                    if r.name not in alive and _solve(shape.facts, cond) is not None:
                        alive.add(r.name)
                    if _solve(shape.facts, z3.And(cond, d.allowed)) is not None:
                        deciding.add(r.name)
        except Unsupported as exc:
            for r in ps.plans.types[rt].every:
                unknown.setdefault(r.name, str(exc))
    out = RuleFindings()
    for name, rule in every.items():
        found = out.dead if name not in alive else \
            out.shadowed if rule.effect != "deny" and name not in deciding else None
        if found is None:
            continue
        if name in unknown:  # not proved on some request shape: no verdict
            out.unknown[name] = unknown[name]
        else:
            found.append(name)
    return out


def _check(ps, request: dict, data: list):
    """The engine's decision, with the counterexample's entities laid over the set's own
    entity data (each converted as the data loader converts it)."""
    extra = {}
    for entry in data:
        validator = ps.validators.get(f"data:{entry['kind']}:{entry['type']}")
        if validator is None:
            return None  # the set does not store this type: the request is not its own
        extra[(entry["kind"], entry["type"], entry["id"])] = validator(entry["attrs"],
                                                                       {}.setdefault)
    try:
        return Engine(ps.with_entities(extra) if extra else ps).check(request)
    except RequestError:  # a request the old set cannot even read: it decides nothing
        return None


def _fresh(shape, *sets) -> None:
    """A counterexample's stored entities are new to every set's data (laid over an
    entity already there, its other stored attributes would stay)."""
    for entity, spec, term in (("principal", shape.specs["principal"], shape.pid),
                               ("resource", shape.specs["resource"], shape.rid)):
        if spec.whole or spec.stored:
            for ps in sets:
                table = getattr(ps.entities, entity + "s").get(spec.name)
                for taken in (table.rows if table is not None else ()):
                    shape.facts.append(term != z3.StringVal(taken))


def no_new_access(old, new, rtype=None, actions=None) -> dict | None:
    """A request NEW allows and OLD denies (replayed), or None when there is none."""
    candidates = strings_of(old) | strings_of(new)
    for pt, rt, action in shapes(new, rtype, actions):
        shape, dn = _decision(new, pt, rt, action)
        _same_shape(new, old, pt, rt)
        _fresh(shape, old, new)
        if action in old.schema.resources.get(rt, _NONE).actions and pt in old.schema.principals:
            do = Decision(old, shape)
            goal = z3.And(dn.allowed, z3.Not(do.allowed))
        else:
            goal = dn.allowed
        model = _solve(shape.facts, goal, _lean(shape, candidates))
        if model is not None:
            request, data = request_of(model, shape, candidates)
            a, b = _check(old, request, data), _check(new, request, data)
            if not (b is not None and b.allowed and (a is None or not a.allowed)):
                raise ReplayMismatch(f"not confirmed by the engine: {request}")
            return {"request": request, "data": data, "old": _summary(a),
                    "new": _summary(b)}
    return None


def equivalent(old, new, rtype=None, actions=None) -> dict | None:
    """A request the two sets decide differently (allowed, visible or writable fields),
    replayed; None when they decide every request alike."""
    candidates = strings_of(old) | strings_of(new)
    seen = set()
    for ps, other in ((new, old), (old, new)):
        for pt, rt, action in shapes(ps, rtype, actions):
            if (pt, rt, action) in seen:
                continue
            seen.add((pt, rt, action))
            shape, d1 = _decision(ps, pt, rt, action)
            _same_shape(ps, other, pt, rt)
            _fresh(shape, old, new)
            both = action in other.schema.resources.get(rt, _NONE).actions and \
                pt in other.schema.principals
            d2 = Decision(other, shape) if both else None
            differences = list(_differences(d1, d2))
            if _proved_quickly(shape.facts, z3.Not(z3.Or(*[g for g, _ in differences]))):
                continue  # one proof for the whole shape: the usual case
            for goal, writes in differences:
                model = _solve(shape.facts, goal, _lean(shape, candidates))
                if model is None:
                    continue
                request, data = request_of(model, shape, candidates)
                if writes:
                    request["write_fields"] = writes
                a, b = (_check(old, request, data), _check(new, request, data))
                if _summary(a) == _summary(b):
                    raise ReplayMismatch(f"not confirmed by the engine: {request}")
                return {"request": request, "data": data, "old": _summary(a),
                        "new": _summary(b)}
    return None


def _differences(d1, d2):
    if d2 is None:
        yield d1.allowed, None
        return
    yield z3.Xor(d1.allowed, d2.allowed), None
    for f in sorted(set(d1.visible) | set(d2.visible)):
        v1, v2 = d1.visible.get(f, z3.BoolVal(False)), d2.visible.get(f, z3.BoolVal(False))
        yield z3.Xor(v1, v2), None
    for f in sorted(set(d1.writable) | set(d2.writable)):
        w1 = d1.writable.get(f, z3.BoolVal(False))
        w2 = d2.writable.get(f, z3.BoolVal(False))
        yield z3.Xor(w1, w2), [f]


class _NoResource:
    actions = ()


_NONE = _NoResource()


def _same_shape(a, b, pt: str, rt: str) -> None:
    """Both sets must read the compared request alike: the same attributes of the
    principal type, the resource type and the context where both declare them."""
    for get in (lambda s: s.principals.get(pt), lambda s: s.resources.get(rt),
                lambda s: s.context):
        x, y = get(a.schema), get(b.schema)
        if x is not None and y is not None and x.attrs != y.attrs:
            raise Unsupported(f"the two sets declare {x.name} differently")
    if pt in b.schema.principals and rt in b.schema.resources:
        supported(b, pt, rt)


def _summary(d) -> dict | None:
    if d is None:
        return None
    return {"allowed": d.allowed, "visible_fields": sorted(d.visible_fields),
            "reasons": list(d.reasons)}
