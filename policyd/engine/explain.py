"""Full explanations: for one request, every rule that applies to its action (and the
show and write rules), whether it held, and for a condition that did not hold the first
part of it that was false, with the values it compared (sensitive ones masked).

Only run when asked: the checked conditions are evaluated through the planner's
closures with every attribute known, never the generated hot path.
"""

from __future__ import annotations

from ..language.checked import ActionName, Const, Op, Read
from ..values import format_ip, format_time
from . import explain_rel as relations
from .partial import Compiler, Env
from .residual import UNKNOWN
from .sensitive import MASK, masked_value

_INFIX = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">=", "add": "+",
          "sub": "-", "mul": "*", "in": "in", "any_of": "contains_any",
          "all_of": "contains_all", "set_eq": "==", "set_ne": "!=", "ip_in": "in",
          "ip_in_any": "in"}
_CALLS = ("hour", "weekday", "lower", "len", "set_len")


class Explainer:
    """The conditions of one resource type, printed and evaluated for explanations."""

    def __init__(self, ps, rtype: str):
        self.ps, self.rtype = ps, rtype
        self.schema = ps.schema
        self.res = ps.schema.resources[rtype]
        self.compiler = Compiler(self.res, ps.schema.records, {})  # no keyed shortcuts
        self.role_of = ps.plans.role_of or {}

    # ---- text -------------------------------------------------------------------

    def text(self, ir) -> str:
        if isinstance(ir, Const):
            if self.schema.typed(ir.type) is not None or \
                    ir.type.startswith("set<") and self.schema.typed(ir.type[4:-1]):
                return relations.literal(ir.value, ir.type)
            return _literal(ir.value, ir.type)
        if isinstance(ir, Read):
            return ".".join((ir.entity, *ir.path))
        if isinstance(ir, ActionName):
            return "action"
        a = [self.text(x) for x in ir.args]
        op = ir.op
        if op in relations.OPS:
            return relations.text(ir, a)
        if op in ("and", "or"):
            return f" {op} ".join(f"({x})" if isinstance(y, Op) and y.op in ("and", "or")
                                  else x for x, y in zip(a, ir.args, strict=True))
        if op == "not":
            return f"not ({a[0]})"
        if op == "neg":
            return f"-{a[0]}"
        if op in _INFIX:
            return f"{a[0]} {_INFIX[op]} {a[1]}"
        if op in _CALLS:
            return f"{'len' if op == 'set_len' else op}({a[0]})"
        if op == "like":
            return f"{a[0]} like {_literal('*'.join(ir.data), 'string')}"
        if op == "has":
            return f"{ir.data[0]} has {ir.data[1]}"
        if op == "has_attr":
            return f"{a[0]} has {ir.data}"
        if op == "is":
            role = self.role_of.get(ir.data, "/".join(sorted(ir.data)))
            return f"{a[0] if a else 'principal'} is {role}"
        if op in ("index", "index_or_empty"):
            return f"{a[0]}[{a[1]}]"
        if op == "has_key":
            return f"{a[0]} in {a[1]}"
        if op == "attr":
            return f"{a[0]}.{ir.data}"
        if op == "owns":
            return "principal owns resource"
        return f"{op}({', '.join(a)})"

    # ---- values -----------------------------------------------------------------

    def value(self, ir, env: Env):
        return self.compiler.fn(ir)(env)

    def shown(self, ir, env: Env):
        """A leaf operand's value for people: masked when sensitive, readable otherwise."""
        if isinstance(ir, Read) and self._sensitive(ir):
            return MASK
        try:
            value = self.value(ir, env)
        except (KeyError, TypeError):
            return None  # an optional attribute that is absent
        t = getattr(ir, "type", "")
        return _plain(masked_value(value, t, self.schema.records), t)

    def _sensitive(self, ir: Read) -> bool:
        if ir.entity == "principal":
            specs = [p.by_name.get(ir.path[0]) for p in self.schema.principals.values()]
        elif ir.entity == "context":
            specs = [self.schema.context.by_name.get(ir.path[0])] if self.schema.context else []
        else:
            specs = [self.res.by_name.get(ir.path[0])]
        spec = next((s for s in specs if s is not None), None)
        for step in ir.path[1:]:
            if spec is None or spec.sensitive:
                break
            record = self.schema.records.get(spec.type)
            spec = record.by_name.get(step) if record else None
        return spec is not None and spec.sensitive

    def _roles_sensitive(self) -> bool:
        return any(p.by_name["roles"].sensitive for p in self.schema.principals.values()
                   if "roles" in p.by_name)

    def leaves(self, ir, env: Env, out: dict) -> dict:
        if isinstance(ir, Read | ActionName):
            out[self.text(ir)] = self.shown(ir, env) if isinstance(ir, Read) else env.action
        elif isinstance(ir, Op):
            if ir.op == "owns":
                out["principal.id"] = env.pid
                out[f"resource.{ir.data[0]}"] = self.shown(
                    Read("resource", (ir.data[0],), self.res.by_name[ir.data[0]].type), env)
            elif ir.op == "is" and not ir.args:
                out["principal.roles"] = MASK if self._roles_sensitive() else \
                    sorted(env.P.get("roles", ()))
            for arg in ir.args:
                self.leaves(arg, env, out)
        return out

    # ---- why a condition did not hold ----------------------------------------------

    def why_not(self, ir, env: Env) -> dict:
        """The first part of `ir` that was false, with the values it read."""
        if isinstance(ir, Op) and ir.op == "and":
            for arg in ir.args:
                if self.value(arg, env) is not True:
                    return self.why_not(arg, env)
        if isinstance(ir, Op) and ir.op == "or":
            return {"condition": self.text(ir), "none_held": [self.why_not(a, env)
                                                              for a in ir.args]}
        return {"condition": self.text(ir), "values": self.leaves(ir, env, {})}

    def rules(self, env: Env, action: str) -> list[dict]:
        out = []
        for rule in self.ps.plans.types[self.rtype].every:
            if rule.effect in ("allow", "deny", "limit") and action not in rule.actions:
                continue
            entry: dict = {"rule": rule.name, "effect": rule.effect}
            if rule.fields:
                entry["fields"] = list(rule.fields)
            if rule.cond is None:
                entry.update(held=True, condition="always")
            else:
                try:
                    value = self.value(rule.cond, env)
                except Exception as exc:  # the decision failed closed on the same
                    entry.update(held=False, condition=self.text(rule.cond),
                                 error=type(exc).__name__)
                    out.append(entry)
                    continue
                # unknown (arithmetic with no finite result): a deny or limit applies, an
                # allow, show or write does not (language/kleene.py)
                unknown = value is UNKNOWN
                held = value is True or unknown and rule.effect in ("deny", "limit")
                entry.update(held=held, condition=self.text(rule.cond))
                if value is True:
                    via = relations.chains(self, rule.cond, env)
                    if via:
                        entry["via"] = via
                if unknown:
                    entry["unknown"] = True
                elif not held:
                    entry["because"] = self.why_not(rule.cond, env)
            out.append(entry)
        return out


