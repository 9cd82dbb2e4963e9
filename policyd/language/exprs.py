"""Type checking of expressions and their lowering to the typed IR.

`has` guards are flow-sensitive: a read of an optional attribute checks only
when a `has` test guards it on every path (through and, or, not, unless).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from . import guards
from . import nodes as n
from .checked import IR, ActionName, Const, Op, Read
from .declarations import IMPLICIT
from .diagnostics import Diagnostic, did_you_mean
from .operators import OperatorChecks
from .relations import RelationChecks
from .schema import (
    BOOL,
    EMPTY_SET,
    ERROR,
    NUMBER,
    STRING,
    EntitySchema,
    is_map,
    is_set,
    map_value,
    set_of,
)

Facts = guards.Facts
_COMPARE = {"==": "eq", "!=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge"}
_ARITH = {"+": "add", "-": "sub", "*": "mul"}


@dataclass
class Scope:
    """What names mean inside one rule (or one constant, where nothing is in scope)."""

    principals: dict[str, EntitySchema]
    resource: EntitySchema | None
    context: EntitySchema | None
    roles: dict[str, frozenset[str]]
    constants: dict[str, Const]
    report: Callable[..., None]
    const_only: bool = False
    warned: set = field(default_factory=set)
    records: dict[str, EntitySchema] = field(default_factory=dict)
    role_attrs: set = field(default_factory=set)  # principal attributes that hold role names
    entities: dict[str, EntitySchema] = field(default_factory=dict)  # entity types (1.2)
    resources_all: dict[str, EntitySchema] = field(default_factory=dict)  # references to them
    conditions: Callable | None = None  # name -> its checked IR, or None (checker.py)


def literal_value(value) -> Const:
    if isinstance(value, bool):
        return Const(value, BOOL)
    if isinstance(value, int | float):
        return Const(value, NUMBER)
    return Const(value, STRING)


class ExprChecker(OperatorChecks, RelationChecks):
    def __init__(self, scope: Scope):
        self.s = scope

    def error(self, span: n.Span, code: str, message: str, hint: str | None = None) -> IR:
        self.s.report(Diagnostic.at(span, code, message, hint))
        return Const(None, ERROR)

    # ---- entry points ----------------------------------------------------------

    def condition(self, when: n.Expr | None, unless: n.Expr | None) -> IR | None:
        """`when W unless U` is `W and not U`; U is checked knowing W held. Where U narrows
        the principal's type (`unless principal.type != "Staff"`), W is checked knowing
        that, and `not U` is evaluated first."""
        narrowing = Facts(f for f in self.neg(unless) if f[0] == "type") \
            if when is not None and unless is not None else Facts()
        if narrowing:
            u = self.bool_expr(unless, Facts())
            w = self.bool_expr(when, narrowing)
            return Op("and", (Op("not", (u,), BOOL), w), BOOL)
        parts, facts = [], Facts()
        if when is not None:
            w = self.bool_expr(when, facts)
            parts.append(w)
            facts = facts | self.pos(when)
        if unless is not None:
            parts.append(Op("not", (self.bool_expr(unless, facts),), BOOL))
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else Op("and", tuple(parts), BOOL)

    def bool_expr(self, e: n.Expr, facts: Facts) -> IR:
        ir = self.expr(e, facts)
        if ir.type not in (BOOL, ERROR):
            return self.error(e.span, "E301", f"a condition must be a bool, found {ir.type}")
        return ir

    def pos(self, e: n.Expr) -> Facts:
        return guards.pos(e, self.s.conditions)

    def neg(self, e: n.Expr) -> Facts:
        return guards.neg(e, self.s.conditions)

    # ---- expressions -----------------------------------------------------------

    def expr(self, e: n.Expr, facts: Facts) -> IR:
        method = getattr(self, "_" + type(e).__name__.lower())
        return method(e, facts)

    def _literal(self, e: n.Literal, facts) -> IR:
        return literal_value(e.value)

    def _setlit(self, e: n.SetLit, facts) -> IR:
        items = [self.expr(i, facts) for i in e.items]
        if any(i.type == ERROR for i in items):
            return Const(None, ERROR)
        for item, node in zip(items, e.items, strict=True):
            if not isinstance(item, Const) or is_set(item.type):
                return self.error(node.span, "E302", "set items must be literal values",
                                  "sets are written as literals: [\"a\", \"b\"]")
        types = {i.type for i in items}
        if len(types) > 1:
            return self.error(e.span, "E303", "set items must all have one type, found "
                              + " and ".join(sorted(types)))
        elem = types.pop() if types else None
        return Const(frozenset(i.value for i in items), set_of(elem) if elem else EMPTY_SET)

    def _recordlit(self, e: n.RecordLit, facts) -> IR:
        return self.error(e.span, "E335", "a `{ ... }` value belongs in a test fixture",
                          "policies read records and maps from requests and entity data")

    def _root(self, e: n.Root, facts) -> IR:
        if self.s.const_only:
            return self.error(e.span, "E304", "a constant's value must be a literal")
        if e.name == "action":
            return ActionName()
        if e.name == "resource" and self.s.resource is not None or \
                e.name == "principal" and self.s.principals:
            return self.entity_root(e, facts)
        return self.error(e.span, "E305", f"`{e.name}` is not a value by itself",
                          f"read one of its attributes, like `{e.name}.id`")

    def _constref(self, e: n.ConstRef, facts) -> IR:
        name = e.name.value
        if name in self.s.constants:
            return self.s.constants[name]
        found = self.s.conditions(name, e.span) if self.s.conditions else None
        if found is not None:  # a named condition: exactly its expression (checker.py)
            return found
        hint = did_you_mean(name, self.s.constants) or self._owner_hint(name)
        return self.error(e.span, "E306", f"unknown name `{name}`", hint)

    def _owner_hint(self, name: str) -> str | None:
        owner = None if self.s.const_only else self._attr_owner(name)
        return f"did you mean `{owner}.{name}`?" if owner else None

    def _attr_owner(self, name: str) -> str | None:
        if self.s.resource and name in self.s.resource.by_name:
            return "resource"
        if any(name in p.by_name for p in self.s.principals.values()):
            return "principal"
        if self.s.context and name in self.s.context.by_name:
            return "context"
        return None

    def _attr(self, e: n.Attr, facts) -> IR:
        if self.s.const_only:
            return self.error(e.span, "E304", "a constant's value must be a literal")
        if isinstance(e.obj, n.ConstRef | n.Literal):  # `doc.n`: a name is no entity
            return self.error(e.span, "E307", f"`.{e.name.value}`: only principal, resource, "
                              "context and records have attributes",
                              self._owner_hint(e.name.value))
        if not isinstance(e.obj, n.Root):
            return self._record_attr(e, facts)
        if e.obj.name == "action":
            return self.error(e.span, "E307", f"`.{e.name.value}`: only principal, resource, "
                              "context and records have attributes",
                              self._owner_hint(e.name.value))
        entity, attr = e.obj.name, e.name.value
        found = self.lookup(entity, attr, e.name.span, facts)
        if found is None:
            return Const(None, ERROR)
        typ, optional = found
        if optional and guards.has_fact(e.obj, attr) not in facts:
            return self.error(e.span, "E308", f"`{entity}.{attr}` is optional and may be absent",
                              f"guard the read: `{entity} has {attr} and ...`")
        return Read(entity, (attr,), typ)

    def _record_attr(self, e: n.Attr, facts) -> IR:
        """`E.A` where E is a record: a path read, or an attribute of a computed record."""
        obj = self.expr(e.obj, facts)
        if obj.type == ERROR:
            return obj
        if self.is_entity(obj.type):
            return self.deref(e, obj, facts)
        attr = e.name.value
        record = self.s.records.get(obj.type)
        if record is None:
            hint = f"read a map's value with `[...]`: `{guards.canon(e.obj)}[key]`" \
                if is_map(obj.type) else self._owner_hint(attr)
            return self.error(e.span, "E307", f"`.{attr}`: a {obj.type} has no attributes "
                              "(principal, resource, context and records do)", hint)
        spec = record.by_name.get(attr)
        if spec is None:
            return self.error(e.name.span, "E311", f"record `{record.name}` declares no "
                              f"attribute `{attr}`", did_you_mean(attr, record.by_name))
        if spec.optional and guards.has_fact(e.obj, attr) not in facts:
            path = guards.canon(e.obj)
            return self.error(e.span, "E308", f"`{path}.{attr}` is optional and may be absent",
                              f"guard the read: `{path} has {attr} and ...`")
        if isinstance(obj, Read):
            return Read(obj.entity, obj.path + (attr,), spec.type)
        return Op("attr", (obj,), spec.type, attr)

    def _index(self, e: n.Index, facts) -> IR:
        """`m[k]`: a set value reads as empty when the key is absent; any other value needs
        a `k in m` guard (the same key expression) on every path to the read."""
        if self.s.const_only:
            return self.error(e.span, "E304", "a constant's value must be a literal")
        mapping, key = self.expr(e.obj, facts), self.expr(e.key, facts)
        if ERROR in (mapping.type, key.type):
            return Const(None, ERROR)
        if not is_map(mapping.type):
            return self.error(e.span, "E332", f"`[...]` reads a map, found {mapping.type}")
        if key.type != STRING:
            return self.error(e.key.span, "E333", f"a map key is a string, found {key.type}")
        value = map_value(mapping.type)
        if is_set(value):
            return Op("index_or_empty", (mapping, key), value)
        if guards.key_fact(e.key, e.obj) not in facts:
            return self.error(e.span, "E334", f"`{guards.canon(e)}` may be absent",
                              f"guard the read: `{guards.canon(e.key)} in "
                              f"{guards.canon(e.obj)} and ...`")
        return Op("index", (mapping, key), value)

    def lookup(self, entity: str, attr: str, span: n.Span,
               facts=frozenset()) -> tuple[str, bool] | None:
        """(type, optional) of an attribute read through principal/resource/context; a
        principal attribute of the types `principal.type == "T"` narrowed it to."""
        if attr in IMPLICIT and entity != "context":
            return IMPLICIT[attr], False
        if entity == "principal":
            narrowed = self.narrowed_principals(facts)
            specs = [(p.name, p.by_name.get(attr)) for p in self.s.principals.values()
                     if p.name in narrowed]
            if not any(a for _, a in specs):  # narrowing only ever relaxes a read
                specs = [(p.name, p.by_name.get(attr)) for p in self.s.principals.values()]
            declared = [(name, a) for name, a in specs if a is not None]
            if not declared:
                self._unknown_attr(entity, attr, span,
                                   {a for p in self.s.principals.values() for a in p.by_name})
                return None
            types = {a.type for _, a in declared}
            if len(types) > 1:
                listed = ", ".join(f"{name} ({a.type})" for name, a in declared)
                self.error(span, "E309", f"`principal.{attr}` has different types on different "
                           f"principal types: {listed}")
                return None
            optional = len(declared) < len(specs) or any(a.optional for _, a in declared)
            return types.pop(), optional
        schema = self.s.resource if entity == "resource" else self.s.context
        if schema is None:
            self.error(span, "E310", "no `context` block declares context attributes")
            return None
        spec = schema.by_name.get(attr)
        if spec is None:
            self._unknown_attr(entity, attr, span, schema.by_name)
            return None
        return spec.type, spec.optional

    def _unknown_attr(self, entity, attr, span, names) -> None:
        owner = self.s.resource.name if entity == "resource" and self.s.resource else entity
        self.error(span, "E311", f"`{owner}` declares no attribute `{attr}`",
                   did_you_mean(attr, names))

    def _has(self, e: n.Has, facts) -> IR:
        if not isinstance(e.obj, n.Root):
            obj = self.expr(e.obj, facts)
            record = self.s.records.get(obj.type)
            if obj.type == ERROR:
                return obj
            if self.is_entity(obj.type):
                return self.deref_has(e, obj)
            if record is None:
                return self.error(e.span, "E327", "`has` tests principal, resource, context or "
                                  f"a record, found {obj.type}")
            spec = record.by_name.get(e.name.value)
            if spec is None:
                return self.error(e.name.span, "E311", f"record `{record.name}` declares no "
                                  f"attribute `{e.name.value}`",
                                  did_you_mean(e.name.value, record.by_name))
            return Op("has_attr", (obj,), BOOL, spec.name) if spec.optional else Const(True, BOOL)
        if e.obj.name == "action":
            return self.error(e.span, "E327", "`has` tests principal, resource or context")
        entity, attr = e.obj.name, e.name.value
        if self.lookup(entity, attr, e.name.span, facts) is None:
            return Const(None, ERROR)
        if attr in IMPLICIT and entity != "context":
            return Const(True, BOOL)
        return Op("has", (), BOOL, (entity, attr))

    def _is(self, e: n.Is, facts) -> IR:
        """`principal is R` reads principal.roles; `E is R` any set<string> of role names."""
        subject = None
        if not (isinstance(e.obj, n.Root) and e.obj.name == "principal"):
            subject = self.expr(e.obj, facts)
            if subject.type == ERROR:
                return subject
            if subject.type != "set<string>":
                return self.error(e.span, "E328", f"`is` tests a set<string> of role names, "
                                  f"found {subject.type}", f"write `principal is {e.role.value}` "
                                  f"or `principal.ATTR is {e.role.value}`")
            self._role_attribute(subject)
        role = e.role.value
        if role not in self.s.roles:
            return self.error(e.role.span, "E329", f"unknown role `{role}`",
                              did_you_mean(role, self.s.roles))
        return Op("is", () if subject is None else (subject,), BOOL, self.s.roles[role])

    def _role_attribute(self, subject: IR) -> None:
        """Remember principal attributes that hold role names (unknown-role warnings)."""
        base = subject.args[0] if isinstance(subject, Op) and subject.op == "index_or_empty" \
            else subject
        if isinstance(base, Read) and base.entity == "principal" and len(base.path) == 1 \
                and base.path[0] != "roles":
            self.s.role_attrs.add(base.path[0])

    def _owns(self, e: n.Owns, facts) -> IR:
        ok = isinstance(e.left, n.Root) and e.left.name == "principal" and \
            isinstance(e.right, n.Root) and e.right.name == "resource"
        if not ok:
            return self.error(e.span, "E330", "ownership is written `principal owns resource`")
        res = self.s.resource
        if res is None or res.owner is None:
            name = res.name if res else "this type"
            return self.error(e.span, "E331", f"`{name}` has no owner",
                              f"declare one: `resource {name} owned by ATTR {{ ... }}`")
        owner_type = res.by_name[res.owner].type
        typed = owner_type[4:-1] if is_set(owner_type) else owner_type
        return Op("owns", (), BOOL, (res.owner, is_set(owner_type),
                                     None if typed == STRING else typed))
