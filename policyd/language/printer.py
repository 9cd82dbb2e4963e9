"""`policyd fmt` for policy files: the AST printed in one canonical layout.

Expressions get exactly the parentheses the grammar needs to read back the same tree
(so `(a or b) or c` loses its parentheses and `a or (b or c)` keeps them); a
condition too long for its line breaks before each top-level `and`/`or`, with a
fixed indent. Values are printed from what was parsed: strings as JSON, numbers
without exponents. Comments and blank lines are the layout module's.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from functools import cache

from . import nodes as n
from .frontend import grammar_text
from .layout import INDENT, WIDTH, Entry, render, scan
from .parser import parse, policy_frontend

OR, AND, NOT, TEST, SUM, PROD, UNARY, POSTFIX = range(1, 9)
_COMPARES = ("==", "!=", "<=", ">=", "<", ">", "in", "contains", "contains_any",
             "contains_all", "like")
# words the grammar lets stand as names where attributes, fields and keys are named
NAME_WORDS = {"write", "show", "limit", "record", "stored", "routes", "entity", "condition",
              "output"}
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@cache
def keywords() -> frozenset[str]:
    """Every word the grammar reserves (its quoted literals): such a key must be quoted."""
    return frozenset(re.findall(r'"([a-z_]+)"', grammar_text()))


def key_text(key: str, allowed=NAME_WORDS) -> str:
    if _IDENT.fullmatch(key) and (key not in keywords() or key in allowed):
        return key
    return json.dumps(key, ensure_ascii=False)


def number_text(value: int | float) -> str:
    if isinstance(value, int):
        return str(value)
    text = format(Decimal(repr(value)), "f")
    return text if "." in text else text + ".0"


def _level(e) -> int:
    if isinstance(e, n.Binary):
        if e.op == "or":
            return OR
        if e.op == "and":
            return AND
        if e.op in _COMPARES:
            return TEST
        return SUM if e.op in ("+", "-") else PROD
    if isinstance(e, n.Unary):
        return NOT if e.op == "not" else UNARY
    if isinstance(e, n.Has | n.Is | n.Owns):
        return TEST
    if isinstance(e, n.Attr | n.Index):
        return POSTFIX
    return POSTFIX + 1


def expr(e, need: int = 0) -> str:
    """`e` as text, in parentheses if its level is below `need`."""
    text = _expr(e)
    return f"({text})" if _level(e) < need else text


def _expr(e) -> str:
    if isinstance(e, n.Literal):
        if isinstance(e.value, bool):
            return "true" if e.value else "false"
        if isinstance(e.value, str):
            return json.dumps(e.value, ensure_ascii=False)
        return number_text(e.value)
    if isinstance(e, n.Root):
        return e.name
    if isinstance(e, n.ConstRef):
        return e.name.value
    if isinstance(e, n.SetLit):
        return "[" + ", ".join(expr(i) for i in e.items) + "]"
    if isinstance(e, n.RecordLit):
        fields = ", ".join(f"{key_text(f.key)}: {expr(f.value)}" for f in e.fields)
        return "{ " + fields + " }" if fields else "{}"
    if isinstance(e, n.Call):
        return f"{e.func.value}(" + ", ".join(expr(a) for a in e.args) + ")"
    if isinstance(e, n.Attr):
        return f"{expr(e.obj, POSTFIX)}.{e.name.value}"
    if isinstance(e, n.Index):
        return f"{expr(e.obj, POSTFIX)}[{expr(e.key)}]"
    if isinstance(e, n.Unary):
        if e.op == "not":
            return f"not {expr(e.operand, NOT)}"
        return f"-{expr(e.operand, UNARY)}"
    if isinstance(e, n.Has):
        return f"{expr(e.obj, SUM)} has {e.name.value}"
    if isinstance(e, n.Is):
        return f"{expr(e.obj, SUM)} is {e.role.value}"
    if isinstance(e, n.Owns):
        return f"{expr(e.left, SUM)} owns {expr(e.right, SUM)}"
    level = _level(e)
    if level in (OR, AND):
        return f"{expr(e.left, level)} {e.op} {expr(e.right, level + 1 if level == OR else NOT)}"
    if level == TEST:
        return f"{expr(e.left, SUM)} {e.op} {expr(e.right, SUM)}"
    return f"{expr(e.left, level)} {e.op} {expr(e.right, level + 1)}"


def chain(e) -> tuple[str, list]:
    """A top-level and/or chain as (operator, operands), for breaking long conditions."""
    if not isinstance(e, n.Binary) or e.op not in ("and", "or"):
        return "", [e]
    op, parts, node = e.op, [], e
    while isinstance(node, n.Binary) and node.op == op:
        parts.append(node.right)
        node = node.left
    parts.append(node)
    return op, parts[::-1]


def clause(word: str, e, indent: int, head: str, head_pad: int) -> list[str]:
    """` when <e>` after `head` (a line that will be indented by `head_pad` columns): on
    its line if it fits, else on the next line, else broken before each and/or of the
    condition (nested ones in parentheses)."""
    one = f"{head} {word} {expr(e)}"
    if head_pad + len(one) <= WIDTH:
        return [one]
    pad = INDENT * (indent + 2)
    if len(pad) + len(word) + 1 + len(expr(e)) <= WIDTH:
        return [head, f"{pad}{word} {expr(e)}"]
    return broken(f"{head} {word} ", e, 0, pad, head_pad)


def broken(prefix: str, e, need: int, pad: str, first_pad: int) -> list[str]:
    """`prefix` + `e` over several lines: each operand of its top-level and/or chain on
    a line of its own at `pad`, an operand too long broken the same way, one level in."""
    text = prefix + expr(e, need)
    if first_pad + len(text) <= WIDTH:
        return [text]
    if isinstance(e, n.Unary) and e.op == "not" and chain(e.operand)[0]:
        # `not (a and b ...)`: the chain inside the parentheses is broken the same way
        paren = _level(e) < need
        lines = broken(prefix + ("(" if paren else "") + "not ", e.operand, NOT, pad,
                       first_pad)
        if paren:
            lines[-1] += ")"
        return lines
    op, parts = chain(e)
    if not op:
        return [text]
    paren = _level(e) < need
    inner = pad + INDENT * 2 if paren else pad
    level = OR if op == "or" else AND  # the chain's left end at its level, the rest above
    lines = broken(prefix + ("(" if paren else ""), parts[0], level, inner, first_pad)
    for p in parts[1:]:
        lines += broken(f"{inner}{op} ", p, AND if op == "or" else NOT, inner + INDENT * 2,
                        0)
    if paren:
        lines[-1] += ")"
    return lines


def _attr_decl(a: n.AttrDecl) -> str:
    flags = "".join(f" {f}" for f, on in (("sensitive", a.sensitive), ("stored", a.stored))
                    if on)
    return f"{a.name.value}{'?' if a.optional else ''}: {a.type.text()}{flags}"


def _names(names) -> str:
    return ", ".join(x.value for x in names)


def rule_lines(r: n.Rule, indent: int) -> list[str]:
    head = f"{r.label.value}: " if r.label is not None else ""
    targets = "*" if r.targets is None else _names(r.targets)
    if r.limit is not None:
        s = r.limit
        burst = f" burst {number_text(s.burst)}" if s.burst is not None else ""
        keys = ", ".join(expr(k) for k in s.keys)
        head += f"limit {targets}: {number_text(s.count)} per {s.period_text}{burst} by {keys}"
    else:
        head += f"{r.effect} {targets}"
    lines = [head]
    for word, e in (("when", r.when), ("unless", r.unless)):
        if e is not None:
            head_pad = len(INDENT * indent) if len(lines) == 1 else 0
            lines[-1:] = clause(word, e, indent, lines[-1], head_pad)
    if r.output:
        lines += output_lines(r.output, indent + 1)
    return lines


def output_lines(fields, indent: int) -> list[str]:
    """`output { k: v, ... }` on a line of its own below the rule, one field a line when
    it is too long."""
    pad = INDENT * indent
    items = [f"{key_text(f.key.value)}: {expr(f.value)}" for f in fields]
    one = f"{pad}output {{ {', '.join(items)} }}"
    if len(one) <= WIDTH:
        return [one]
    return [f"{pad}output {{", *(f"{pad}{INDENT}{i}," for i in items), f"{pad}}}"]


def condition_lines(d: n.ConditionDecl, indent: int) -> list[str]:
    """`condition NAME = E`, broken before each top-level and/or when too long."""
    pad = INDENT * indent
    return broken(f"condition {d.name.value} = ", d.value, 0, pad + INDENT * 2, len(pad))


def _block(entries: list, head: str, span, members: list[Entry], closes) -> None:
    entries.append(Entry(span.line, 0, [head + " {" if members else head + " {}"], "open"
                         if members else "item"))
    if members:
        entries.extend(members)
        entries.append(Entry(closes.get(span.line, members[-1].line), 0, ["}"], "close"))


def _routes(d: n.RoutesDecl) -> list[Entry]:
    wm = max((len(r.method.value) for r in d.routes), default=0)
    wp = max((len(r.path) for r in d.routes), default=0)
    return [Entry(r.span.line, 1, [f"{r.method.value:<{wm}} {r.path:<{wp}} -> "
                                   f"{r.action.value}"]) for r in d.routes]


def decl_entries(d, closes: dict[int, int]) -> list[Entry]:
    out: list[Entry] = []

    def attrs(items) -> list[Entry]:
        return [Entry(a.span.line, 1, [_attr_decl(a)]) for a in items]

    if isinstance(d, n.PrincipalDecl):
        _block(out, f"principal {d.name.value}{_header(d.parents, None, d.stored)}",
               d.name.span, attrs(d.attrs), closes)
    elif isinstance(d, n.EntityDecl):
        head = f"entity {d.name.value}{_header(d.parents, None, False)}"
        if d.attrs:
            _block(out, head, d.name.span, attrs(d.attrs), closes)
        else:
            out.append(Entry(d.name.span.line, 0, [head]))
    elif isinstance(d, n.ConditionDecl):
        out.append(Entry(d.span.line, 0, condition_lines(d, 0)))
    elif isinstance(d, n.ContextDecl):
        _block(out, "context", d.span, attrs(d.attrs), closes)
    elif isinstance(d, n.RecordDecl):
        _block(out, f"record {d.name.value}", d.name.span, attrs(d.attrs), closes)
    elif isinstance(d, n.ResourceDecl):
        members = attrs(d.attrs)
        if d.actions:
            members.append(Entry(d.actions[0].span.line, 1, [f"actions {_names(d.actions)}"]))
            members.sort(key=lambda e: e.line)
        _block(out, f"resource {d.name.value}{_header(d.parents, d.owner, d.stored)}",
               d.name.span, members, closes)
    elif isinstance(d, n.RoleDecl):
        parents = f" extends {_names(d.parents)}" if d.parents else ""
        out.append(Entry(d.span.line, 0, [f"role {d.name.value}{parents}"]))
    elif isinstance(d, n.ConstDecl):
        out.append(Entry(d.span.line, 0, [f"const {d.name.value} = {expr(d.value)}"]))
    elif isinstance(d, n.PolicyDecl):
        rules = [Entry(r.span.line, 1, rule_lines(r, 1)) for r in d.rules]
        rules += [Entry(c.span.line, 1, condition_lines(c, 1)) for c in d.conditions]
        rules.sort(key=lambda e: e.line)
        _block(out, f"policy {d.name.value} for {d.resource.value}", d.name.span, rules,
               closes)
    elif isinstance(d, n.RoutesDecl):
        _block(out, f"routes for {d.resource.value}", d.span, _routes(d), closes)
    return out


def _header(parents, owner, stored: bool) -> str:
    """What follows a type's name: `in T, ...`, `owned by A`, `stored`."""
    text = f" in {_names(parents)}" if parents else ""
    text += f" owned by {owner.value}" if owner is not None else ""
    return text + (" stored" if stored else "")


def _brace_lines(closes: dict[tuple[int, int], int]) -> dict[int, int]:
    """The closing line of the first block opened on each line."""
    out: dict[int, int] = {}
    for (line, _col), close in sorted(closes.items()):
        out.setdefault(line, close)
    return out


def format_policy(text: str, file: str = "<policy>") -> str:
    """The canonical layout of a policy file; raises PolicyError (and changes nothing)
    for text that does not parse."""
    tree = parse(text, file)
    comments, closes = scan(policy_frontend().lark, text)
    by_line = _brace_lines(closes)
    entries = [e for d in tree.decls for e in decl_entries(d, by_line)]
    if not entries:
        return "".join(f"{c.text}\n" for c in comments)
    return render(entries, comments, text)
