"""CheckedSet to Python source.

Generated code is plain functions over dicts. Every policy value is written with
`repr()`; every Python identifier is generated here (policy names appear only
inside string literals and sanitised comments); the only globals it may use are
`_rt`, the runtime module, and `_g`, the set's entity data (relcode.py); its
builtins are runtime.BUILTINS.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from .allows import SPECIALIZE_MAX, AllowCode
from .checked import ActionName, CheckedRule, CheckedSet, Const, Op, Read
from .codewriter import CodeWriter, safe_comment
from .fastpath import FastPathCode
from .kleene import KleeneCode, fallible
from .relcode import RELATION_OPS, RelationCode
from .rulecode import ARGS, RuleFunctionCode
from .ruleindex import INDEX_MIN, plan_index
from .schema import EntitySchema
from .validators import ValidatorCode

_INFIX = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">=",
          "add": "+", "sub": "-", "mul": "*"}
_ARITH = ("add", "sub", "mul")
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
    limiters: dict[tuple[str, str], str]  # (type, action) -> applicable buckets, if any rule
    visibility: dict[str, str]  # type -> function returning the mask of visible fields
    writable: dict[str, str]  # type -> function returning the mask of writable fields
    conditions: dict[str, str]  # full rule name -> per-rule condition function
    explain_source: str  # the per-rule condition functions: compiled on first use (explain)
    explain_linemap: dict[int, tuple[str, int]]
    fast: str = ""  # the fast path's binder (fastpath.py), "" when no type qualifies
    # 1.2: (type, action) -> ((effect, rule, function, keys, types), ...) of the rules
    # with an `output` that may decide it
    outputs: dict = None


class _Gen(ValidatorCode, AllowCode, FastPathCode, KleeneCode, RelationCode,
           RuleFunctionCode):
    def __init__(self, cs: CheckedSet, name: str, max_string_bytes: int):
        self.cs, self.name = cs, name
        self.max_bytes = max_string_bytes
        self.w = CodeWriter()
        self.explain = CodeWriter()  # per-rule conditions, for explain and coverage only
        self.shared: dict[str, str] = {}  # condition text -> local already holding it
        self.consts: dict[object, str] = {}
        self.const_lines: list[str] = []
        self.type_functions: dict[tuple, str] = {}
        self.pooling = False  # writing a data validator: sets pooled as tuples
        self.type_source: list[str] = []
        self.kfns: dict[tuple, str] = {}  # (resource type, condition) -> its kN function
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
            if ir.path == ("id",) and ir.entity != "context":
                return "pid" if ir.entity == "principal" else "rid"
            if ir.path == ("type",) and ir.entity != "context":
                return "pt" if ir.entity == "principal" else repr(self.resource.name)
            return _ENTITY[ir.entity] + "".join(f"[{step!r}]" for step in ir.path)
        if isinstance(ir, ActionName):
            return repr(action) if action is not None else "act"
        return self.op(ir, action)

    def op(self, ir: Op, action: str | None) -> str:
        a = [self.expr(x, action) for x in ir.args]
        a = [self.shared.get(x, x) for x in a] if ir.op == "not" else a
        op = ir.op
        if op in RELATION_OPS:
            return self.relation(ir, a)
        if op in ("and", "or"):
            return f"({a[0]} {op} {a[1]})"
        if op == "not":
            return f"(not {a[0]})"
        if op == "neg":
            return f"(-{a[0]})"
        if op in _ARITH:  # numbers are doubles; a result must be finite (kleene.py)
            return f"_rt.finite(float({a[0]}) {_INFIX[op]} {a[1]})"
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
            roles = a[0] if a else "P['roles']" if self.roles_required else "P.get('roles', ())"
            return f"(not {self.hoist(ir.data)}.isdisjoint({roles}))"
        if op == "index":
            return f"{a[0]}[{a[1]}]"
        if op == "index_or_empty":  # a set value: an absent key is the empty set
            return f"{a[0]}.get({a[1]}, ())"
        if op == "has_key":
            return f"({a[0]} in {a[1]})"
        if op == "attr":
            return f"{a[0]}[{ir.data!r}]"
        if op == "has_attr":
            return f"({ir.data!r} in {a[0]})"
        if op == "owns":
            attr, is_set_owner, typed = ir.data
            # an empty id owns nothing (requests refuse empty ids; this holds regardless);
            # a typed owner (`owner: User`) is owned by principals of that type only
            kind = f"pt == {typed!r} and " if typed is not None else ""
            return f"({kind}pid != '' and pid in R[{attr!r}])" if is_set_owner else \
                f"({kind}pid != '' and R[{attr!r}] == pid)"
        raise ValueError(f"no code for operator {op!r}")  # the checker produces no such IR

    @staticmethod
    def _const_side(ir: Op) -> int | None:
        for i, arg in enumerate(ir.args):
            if isinstance(arg, Const):
                return i
        return None

    def cond(self, rule: CheckedRule, action: str | None) -> str:
        """A rule's condition as a Python test: it holds (an allow, show or write rule),
        or it denies or counts (a deny or limit rule, whose unknown does: kleene.py)."""
        if rule.cond is None:
            return "True"
        if fallible(rule.cond):
            held = "is not False" if rule.effect in ("deny", "limit") else "is True"
            return f"({self.kcall(rule.cond, action)} {held})"
        text = self.expr(rule.cond, action)
        return self.shared.get(text, text)

    # ---- rules -----------------------------------------------------------------

    def decider(self, fn: str, res: EntitySchema, action: str, allow_index: dict) -> None:
        """Denies (all that hold) as a tuple, else `mask << ALLOW_BITS | index` of the first
        allow that holds (mask: the visible fields), else None for default deny."""
        rules = self.cs.rules.get(res.name, ())
        denies = [r for r in rules if r.effect == "deny" and action in r.actions]
        allows = [r for r in rules if r.effect == "allow" and action in r.actions]
        groups, plain = plan_index(denies, INDEX_MIN)
        lookups = self.index_tables(fn, groups, action) if groups else []
        self.w.comment(f"{res.name}.{action}: the denies that held (tuple), else the first "
                       "allow and the visible fields (int), else None")
        self.w.line(f"def {fn}({ARGS}):")
        with self.w.indent():
            if len(plain) > 1 or groups:
                self.w.line("d = None")
            unknowns = any(r.cond is not None and fallible(r.cond) for r in denies + allows)
            if unknowns:
                self.w.line("e = 0  # a deny or allow whose condition was unknown (kleene.py)")
            plan = self.shared_conditions(res, action, [r for _, r in plain], allows)
            for i, (pos, r) in enumerate(plain):
                held = (pos, r.name) if groups else r.name  # indexed: sorted back at the end
                with self.w.origin(r.file, r.line):
                    self.w.comment(f"{safe_comment(r.file)}:{r.line} {r.name}")
                    for text in self._evaluated(r, action):
                        if text in plan and text not in self.shared:
                            self.w.line(f"{plan[text]} = {text}")
                            self.shared[text] = plan[text]  # usable from here on
                    self.deny_test(r, action, held, len(plain) == 1 and not groups, i == 0)
            for table, lookup in lookups:
                self.w.line(f"for x in {table}.get({lookup}, ()):")
                with self.w.indent():
                    self.w.line(f"v = True if x[2] is None else x[2]({ARGS})")
                    self.w.line("if v:")
                    with self.w.indent():
                        self.w.line("if d is None: d = [x[:2]]")
                        self.w.line("else: d.append(x[:2])")
                    if unknowns:
                        self.w.line("elif v is None: e = 1")
            errors = "('error',)"
            if groups:
                if unknowns:
                    self.w.line(f"if e: return _rt.in_order(d or []) + {errors}")
                self.w.line("if d is not None: return _rt.in_order(d)")
            elif len(plain) > 1:
                if unknowns:
                    self.w.line(f"if e: return tuple(d or ()) + {errors}")
                self.w.line("if d is not None: return tuple(d)")
            # past this point every deny condition is false: an allow that repeats one, or an
            # earlier allow, can never be the first to hold (dead branches are left out)
            known = {self.cond(r, action) for r in denies}
            live = []
            for r in allows:
                text = self.cond(r, action)
                if text not in known:
                    known.add(text)
                    live.append(r)
            false = {self.cond(r, action) for r in denies}
            shows = [r for r in rules if r.effect == "show"]
            if live and len(live) * max(1, len(shows)) <= SPECIALIZE_MAX:
                self.allows_specialized(res, action, live, allow_index, false)
            else:
                self.allows_looped(res, action, live, allow_index, false)
            self.shared = {}
        self.w.line()

    def deny_test(self, r: CheckedRule, action: str, held, only: bool, first: bool) -> None:
        """One deny rule of a decider: recorded when it holds; an unknown condition sets
        `e` (the decision is then a deny with reason `error`)."""
        w = self.w
        if r.cond is not None and fallible(r.cond):
            w.line(f"v = {self.kcall(r.cond, action)}")
            if only:
                w.line(f"if v: return ({held!r},)")
                w.line("if v is None: return ('error',)")
                return
            test = "v"
        else:
            test = self.cond(r, action)
        w.line(f"if {test}:")
        with w.indent():
            if only:  # the only deny: it is the outcome
                w.line(f"return ({held!r},)")
            elif first:
                w.line(f"d = [{held!r}]")
            else:  # a list: appending to a tuple is quadratic in the denies held
                w.line(f"if d is None: d = [{held!r}]")
                w.line(f"else: d.append({held!r})")
        if test == "v":
            w.line("elif v is None: e = 1")

    def index_tables(self, fn: str, groups: dict, action: str) -> list[tuple[str, str]]:
        """Each indexed group as a dict constant {value: ((position, rule, rest), ...)}
        after the functions holding the rest of each condition (ruleindex.py); returns
        (table, the expression looked up) for the decider."""
        out = []
        for g, ((entity, attr), items) in enumerate(groups.items()):
            self.w.comment(f"{fn}: {len(items)} deny rules indexed by {entity}.{attr} (each "
                           "is evaluated only for a request with its value)")
            names = {}
            for k, item in enumerate(items):
                if item.rest:
                    names[k] = f"x{fn}_{g}_{k}"
                    if any(fallible(c) for c in item.rest):  # True, False or None
                        chain = functools.reduce(lambda a, b: Op("and", (a, b), "bool"),
                                                 item.rest)
                        self.kleene_function(self.resource.name, chain)
                        rest = self.kcall(chain, action)
                    else:
                        rest = " and ".join(self.expr(c, action) for c in item.rest)
                    self.w.line(f"def {names[k]}({ARGS}): return ({rest})")
            table: dict = {}
            for k, item in enumerate(items):
                table.setdefault(item.value, []).append(
                    f"({item.position!r}, {item.rule.name!r}, {names.get(k, 'None')})")
            entries = ", ".join(f"{value!r}: ({', '.join(v)},)" for value, v in table.items())
            self.w.line(f"X{fn}_{g} = {{{entries}}}")
            out.append((f"X{fn}_{g}", f"{_ENTITY[entity]}.get({attr!r})"))
        self.w.line()
        return out

    def shared_conditions(self, res: EntitySchema, action: str, denies, allows) -> dict:
        """Deny conditions that a later allow or show rule repeats: every deny condition is
        evaluated anyway, and a whole condition is pure and safe anywhere (its guards are
        inside it), so each is computed once into a local `hN`."""
        later = [r for r in allows] + [r for r in self.cs.rules.get(res.name, ())
                                       if r.effect == "show"]
        repeated = {self.expr(r.cond, action) for r in later if r.cond is not None}
        out: dict[str, str] = {}
        for r in denies:
            for text in self._evaluated(r, action):
                if text in repeated and text not in out:
                    out[text] = f"h{len(out)}"
        return out

    def _evaluated(self, rule: CheckedRule, action: str) -> list[str]:
        """Whole expressions a rule's condition always evaluates: the condition, and for a
        pure `unless U` (`not U`) also U. Operand first, so it is assigned before use."""
        if rule.cond is None or fallible(rule.cond):  # three-valued: never shared raw
            return []
        out = [self.expr(rule.cond, action)]
        if isinstance(rule.cond, Op) and rule.cond.op == "not":
            out.insert(0, self.expr(rule.cond.args[0], action))
        return out

    # ---- the module ----------------------------------------------------------------

    def run(self) -> Generated:
        validators, deciders, visibility, writable, conditions = {}, {}, {}, {}, {}
        limiters: dict[tuple[str, str], str] = {}
        outputs: dict[tuple[str, str], tuple] = {}
        for i, p in enumerate(self.cs.principals.values()):
            validators[f"principal:{p.name}"] = f"v_p{i}"
            self.validator(f"v_p{i}", p)
            self.data_validator(validators, f"vd_p{i}", p)
        if self.cs.context is not None:
            validators["context"] = "v_c"
            self.validator("v_c", self.cs.context)
        for i, ent in enumerate(self.cs.entities.values()):
            self.data_validator(validators, f"vd_e{i}", ent)
        for t, res in enumerate(self.cs.resources.values()):
            self.resource = res
            validators[f"resource:{res.name}"] = f"v_r{t}"
            self.validator(f"v_r{t}", res)
            self.data_validator(validators, f"vd_r{t}", res)
            rules = self.cs.rules.get(res.name, ())
            allow_index = {r.name: i for i, r in enumerate(rules)}
            self.kleene_functions(res, rules)
            for a, action in enumerate(res.actions):
                deciders[(res.name, action)] = f"d_{t}_{a}"
                self.decider(f"d_{t}_{a}", res, action, allow_index)
                limits = [r for r in rules if r.effect == "limit" and action in r.actions]
                if limits:
                    limiters[(res.name, action)] = f"l_{t}_{a}"
                    self.limiter(f"l_{t}_{a}", res, action, limits)
            visibility[res.name], writable[res.name] = f"show_{t}", f"write_{t}"
            self.mask_function(f"show_{t}", res, "show")
            self.mask_function(f"write_{t}", res, "write")
            for k, rule in enumerate(self.cs.rules.get(res.name, ())):
                conditions[rule.name] = f"c_{t}_{k}"
                self.condition(f"c_{t}_{k}", rule)
                if rule.output:
                    self.output_function(f"o_{t}_{k}", rule, outputs)
            self.w.line()
        self.output_actions = set(outputs)
        fast = self.fast_paths(deciders, limiters)
        header = [
            f"# policyd: generated code for {safe_comment(self.name)} ({self.cs.version})",
            "# Policy values are written with repr(); names are generated, never policy text.",
            "SEQUENCES = _rt.SEQUENCES", *self.const_lines, *self.route_lines(), "",
        ]
        offset = len(header)
        source = "\n".join(header) + "\n" + self.w.source() + "".join(self.type_source)
        linemap = {line + offset: where for line, where in self.w.linemap.items()}
        explain = "# per-rule conditions (explain, coverage): compiled on first use\n" + \
            self.explain.source()
        explain_linemap = {line + 1: where for line, where in self.explain.linemap.items()}
        return Generated(source, linemap, validators, deciders, limiters, visibility, writable,
                         conditions, explain, explain_linemap, fast, outputs)


def generate(cs: CheckedSet, name: str, max_string_bytes: int = 4096) -> Generated:
    return _Gen(cs, name, max_string_bytes).run()
