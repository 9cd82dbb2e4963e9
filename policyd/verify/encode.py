"""The typed IR of a checked set as z3 terms, one request shape at a time: a principal
type, a resource type and one action. Every value means exactly what the engine
computes: numbers are IEEE doubles (z3's Float64, never NaN or infinite, as requests
are validated), strings are strings, an optional attribute has a presence flag, a set
of strings is a set. A construct not modelled yet raises Unsupported naming it, so the
answer is `unknown`, never a silent proof."""

from __future__ import annotations

import fractions

import z3

from ..language.checked import ActionName, Const, Op, Read
from ..language.kleene import fallible
from .terms import NUMBER, RNE, Ip, Map, Unsupported, finite, sort_of

_COMPARE = {"eq": lambda a, b: a == b, "ne": lambda a, b: a != b,
                 "lt": lambda a, b: a < b, "le": lambda a, b: a <= b,
                 "gt": lambda a, b: a > b, "ge": lambda a, b: a >= b}
_MIRROR = {"eq": "eq", "ne": "ne", "lt": "gt", "le": "ge", "gt": "lt", "ge": "le"}
_FP_COMPARE = {"eq": z3.fpEQ, "ne": z3.fpNEQ, "lt": z3.fpLT, "le": z3.fpLEQ,
               "gt": z3.fpGT, "ge": z3.fpGEQ}


class Shape:
    """The symbolic request: the attributes the rules read (record fields by their whole
    path), each a variable made on first read, with a presence flag for each optional
    step, and the constraints validation puts on them. Attributes no rule reads take a
    plain value in a counterexample."""

    def __init__(self, schema, ptype: str, rtype: str, action: str):
        self.schema, self.ptype, self.rtype, self.action = schema, ptype, rtype, action
        self.pid, self.rid = z3.String("principal.id"), z3.String("resource.id")
        self.facts: list = [z3.Length(self.pid) > 0, z3.Length(self.rid) > 0]
        self.vars: dict = {}  # (entity, path) -> (term, AttrSpec)
        self.flags: dict = {}  # (entity, path) -> presence of that optional step
        self.specs = {"principal": schema.principals[ptype],
                      "resource": schema.resources[rtype], "context": schema.context}

    def steps(self, entity: str, path: tuple):
        """The AttrSpec of each step of a path, or None where one is not declared."""
        spec, out = self.specs[entity], []
        for step in path:
            a = spec.by_name.get(step) if spec is not None else None
            if a is None:
                return None
            out.append(a)
            spec = self.schema.records.get(a.type)
        return out

    def flag(self, entity: str, path: tuple):
        found = self.flags.get((entity, path))
        if found is None:
            found = self.flags[(entity, path)] = z3.Bool(f"{entity}.{'.'.join(path)}?")
        return found

    def present(self, entity: str, path: tuple):
        steps = self.steps(entity, path)
        if steps is None:
            return z3.BoolVal(False)
        return z3.And(*[self.flag(entity, path[:i + 1]) for i, a in enumerate(steps)
                        if a.optional])

    def _var(self, entity: str, path: tuple):
        found = self.vars.get((entity, path))
        if found is None:
            steps = self.steps(entity, path)
            if steps is None:
                return None
            a, name = steps[-1], f"{entity}.{'.'.join(path)}"
            if a.type in self.schema.records:
                raise Unsupported("a whole record as a value")
            if a.type == "ip":
                term = Ip.var(name)
                self.facts.append(term.valid())
            elif a.type.startswith("map<"):
                term = Map(name, a.type[len("map<string, "):-1])
            else:
                term = z3.Const(name, sort_of(a.type))
            if a.type == "number":
                self.facts += finite(term)
            found = self.vars[(entity, path)] = (term, a)
        return found

    def read(self, entity: str, path: tuple):
        if path == ("id",) and entity != "context":
            return self.pid if entity == "principal" else self.rid
        if path == ("type",) and entity != "context":
            return z3.StringVal(self.ptype if entity == "principal" else self.rtype)
        found = self._var(entity, path)
        if found is None:  # another principal type's attribute: every read is guarded
            if len(path) != 1:
                raise Unsupported("records of another principal type")
            return z3.FreshConst(sort_of(self._type_elsewhere(path[0])), path[0])
        return found[0]

    def _type_elsewhere(self, name: str) -> str:
        for p in self.schema.principals.values():
            if name in p.by_name:
                return p.by_name[name].type
        raise Unsupported(f"attribute {name}")


