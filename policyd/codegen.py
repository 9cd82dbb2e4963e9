"""CheckedSet to Python source.

Generated code is plain functions over dicts. Every policy value is written with
`repr()`; every Python identifier is generated here (policy names appear only
inside string literals and sanitised comments); the only global it may use is
`_rt`, the runtime module, and its builtins are runtime.BUILTINS.
"""

from __future__ import annotations

from dataclasses import dataclass

from .checked import (
    BOOL,
    IP,
    NUMBER,
    STRING,
    TIME,
    ActionName,
    CheckedRule,
    CheckedSet,
    Const,
    EntitySchema,
    Op,
    Read,
    is_set,
)
from .codewriter import CodeWriter, safe_comment

ARGS = "pid, P, rid, R, C, pt"
_INFIX = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">=",
          "add": "+", "sub": "-", "mul": "*"}
_CALLS = {"ip_in": "_rt.ip_in", "ip_in_any": "_rt.ip_in_any", "set_eq": "_rt.set_eq",
          "hour": "_rt.hour", "weekday": "_rt.weekday", "lower": "_rt.lower",
          "len": "_rt.length", "set_len": "_rt.set_len"}
_ENTITY = {"principal": "P", "resource": "R", "context": "C"}


@dataclass(frozen=True)
class Generated:
    source: str
    linemap: dict[int, tuple[str, int]]
    validators: dict[str, str]  # "principal:User" / "resource:Order" / "context" -> function
    deciders: dict[tuple[str, str], str]  # (type, action) -> function
    visibility: dict[str, str]  # type -> function returning the mask of visible fields
    writable: dict[str, str]  # type -> function returning the mask of writable fields
    conditions: dict[str, str]  # full rule name -> per-rule condition function


