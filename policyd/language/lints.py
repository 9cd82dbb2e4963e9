"""Warnings: policies that check but probably do not say what their author meant."""

from __future__ import annotations

from . import nodes as n
from .checked import IR, CheckedRule, CheckedSet, Op, Read
from .diagnostics import WARNING, Diagnostic

# An action whose name starts with one of these changes state: on an `owned by`
# type, allowing it without testing ownership or a role is an object-level smell.
WRITE_LIKE = ("create", "update", "delete", "edit", "write", "patch", "put", "remove", "modify",
              "destroy", "replace", "upsert", "set", "add", "cancel", "refund", "transfer",
              "share", "revoke", "grant", "approve", "archive", "purge", "restore", "upload")


def is_write_like(action: str) -> bool:
    return action.lower().startswith(WRITE_LIKE)


def _warn(rule_or_span, code: str, message: str, hint: str | None = None) -> Diagnostic:
    return Diagnostic.at(rule_or_span, code, message, hint, WARNING)


def _ops(ir: IR | None):
    stack = [ir] if ir is not None else []
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, Op):
            stack.extend(node.args)


def guards_object(rule: CheckedRule, owner: str | None) -> bool:
    """The condition tests ownership, a role, or reads the owner attribute."""
    for node in _ops(rule.cond):
        if isinstance(node, Op) and node.op in ("owns", "is"):
            return True
        if isinstance(node, Read) and node.entity == "resource" and node.attr == owner:
            return True
    return False


def lint(cs: CheckedSet, policies: list[n.PolicyDecl]) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for res_name, res in cs.resources.items():
        rules = cs.rules.get(res_name, ())
        if not any(r.effect in ("allow", "deny") for r in rules):
            out.append(_warn(res, "W204", f"no policy allows anything on `{res_name}`: every "
                             "request for it is denied"))
        elif not any(r.effect == "show" for r in rules):
            out.append(_warn(res, "W203", f"`{res_name}` has no `show` rule, so every "
                             "field is visible to whoever may read it",
                             "add `show` rules to limit what responses expose"))
        if res.owner is not None and len(cs.principals) > 1 and \
                res.by_name[res.owner].type in ("string", "set<string>"):
            out.append(_owner_warning(cs, res))
        blocked = {a for r in rules if r.effect == "deny" and r.cond is None for a in r.actions}
        for r in rules:
            out.extend(_rule_warnings(r, res.owner, blocked))
    return out


def _owner_warning(cs: CheckedSet, res) -> Diagnostic:
    """A string owner holds an id, and ids are unique only within a principal type: with
    several, `Staff "p1"` owns patient p1's record."""
    types = sorted(cs.principals)
    return _warn(res, "W207", f"`{res.name}` is owned by `{res.owner}`, a string of "
                 f"principal ids, and {len(types)} principal types are declared "
                 f"({', '.join(types)}): `principal owns resource` holds for any of them "
                 "whose id matches",
                 f"test the type too: `principal.type == \"{types[0]}\" and principal owns "
                 "resource`")


def _rule_warnings(r: CheckedRule, owner: str | None, blocked: set[str]) -> list[Diagnostic]:
    out = []
    if r.effect in ("allow", "deny") and not r.actions:
        return out  # every action it named is undeclared: that error says enough
    if r.effect == "allow" and r.cond is None:
        out.append(_warn(r, "W201", f"`{r.name}` allows {_list(r.actions)} to everyone",
                         "add a `when` condition, or write `when true` if that is the intent"))
    if r.effect == "allow" and owner is not None and r.cond is not None:
        risky = [a for a in r.actions if is_write_like(a)]
        if risky and not guards_object(r, owner):
            out.append(_warn(r, "W202", f"`{r.name}` allows {_list(risky)} without testing "
                             "ownership or a role (broken object level authorization?)",
                             "add `principal owns resource` or a role test"))
    if r.effect == "allow" and r.actions and all(a in blocked for a in r.actions):
        out.append(_warn(r, "W205", f"`{r.name}` can never apply: an unconditional deny "
                         f"covers {_list(r.actions)}"))
    return out


def _list(actions) -> str:
    return ", ".join(actions) if actions else "nothing"
