"""A deliberately simple reference evaluator: walks the parser's AST directly.

It shares nothing with codegen or the runtime (ips are `ipaddress` networks,
times are datetimes, globs are regexes, role closure is recomputed here), so
the differential tests compare two independent readings of LANGUAGE.md.
Test-only; never used in production. Valid requests only.

Numbers are doubles; arithmetic with no finite result is unknown (None), and
conditions combine unknowns by Kleene's logic (docs/language.md, "Numbers").
"""

from __future__ import annotations

import ipaddress
import math
import re
from datetime import UTC, datetime

from policyd.language import nodes as n


def _ip(text: str):
    net = ipaddress.ip_network(text, strict=True)
    if net.version == 6 and net.network_address.ipv4_mapped is not None and net.prefixlen >= 96:
        net = ipaddress.ip_network(f"{net.network_address.ipv4_mapped}/{net.prefixlen - 96}")
    return net


def _time(text: str) -> datetime:
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    return datetime.fromisoformat(text)


class Reference:
    def __init__(self, files: list[n.PolicyFile], now: datetime | None = None,
                 data: list[dict] | None = None):
        decls = [d for f in files for d in f.decls]
        self.records = {d.name.value: d for d in decls if isinstance(d, n.RecordDecl)}
        self.data = {(e["kind"], e["type"], e["id"]): e["attrs"] for e in data or ()}
        self.principals = {d.name.value: d for d in decls if isinstance(d, n.PrincipalDecl)}
        self.resources = {d.name.value: d for d in decls if isinstance(d, n.ResourceDecl)}
        ctx = [d for d in decls if isinstance(d, n.ContextDecl)]
        self.context = ctx[0] if ctx else None
        self.parents = {d.name.value: [p.value for p in d.parents]
                        for d in decls if isinstance(d, n.RoleDecl)}
        self.constants = {d.name.value: d.value for d in decls if isinstance(d, n.ConstDecl)}
        self.policies = [d for d in decls if isinstance(d, n.PolicyDecl)]
        self.now = now or datetime(2026, 11, 22, 12, 0, tzinfo=UTC)

    # ---- values -------------------------------------------------------------------

    def _types(self, decl) -> dict[str, str]:
        return {a.name.value: a.type.text() for a in decl.attrs} if decl else {}

    def _convert(self, decl, attrs: dict) -> dict:
        types = self._types(decl)
        return {key: self._value(types[key], value) for key, value in attrs.items()}

    def _value(self, t: str, value):
        if t == "ip":
            return _ip(value)
        if t == "time":
            return _time(value)
        if t.startswith("set<"):
            return set(value)
        if t.startswith("map<"):
            inner = t[len("map<string, "):-1]
            return {k: self._value(inner, v) for k, v in value.items()}
        if t in self.records:
            return self._convert(self.records[t], value)
        return value

    def _stored(self, kind: str, decl, eid: str, attrs: dict):
        """Attributes with the entity's stored ones, or the name of a missing required one."""
        stored = [a for a in decl.attrs if a.stored]
        if not stored:
            return attrs
        found = self.data.get((kind, decl.name.value, eid), {})
        for a in stored:
            if not a.optional and a.name.value not in found:
                return a.name.value
        return {**attrs, **found}

    def roles_of(self, roles) -> set[str]:
        """Every role a principal holds, with everything those roles extend."""
        held, stack = set(), [r for r in roles if r in self.parents]
        while stack:
            r = stack.pop()
            if r not in held:
                held.add(r)
                stack.extend(self.parents[r])
        return held

    def eval(self, e: n.Expr, env: dict):
        if isinstance(e, n.Literal):
            return e.value
        if isinstance(e, n.SetLit):
            return {self.eval(i, env) for i in e.items}
        if isinstance(e, n.Root):
            return env["action"]
        if isinstance(e, n.ConstRef):
            return self.eval(self.constants[e.name.value], env)
        if isinstance(e, n.Attr):
            obj = env[e.obj.name] if isinstance(e.obj, n.Root) else self.eval(e.obj, env)
            return obj[e.name.value]
        if isinstance(e, n.Index):
            return self.eval(e.obj, env).get(self.eval(e.key, env), set())
        if isinstance(e, n.Call):
            return self._call(e, env)
        if isinstance(e, n.Unary):
            v = self.eval(e.operand, env)
            if v is None:
                return None
            return (not v) if e.op == "not" else -v
        if isinstance(e, n.Has):
            obj = env[e.obj.name] if isinstance(e.obj, n.Root) else self.eval(e.obj, env)
            return e.name.value in obj
        if isinstance(e, n.Is):
            held = env["principal"].get("roles", ()) if isinstance(e.obj, n.Root) \
                else self.eval(e.obj, env)
            return e.role.value in self.roles_of(held)
        if isinstance(e, n.Owns):
            owner = self.resources[env["resource"]["type"]].owner.value
            value = env["resource"][owner]
            pid = env["principal"]["id"]
            return pid in value if isinstance(value, set) else value == pid
        return self._binary(e, env)

    def _call(self, e: n.Call, env):
        name = e.func.value
        if name == "ip":
            return _ip(e.args[0].value)
        if name == "time":
            return _time(e.args[0].value)
        v = self.eval(e.args[0], env)
        if name == "hour":
            return v.astimezone(UTC).hour
        if name == "weekday":
            return v.astimezone(UTC).isoweekday()
        if name == "len":
            return len(v)
        return v.lower()

    def _binary(self, e: n.Binary, env):
        if e.op in ("and", "or"):  # Kleene: the absorbing value wins, then unknown
            a = self.eval(e.left, env)
            absorbing = e.op == "or"
            if a is absorbing:
                return a
            b = self.eval(e.right, env)
            if b is absorbing:
                return b
            return None if a is None or b is None else not absorbing
        a, b = self.eval(e.left, env), self.eval(e.right, env)
        if a is None or b is None:
            return None
        if e.op in "+-*":
            result = {"+": float(a) + b, "-": float(a) - b, "*": float(a) * b}[e.op]
            return result if math.isfinite(result) else None
        if e.op == "like":
            return re.fullmatch(".*".join(map(re.escape, b.split("*"))), a, re.S) is not None
        if e.op in ("in", "contains"):
            x, s = (a, b) if e.op == "in" else (b, a)
            if isinstance(x, ipaddress.IPv4Network | ipaddress.IPv6Network):
                ranges = s if isinstance(s, set) else {s}
                return any(x.version == r.version and x.subnet_of(r) for r in ranges)
            return x in s
        if e.op == "contains_any":
            return bool(a & b)
        if e.op == "contains_all":
            return a >= b
        ops = {"==": lambda: a == b, "!=": lambda: a != b, "<": lambda: a < b,
               "<=": lambda: a <= b, ">": lambda: a > b, ">=": lambda: a >= b}
        return ops[e.op]()

    # ---- decisions ---------------------------------------------------------------------

    def rules(self, rtype: str):
        for p in self.policies:
            if p.resource.value != rtype:
                continue
            for i, r in enumerate(p.rules, 1):
                name = f"{p.name.value}.{r.label.value}" if r.label else f"{p.name.value}#{i}"
                yield name, r

    def value(self, r: n.Rule, env):
        """A rule's condition: True, False or None (unknown), `when W unless U` being
        `W and not U`."""
        w = True if r.when is None else self.eval(r.when, env)
        u = False if r.unless is None else self.eval(r.unless, env)
        not_u = None if u is None else not u
        if w is False or not_u is False:
            return False
        return None if w is None or not_u is None else True

    def holds(self, r: n.Rule, env) -> bool:
        """An allow, show or write holds when its condition is true."""
        return self.value(r, env) is True

    def decide(self, request: dict, explain: bool = False) -> dict:
        p, res = request["principal"], request["resource"]
        action = request["action"]
        context = dict(request.get("context", {}))
        ctypes = self._types(self.context)
        if ctypes.get("time") == "time" and "time" not in context:
            context["time"] = self.now.isoformat()
        pdecl = self.principals[p["type"]]
        pattrs = self._stored("principal", pdecl, p["id"], p.get("attrs", {}))
        if isinstance(pattrs, str):
            return self._out(False, [f"missing_data:principal.{pattrs}"])
        principal = self._convert(pdecl, pattrs)
        principal.update(id=p["id"], type=p["type"])
        env = {"principal": principal, "action": action,
               "context": self._convert(self.context, context)}
        decl = self.resources.get(res["type"])
        if decl is None:
            return self._out(False, ["unknown_resource"])
        rattrs = self._stored("resource", decl, res["id"], res.get("attrs", {}))
        if isinstance(rattrs, str):
            return self._out(False, [f"missing_data:resource.{rattrs}"])
        if action not in [a.value for a in decl.actions]:
            return self._out(False, ["unknown_action"])
        resource = self._convert(decl, rattrs)
        resource.update(id=res["id"], type=res["type"])
        env["resource"] = resource
        fields = ["id"] + [a.name.value for a in decl.attrs]

        def covers(r):
            return r.targets is None or action in [t.value for t in r.targets]

        rules = list(self.rules(res["type"]))
        denying = [(name, self.value(r, env)) for name, r in rules
                   if r.effect == "deny" and covers(r)]
        denies = [name for name, v in denying if v is True]
        if denies or any(v is None for _, v in denying):  # an unknown deny denies: error
            return self._out(False, denies + ["error"] * any(v is None for _, v in denying))
        allowing = [(name, self.value(r, env)) for name, r in rules
                    if r.effect == "allow" and covers(r)]
        allows = [name for name, v in allowing if v is True]
        if not allows:
            unknown = any(v is None for _, v in allowing)
            return self._out(False, ["error" if unknown else "default_deny"])
        granted, shown, held = set(), {"id"}, {"show": [], "write": []}
        for name, r in rules:
            if r.effect in ("show", "write") and self.holds(r, env):
                targets = set(fields) if r.targets is None else {t.value for t in r.targets}
                (shown if r.effect == "show" else granted).update(targets)
                held[r.effect].append(name)
        if not any(r.effect == "show" for _, r in rules):
            shown = set(fields)
        wanted = list(dict.fromkeys(request.get("write_fields") or []))
        unknown = [f for f in wanted if f not in fields and f != "type"]
        refused = [f for f in wanted if f not in unknown and (f not in granted or f == "id")]
        if unknown or refused:
            reasons = ([f"unknown_field:{','.join(unknown)}"] if unknown else []) + \
                      ([f"not_writable:{','.join(refused)}"] if refused else [])
            return self._out(False, reasons)
        reasons = allows + held["show"] + held["write"] if explain else allows[:1]
        return self._out(True, reasons, [f for f in fields if f in shown])

    @staticmethod
    def _out(allowed, reasons, visible=()):
        return {"allowed": allowed, "reasons": list(reasons), "visible_fields": list(visible)}