class _Gen:
    def __init__(self, cs: CheckedSet, name: str):
        self.cs, self.name = cs, name
        self.w = CodeWriter()
        self.consts: dict[object, str] = {}
        self.const_lines: list[str] = []
        self.roles_required = bool(cs.principals) and all(
            "roles" in p.by_name and not p.by_name["roles"].optional
            for p in cs.principals.values())

    # ---- expressions -----------------------------------------------------------

    def hoist(self, value: frozenset) -> str:
        key = (type(value), value)
        if key not in self.consts:
            name = f"K{len(self.consts)}"
            items = tuple(sorted(value, key=repr))
            self.consts[key] = name
            self.const_lines.append(f"{name} = _rt.fs({items!r})")
        return self.consts[key]

    def expr(self, ir, action: str | None) -> str:
        if isinstance(ir, Const):
            return self.hoist(ir.value) if isinstance(ir.value, frozenset) else repr(ir.value)
        if isinstance(ir, Read):
            if ir.attr == "id" and ir.entity != "context":
                return "pid" if ir.entity == "principal" else "rid"
            if ir.attr == "type" and ir.entity != "context":
                return "pt" if ir.entity == "principal" else repr(self.resource.name)
            return f"{_ENTITY[ir.entity]}[{ir.attr!r}]"
        if isinstance(ir, ActionName):
            return repr(action) if action is not None else "act"
        return self.op(ir, action)

    def op(self, ir: Op, action: str | None) -> str:
        a = [self.expr(x, action) for x in ir.args]
        op = ir.op
        if op in ("and", "or"):
            return f"({a[0]} {op} {a[1]})"
        if op == "not":
            return f"(not {a[0]})"
        if op == "neg":
            return f"(-{a[0]})"
        if op in _INFIX:
            return f"({a[0]} {_INFIX[op]} {a[1]})"
        if op == "set_ne":
            return f"(not _rt.set_eq({a[0]}, {a[1]}))"
        if op in _CALLS:
            return f"{_CALLS[op]}({', '.join(a)})"
        if op == "in":
            return f"({a[0]} in {a[1]})"
        if op == "any_of":
            const = self._const_side(ir)
            return f"(not {a[const]}.isdisjoint({a[1 - const]}))" if const is not None \
                else f"_rt.any_of({a[0]}, {a[1]})"
        if op == "all_of":
            return f"{a[0]}.issuperset({a[1]})" if isinstance(ir.args[0], Const) \
                else f"_rt.all_of({a[0]}, {a[1]})"
        if op == "like":
            return f"_rt.like({a[0]}, {ir.data!r})"
        if op == "has":
            entity, attr = ir.data
            return f"({attr!r} in {_ENTITY[entity]})"
        if op == "is":
            roles = "P['roles']" if self.roles_required else "P.get('roles', ())"
            return f"(not {self.hoist(ir.data)}.isdisjoint({roles}))"
        if op == "owns":
            attr, is_set_owner = ir.data
            return f"(pid in R[{attr!r}])" if is_set_owner else f"(R[{attr!r}] == pid)"
        raise ValueError(f"no code for operator {op!r}")  # the checker produces no such IR

    @staticmethod
    def _const_side(ir: Op) -> int | None:
        for i, arg in enumerate(ir.args):
            if isinstance(arg, Const):
                return i
        return None

    def cond(self, rule: CheckedRule, action: str | None) -> str:
        return "True" if rule.cond is None else self.expr(rule.cond, action)

    # ---- validators --------------------------------------------------------------

    def validator(self, fn: str, schema: EntitySchema) -> None:
        converts = any(a.type in (IP, TIME) for a in schema.attrs)
        supplies_time = schema.kind == "context" and any(
            a.name == "time" and a.type == TIME for a in schema.attrs)
        self.w.comment(f"{schema.kind} {schema.name}: exact attribute types, nothing undeclared")
        with self.w.origin(schema.file, schema.line):
            self.w.line(f"def {fn}(a, now):")
            with self.w.indent():
                self.w.line("if type(a) is not dict: raise _rt.Invalid")
                self.w.line("o = dict(a)" if converts or supplies_time else "o = a")
                if supplies_time:
                    self.w.line("if 'time' not in a: o['time'] = now()")
                required = 0
                for spec in schema.attrs:
                    supplied = supplies_time and spec.name == "time"
                    if spec.optional or supplied:
                        self.w.line(f"if {spec.name!r} in a:")
                        with self.w.indent():
                            self._check_value(spec)
                    else:
                        required += 1
                        self._check_value(spec)
                optional = [s.name for s in schema.attrs if s.optional
                            or (supplies_time and s.name == "time")]
                counted = " + ".join([str(required)] + [f"({n!r} in a)" for n in optional])
                self.w.line(f"if len(a) != {counted}: raise _rt.Invalid")
                self.w.line("return o")
        self.w.line()

    def _check_value(self, spec) -> None:
        key = repr(spec.name)
        self.w.line(f"v = a[{key}]")
        t = spec.type
        if t == STRING:
            self.w.line("if type(v) is not str: raise _rt.Invalid")
        elif t == BOOL:
            self.w.line("if type(v) is not bool: raise _rt.Invalid")
        elif t == NUMBER:
            self.w.line("if not _rt.is_number(v): raise _rt.Invalid")
        elif t in (IP, TIME):
            self.w.line(f"o[{key}] = _rt.{t}(v)")
        elif is_set(t):
            self.w.line("if type(v) not in _rt.SEQUENCES: raise _rt.Invalid")
            check = "type(x) is not str" if t == "set<string>" else "not _rt.is_number(x)"
            self.w.line("for x in v:")
            with self.w.indent():
                self.w.line(f"if {check}: raise _rt.Invalid")

    # ---- rules -----------------------------------------------------------------

    def decider(self, fn: str, res: EntitySchema, action: str) -> None:
        """Denies (all that hold), else the first allow that holds, else default deny."""
        rules = self.cs.rules.get(res.name, ())
        denies = [r for r in rules if r.effect == "deny" and action in r.actions]
        allows = [r for r in rules if r.effect == "allow" and action in r.actions]
        self.w.comment(f"{res.name}.{action}: the denies that held (tuple), else the first allow "
                       "(str), else None")
        self.w.line(f"def {fn}({ARGS}):")
        with self.w.indent():
            self.w.line("d = None")
            for i, r in enumerate(denies):
                with self.w.origin(r.file, r.line):
                    self.w.comment(f"{safe_comment(r.file)}:{r.line} {r.name}")
                    self.w.line(f"if {self.cond(r, action)}:")
                    with self.w.indent():
                        self.w.line(f"d = ({r.name!r},)" if i == 0 else
                                    f"d = ({r.name!r},) if d is None else d + ({r.name!r},)")
            self.w.line("if d is not None: return d")
            for r in allows:
                with self.w.origin(r.file, r.line):
                    self.w.comment(f"{safe_comment(r.file)}:{r.line} {r.name}")
                    self.w.line(f"if {self.cond(r, action)}: return {r.name!r}")
            self.w.line("return None")
        self.w.line()

    def mask_function(self, fn: str, res: EntitySchema, effect: str) -> None:
        """Bit i set: field i of `id` + the declared attributes is granted by some rule."""
        fields = ("id",) + res.fields
        self.w.comment(f"{res.name}: fields granted by `{effect}` rules, as a bit mask")
        self.w.line(f"def {fn}({ARGS}, act):")
        with self.w.indent():
            if effect == "show" and not any(r.effect == "show"
                                            for r in self.cs.rules.get(res.name, ())):
                self.w.line(f"return {(1 << len(fields)) - 1}  # no show rule: every field")
                self.w.line()
                return
            self.w.line("m = 0")
            for r in self.cs.rules.get(res.name, ()):
                if r.effect != effect:
                    continue
                bits = sum(1 << fields.index(f) for f in r.fields)
                with self.w.origin(r.file, r.line):
                    self.w.comment(f"{safe_comment(r.file)}:{r.line} {r.name}")
                    self.w.line(f"if {self.cond(r, None)}: m |= {bits}")
            self.w.line("return m")
        self.w.line()

    def condition(self, fn: str, rule: CheckedRule) -> None:
        with self.w.origin(rule.file, rule.line):
            self.w.comment(f"{safe_comment(rule.file)}:{rule.line} {rule.name}")
            self.w.line(f"def {fn}({ARGS}, act): return {self.cond(rule, None)}")

    # ---- the module ----------------------------------------------------------------

    def run(self) -> Generated:
        validators, deciders, visibility, writable, conditions = {}, {}, {}, {}, {}
        for i, p in enumerate(self.cs.principals.values()):
            validators[f"principal:{p.name}"] = f"v_p{i}"
            self.validator(f"v_p{i}", p)
        if self.cs.context is not None:
            validators["context"] = "v_c"
            self.validator("v_c", self.cs.context)
        for t, res in enumerate(self.cs.resources.values()):
            self.resource = res
            validators[f"resource:{res.name}"] = f"v_r{t}"
            self.validator(f"v_r{t}", res)
            for a, action in enumerate(res.actions):
                deciders[(res.name, action)] = f"d_{t}_{a}"
                self.decider(f"d_{t}_{a}", res, action)
            visibility[res.name], writable[res.name] = f"show_{t}", f"write_{t}"
            self.mask_function(f"show_{t}", res, "show")
            self.mask_function(f"write_{t}", res, "write")
            for k, rule in enumerate(self.cs.rules.get(res.name, ())):
                conditions[rule.name] = f"c_{t}_{k}"
                self.condition(f"c_{t}_{k}", rule)
            self.w.line()
        header = [
            f"# policyd: generated code for {safe_comment(self.name)} ({self.cs.version})",
            "# Policy values are written with repr(); names are generated, never policy text.",
            "", *self.const_lines, "",
        ]
        offset = len(header)
        source = "\n".join(header) + "\n" + self.w.source()
        linemap = {line + offset: where for line, where in self.w.linemap.items()}
        return Generated(source, linemap, validators, deciders, visibility, writable, conditions)


def generate(cs: CheckedSet, name: str) -> Generated:
    return _Gen(cs, name).run()