def _literal(value, t: str) -> str:
    import json
    return json.dumps(_plain(value, t))


def _plain(value, t: str):
    if t == "ip":
        return format_ip(value)
    if t == "time":
        return format_time(value)
    if isinstance(value, list | tuple | set | frozenset) and t.startswith("set<"):
        inner = t[4:-1]
        return sorted((_plain(v, inner) for v in value), key=str)
    return value


def explain_rules(ps, pid, P, rtype, rid, R, C, ptype, action) -> list[dict]:
    """Every rule of `rtype` that applies to `action`, held or not, and why not."""
    if rtype not in ps.schema.resources:
        return []
    env = Env(pid, P, C, ptype, rtype, rid, R, action, ps.entities)
    return Explainer(ps, rtype).rules(env, action)


def render(explanation: dict) -> str:
    """An explanation as text for people."""
    d = explanation["decision"]
    verdict = "ALLOW" if d["allowed"] else "DENY"
    lines = [f"{verdict} ({', '.join(d['reasons'])})"]
    if d["allowed"]:
        lines.append(f"  visible: {', '.join(d['visible_fields'])}")
    for r in explanation["rules"]:
        mark = "held    " if r["held"] else "not held"
        lines.append(f"  {mark} {r['effect']:<5} {r['rule']}: {r['condition']}")
        lines.extend(f"      via: {chain}" for chain in r.get("via", ()))
        if "because" in r:
            lines.extend(_because(r["because"], "      "))
        if "error" in r:
            lines.append(f"      failed: {r['error']}")
        if r.get("unknown"):
            lines.append("      unknown: its arithmetic gave no finite number")
    return "\n".join(lines)


def _because(why: dict, pad: str) -> list[str]:
    if "none_held" in why:
        out = [f"{pad}none of: {why['condition']}"]
        for part in why["none_held"]:
            out.extend(_because(part, pad + "  "))
        return out
    values = ", ".join(f"{k} = {v!r}" if not isinstance(v, str) or v == MASK
                       else f"{k} = {v!r}" for k, v in why["values"].items())
    return [f"{pad}false: {why['condition']}" + (f"  ({values})" if values else "")]
