"""Explanations of relationships (1.2): `in`, references and entity literals as policy
text, and for an `in` that held, the chain of parents that made it hold
(`User("user_3") -> Team("team_2") -> RepoPermission("repo_7_writers")`)."""

from __future__ import annotations

import json

from ..language.checked import Op
from .graph import chain
from .partial_rel import entity_type, own
from .runtime import ANCESTORS

OPS = ("self", "ref_id", "ref_eq", "ref_ne", "ref_member", "within", "within_any", "deref",
       "deref_has")


def literal(value, t: str) -> str:
    """An entity literal (or a set of them) as the language writes it."""
    if t.startswith("set<"):
        inner = t[4:-1]
        return "[" + ", ".join(literal(v, inner) for v in sorted(value)) + "]"
    if type(value) is str and value.isascii() and value.isprintable() and '"' not in value \
            and "\\" not in value:
        return f'{t}("{value}")'  # what json.dumps gives, without its cost (decision logs)
    return f"{t}({json.dumps(value)})"


def text(ir: Op, a: list[str]) -> str:
    op = ir.op
    if op == "self":
        return ir.data
    if op == "ref_id":
        return f"{a[0]}.id"
    if op in ("ref_eq", "ref_ne"):
        return f"{a[0]} {'==' if op == 'ref_eq' else '!='} {a[1]}"
    if op == "ref_member":
        return f"{a[1]} contains {a[0]}"
    if op in ("within", "within_any"):
        return f"{a[0]} in {a[1]}"
    t, attr, path = ir.data
    return f"{path}.{attr}" if op == "deref" else f"{path} has {attr}"


def chains(explainer, ir, env) -> list[str]:
    """For each `in` of a condition that held, the parents from its entity up to the one
    that made it hold."""
    out: list[str] = []
    todo = [ir]
    while todo:
        node = todo.pop()
        if not isinstance(node, Op):
            continue
        todo.extend(node.args)
        if node.op not in ("within", "within_any"):
            continue
        try:
            found = _chain(explainer, node, env)
        except Exception:  # an `in` the condition never reached (short-circuited)
            continue
        if found:
            out.append(" -> ".join(literal(i, t) for t, i in found))
    return out[::-1]


def _chain(explainer, node: Op, env) -> list | None:
    x, y = node.args
    a, b = explainer.value(x, env), explainer.value(y, env)
    ta = entity_type(x, env)
    tb = y.type[4:-1] if node.op == "within_any" else entity_type(y, env)
    mine = own(x, env)
    first = ((mine or {}).get(ANCESTORS) or {}).get(None, ())
    for goal in sorted(b) if node.op == "within_any" else (b,):
        found = chain(env.g.parents, (ta, a), (tb, goal), first)
        if found:
            return found
    return None
