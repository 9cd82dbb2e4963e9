"""Flow-sensitive guards: what a condition proves present when it is true or false.

A fact is `(path, attribute)` for `E has A` (the path written without positions,
`resource.project`) or `("[]", map, key)` for `k in m`. A read of an optional
attribute, or of a map value that is not a set, checks only when a fact guards it
on every path to the read (through and, or, not, unless).
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


def pos(e: n.Expr) -> Facts:
    """Facts known when `e` is true."""
    if isinstance(e, n.Has):
        return Facts({has_fact(e.obj, e.name.value)})
    if isinstance(e, n.Binary) and e.op == "in":
        return Facts({key_fact(e.left, e.right)})
    if isinstance(e, n.Binary) and e.op == "and":
        return pos(e.left) | pos(e.right)
    if isinstance(e, n.Binary) and e.op == "or":
        return pos(e.left) & pos(e.right)
    if isinstance(e, n.Unary) and e.op == "not":
        return neg(e.operand)
    return Facts()


def neg(e: n.Expr) -> Facts:
    """Facts known when `e` is false."""
    if isinstance(e, n.Binary) and e.op == "and":
        return neg(e.left) & neg(e.right)
    if isinstance(e, n.Binary) and e.op == "or":
        return neg(e.left) | neg(e.right)
    if isinstance(e, n.Unary) and e.op == "not":
        return pos(e.operand)
    return Facts()
