"""Outputs (1.2): `output { KEY: E, ... }` on an allow or deny rule, the values a decision
carries when that rule decides. Checked like a limit key (the rule's conditions are
known), and never allowed to read a sensitive attribute: outputs are logged always.
"""

from __future__ import annotations

from . import nodes as n
from .checked import IR, Op, Read
from .schema import ERROR, EntitySchema


def check_output(checker, rule: n.Rule, exprs) -> tuple[tuple[str, IR], ...]:
    """(key, value) pairs of a rule's output; errors reported through `checker`."""
    if rule.effect not in ("allow", "deny"):
        checker.error(rule.output[0].key.span, "E343", f"an `output` belongs to allow and "
                      f"deny rules, which decide; this is a `{rule.effect}` rule")
        return ()
    facts = frozenset()
    if rule.when is not None:
        facts |= exprs.pos(rule.when)
    if rule.unless is not None:
        facts |= exprs.neg(rule.unless)
    out: dict[str, IR] = {}
    for field in rule.output:
        key = field.key.value
        if key in out:
            checker.error(field.key.span, "E344", f"output key `{key}` is given twice")
            continue
        value = exprs.expr(field.value, facts)
        if value.type == ERROR:
            continue
        if exprs.is_entity(value.type) or value.type in exprs.s.records:
            what = "an entity" if exprs.is_entity(value.type) else "a record"
            checker.error(field.value.span, "E344", f"output `{key}` is {what} ({value.type})",
                          "output its id (`....id`)" if what == "an entity" else
                          "output the fields it needs, one key each")
            continue
        secret = sensitive_read(value, exprs)
        if secret:
            checker.error(field.value.span, "E344", f"output `{key}` reads `{secret}`, which "
                          "is sensitive (outputs are logged whatever --log-attributes says)")
            continue
        out[key] = value
    return tuple(out.items())


def sensitive_read(ir, exprs) -> str:
    """The first sensitive attribute an expression reads ("" when none)."""
    todo = [ir]
    while todo:
        node = todo.pop()
        if isinstance(node, Read):
            if _read_sensitive(node, exprs):
                return ".".join((node.entity, *node.path))
        elif isinstance(node, Op):
            if node.op == "deref":
                schema = exprs.typed(node.data[0])
                spec = schema.by_name.get(node.data[1]) if schema else None
                if spec is not None and spec.sensitive:
                    return f"{node.data[2]}.{node.data[1]}"
            if node.op == "is" and not node.args and _roles_sensitive(exprs.s.principals):
                return "principal.roles"
            todo.extend(node.args)
    return ""


def _read_sensitive(ir: Read, exprs) -> bool:
    s = exprs.s
    if ir.entity == "principal":
        tops = [p.by_name.get(ir.path[0]) for p in s.principals.values()]
    elif ir.entity == "context":
        tops = [s.context.by_name.get(ir.path[0])] if s.context else []
    else:
        tops = [s.resource.by_name.get(ir.path[0])] if s.resource else []
    for spec in tops:
        for step in (*ir.path[1:], None):
            if spec is None:
                break
            if spec.sensitive:
                return True
            record: EntitySchema | None = s.records.get(spec.type)
            spec = record.by_name.get(step) if record and step else None
    return False


def _roles_sensitive(principals: dict) -> bool:
    return any(p.by_name["roles"].sensitive for p in principals.values()
               if "roles" in p.by_name)
