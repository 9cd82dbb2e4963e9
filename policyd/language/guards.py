"""Flow-sensitive guards: what a condition proves present when it is true or false.

A fact is `(path, attribute)` for `E has A` (the path written without positions,
`resource.project`), `("[]", map, key)` for `k in m`, or `("type", "principal",
names)` for `principal.type == "T"` / `in [...]` (1.2: narrowing). A read of an
optional attribute, or of a map value that is not a set, checks only when a fact
guards it on every path to the read (through and, or, not, unless). A named
condition proves what its expression proves (`conditions(name)` gives the node).
"""

from __future__ import annotations

import json

from . import nodes as n

Facts = frozenset


def canon(e: n.Expr) -> str:
    """An expression as text, without positions: two spellings of one path are equal."""
    if isinstance(e, n.Root):
        return e.name
    if isinstance(e, n.Attr):
        return f"{canon(e.obj)}.{e.name.value}"
    if isinstance(e, n.Index):
        return f"{canon(e.obj)}[{canon(e.key)}]"
    if isinstance(e, n.Literal):
        return json.dumps(e.value)  # as written: "gold", 3, true
    if isinstance(e, n.ConstRef):
        return e.name.value
    if isinstance(e, n.Call):
        return f"{e.func.value}({', '.join(canon(a) for a in e.args)})"
    if isinstance(e, n.Unary):
        return f"({e.op} {canon(e.operand)})"
    if isinstance(e, n.Binary):
        return f"({canon(e.left)} {e.op} {canon(e.right)})"
    if isinstance(e, n.SetLit):
        return "[" + ", ".join(canon(i) for i in e.items) + "]"
    return f"<{type(e).__name__}>"  # has, is, owns: never a path or a key


def has_fact(obj: n.Expr, attr: str) -> tuple:
    return (canon(obj), attr)


def key_fact(key: n.Expr, mapping: n.Expr) -> tuple:
    return ("[]", canon(mapping), canon(key))


def type_fact(e: n.Binary) -> tuple | None:
    """`principal.type == "T"` or `principal.type in ["T", ...]`: the types it allows."""
    left, right = e.left, e.right
    if isinstance(right, n.Attr) and e.op == "==":
        left, right = right, left
    if not (isinstance(left, n.Attr) and left.name.value == "type" and
            isinstance(left.obj, n.Root) and left.obj.name == "principal"):
        return None
    if e.op == "==" and isinstance(right, n.Literal) and isinstance(right.value, str):
        return ("type", "principal", frozenset({right.value}))
    if e.op == "in" and isinstance(right, n.SetLit) and all(
            isinstance(i, n.Literal) and isinstance(i.value, str) for i in right.items):
        return ("type", "principal", frozenset(i.value for i in right.items))
    return None


def pos(e: n.Expr, conditions=None) -> Facts:
    """Facts known when `e` is true."""
    if isinstance(e, n.Has):
        return Facts({has_fact(e.obj, e.name.value)})
    if isinstance(e, n.Binary) and e.op in ("==", "in") and type_fact(e) is not None:
        return Facts({type_fact(e)})
    if isinstance(e, n.Binary) and e.op == "in":
        return Facts({key_fact(e.left, e.right)})
    if isinstance(e, n.Binary) and e.op == "and":
        return pos(e.left, conditions) | pos(e.right, conditions)
    if isinstance(e, n.Binary) and e.op == "or":
        return pos(e.left, conditions) & pos(e.right, conditions)
    if isinstance(e, n.Unary) and e.op == "not":
        return neg(e.operand, conditions)
    inner = _named(e, conditions)
    return pos(inner, conditions) if inner is not None else Facts()


def neg(e: n.Expr, conditions=None) -> Facts:
    """Facts known when `e` is false."""
    if isinstance(e, n.Binary) and e.op == "!=" and \
            type_fact(n.Binary("==", e.left, e.right, e.span)) is not None:
        return Facts({type_fact(n.Binary("==", e.left, e.right, e.span))})
    if isinstance(e, n.Binary) and e.op == "and":
        return neg(e.left, conditions) & neg(e.right, conditions)
    if isinstance(e, n.Binary) and e.op == "or":
        return neg(e.left, conditions) | neg(e.right, conditions)
    if isinstance(e, n.Unary) and e.op == "not":
        return pos(e.operand, conditions)
    inner = _named(e, conditions)
    return neg(inner, conditions) if inner is not None else Facts()


def _named(e: n.Expr, conditions) -> n.Expr | None:
    """The expression a named condition stands for (None for anything else)."""
    if conditions is None or not isinstance(e, n.ConstRef):
        return None
    return conditions.node(e.name.value)