class Encoder:
    """IR -> z3 terms over one Shape."""

    def __init__(self, shape: Shape):
        self.s = shape
        self.bad: list | None = None  # the non-finite tests of the arithmetic being read

    def truth(self, ir) -> tuple:
        """(definitely true, definitely false) of a condition in Kleene's logic, as the
        engine decides it (language/kleene.py): a comparison that reads arithmetic with
        no finite result is neither; `and`, `or` and `not` combine as Kleene does."""
        if not fallible(ir):
            held = self.term(ir)
            return held, z3.Not(held)
        if ir.op == "not":
            t, f = self.truth(ir.args[0])
            return f, t
        if ir.op in ("and", "or"):
            (t1, f1), (t2, f2) = self.truth(ir.args[0]), self.truth(ir.args[1])
            if ir.op == "and":
                return z3.And(t1, t2), z3.Or(f1, f2)
            return z3.Or(t1, t2), z3.And(f1, f2)
        saved, self.bad = self.bad, []
        try:
            value = self.term(ir)
            finite = z3.Not(z3.Or(*self.bad)) if self.bad else z3.BoolVal(True)
        finally:
            self.bad = saved
        return z3.And(finite, value), z3.And(finite, z3.Not(value))

    def _arith(self, ir, fn):
        if self.bad is None:
            raise Unsupported("arithmetic outside a condition")
        a, b = map(self.term, ir.args)
        result = fn(RNE, a, b)  # `float(a) + b`: IEEE, round to nearest even
        self.bad.append(z3.Or(z3.fpIsInf(result), z3.fpIsNaN(result)))
        return result

    def op_add(self, ir):
        return self._arith(ir, z3.fpAdd)

    def op_sub(self, ir):
        return self._arith(ir, z3.fpSub)

    def op_mul(self, ir):
        return self._arith(ir, z3.fpMul)

    def op_neg(self, ir):
        return z3.fpNeg(self.term(ir.args[0]))

    def term(self, ir):
        if isinstance(ir, Const):
            return self.const(ir.value, ir.type)
        if isinstance(ir, Read):
            return self.s.read(ir.entity, ir.path)
        if isinstance(ir, ActionName):
            return z3.StringVal(self.s.action)
        if isinstance(ir, Op):
            handler = getattr(self, "op_" + ir.op, None)
            if handler is None:
                raise Unsupported(f"the operator `{ir.op}`")
            return handler(ir)
        raise Unsupported(type(ir).__name__)

    @staticmethod
    def const(value, t: str):
        if t == "string":
            return z3.StringVal(value)
        if t == "bool":
            return z3.BoolVal(value)
        if t == "number":
            return z3.FPVal(float(value), NUMBER)
        if t == "ip":
            return Ip.of(value)
        if t == "set<string>":
            out = z3.EmptySet(z3.StringSort())
            for v in sorted(value):
                out = z3.SetAdd(out, z3.StringVal(v))
            return out
        raise Unsupported(f"literals of type {t}")

    def op_and(self, ir):
        return z3.And(*map(self.term, ir.args))

    def op_or(self, ir):
        return z3.Or(*map(self.term, ir.args))

    def op_not(self, ir):
        return z3.Not(self.term(ir.args[0]))

    def _compare(self, ir):
        t = ir.args[0].type
        if any(isinstance(x, Op) and x.op == "len" for x in ir.args):
            return self._length_compare(ir)
        a, b = map(self.term, ir.args)
        if t == "number":
            return _FP_COMPARE[ir.op](a, b)
        if ir.op in ("eq", "ne") and t in ("string", "bool"):
            return _COMPARE[ir.op](a, b)
        if ir.op in ("eq", "ne") and t == "ip":
            return a.same(b) if ir.op == "eq" else z3.Not(a.same(b))
        raise Unsupported(f"`{ir.op}` on {t}")

    op_eq = op_ne = op_lt = op_le = op_gt = op_ge = _compare

    def op_in(self, ir):
        x, s = ir.args
        if s.type != "set<string>":
            raise Unsupported(f"`in` on {s.type}")
        return z3.IsMember(self.term(x), self.term(s))

    def op_any_of(self, ir):
        a, b = ir.args
        if isinstance(a, Const) or isinstance(b, Const):
            const, other = (a, b) if isinstance(a, Const) else (b, a)
            term = self.term(other)
            return z3.Or(*[z3.IsMember(z3.StringVal(v), term) for v in sorted(const.value)]) \
                if const.value else z3.BoolVal(False)
        raise Unsupported("`contains_any` between two attribute sets")

    def op_all_of(self, ir):
        a, b = ir.args  # a contains every element of b
        if isinstance(b, Const):
            term = self.term(a)
            return z3.And(*[z3.IsMember(z3.StringVal(v), term) for v in sorted(b.value)])
        raise Unsupported("`contains_all` of an attribute set")

    def op_ip_in(self, ir):
        x, r = map(self.term, ir.args)
        return x.within(r)

    def op_ip_in_any(self, ir):
        x, ranges = ir.args
        if not isinstance(ranges, Const):
            raise Unsupported("`in` a set of ip ranges read from an attribute")
        ip = self.term(x)
        return z3.Or(*[ip.within(Ip.of(r)) for r in sorted(ranges.value)]) \
            if ranges.value else z3.BoolVal(False)

    def op_like(self, ir):
        """`*` is the only wildcard: the pattern's parts joined by any text, anchored."""
        s, parts = self.term(ir.args[0]), ir.data
        if len(parts) == 1:
            return s == z3.StringVal(parts[0])
        anything = z3.Full(z3.ReSort(z3.StringSort()))
        pieces = [z3.Re(z3.StringVal(parts[0]))]
        for part in parts[1:]:
            pieces += [anything, z3.Re(z3.StringVal(part))]
        return z3.InRe(s, z3.Concat(*pieces))

    def op_len(self, ir):
        raise Unsupported("`len` outside a comparison with a number literal")

    def _length_compare(self, ir):
        """`len(s) < 8` and the like: a string's length (code points, as Python counts)
        against the literal, exactly, as integers and reals."""
        a, b = ir.args
        flip = not (isinstance(a, Op) and a.op == "len")
        x, c = (b, a) if flip else (a, b)
        if x.args[0].type != "string" or not isinstance(c, Const):
            raise Unsupported("`len` outside a comparison of a string with a number literal")
        length = z3.ToReal(z3.Length(self.term(x.args[0])))
        bound = z3.RealVal(fractions.Fraction(c.value))
        op = _MIRROR[ir.op] if flip else ir.op
        return _COMPARE[op](length, bound)

    def op_has(self, ir):
        entity, attr = ir.data
        return self.s.present(entity, (attr,))

    def op_has_attr(self, ir):
        record = ir.args[0]
        if not isinstance(record, Read):
            raise Unsupported("`has` on a record that is not an attribute")
        return self.s.present(record.entity, record.path + (ir.data,))

    def _map(self, ir):
        m = self.term(ir)
        if not isinstance(m, Map):
            raise Unsupported("a map that is not an attribute")
        return m

    def op_has_key(self, ir):
        key, m = ir.args
        return z3.Select(self._map(m).keys, self.term(key))

    def op_index(self, ir):
        m, key = self._map(ir.args[0]), self.term(ir.args[1])
        value = z3.Select(m.values, key)
        if m.type == "number":
            self.s.facts.extend(finite(value))
        if m.type not in ("string", "number", "bool"):
            raise Unsupported(f"map values of type {m.type}")
        return value

    def op_index_or_empty(self, ir):
        m, key = self._map(ir.args[0]), self.term(ir.args[1])
        if m.type != "set<string>":
            raise Unsupported(f"map values of type {m.type}")
        return z3.If(z3.Select(m.keys, key), z3.Select(m.values, key),
                     z3.EmptySet(z3.StringSort()))

    def op_is(self, ir):
        if not ir.args:  # the principal's roles; an absent optional `roles` holds none
            roles = self.s.read("principal", ("roles",))
            held = self._member_any(ir.data, roles)
            return z3.And(self.s.present("principal", ("roles",)), held)
        roles = self.term(ir.args[0])
        if ir.args and ir.args[0].type == "string":
            return z3.Or(*[roles == z3.StringVal(r) for r in sorted(ir.data)]) \
                if ir.data else z3.BoolVal(False)
        return self._member_any(ir.data, roles)

    @staticmethod
    def _member_any(values, s):
        return z3.Or(*[z3.IsMember(z3.StringVal(v), s) for v in sorted(values)]) \
            if values else z3.BoolVal(False)

    def op_owns(self, ir):
        attr, is_set_owner, typed = ir.data
        if typed is not None and typed != self.s.ptype:
            return z3.BoolVal(False)
        owner = self.s.read("resource", (attr,))
        pid = self.s.pid
        return z3.And(z3.Length(pid) > 0,
                      z3.IsMember(pid, owner) if is_set_owner else owner == pid)
