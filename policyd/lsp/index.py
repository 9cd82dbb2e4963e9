"""Names in a set and what is at a cursor: definitions, hover text, completions and
document symbols, read from the parsed files (so they work while the set does not
check), with the checker's names for rules."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..language import nodes as n
from ..language.printer import expr
from ..testing import nodes as t
from .analysis import Analysis

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CHAIN = re.compile(r"((?:[A-Za-z_][A-Za-z0-9_]*\.)+)([A-Za-z_][A-Za-z0-9_]*)?$")
_POLICY = re.compile(r"^\s*policy\s+\w+\s+for\s+(\w+)")
_HEAD = re.compile(r"^\s*(?:[A-Za-z_]\w*\s*:\s*)?(allow|deny|limit|show|write)\s+([\w\s,]*)$")


@dataclass(frozen=True)
class Place:
    file: str
    line: int  # 1-based, as spans are
    column: int
    length: int


def _place(file: str, span: n.Span, name: str) -> Place:
    return Place(file, span.line, span.column, len(name))


class Index:
    def __init__(self, analysis: Analysis):
        self.analysis = analysis
        self.types: dict[str, tuple[str, object, str]] = {}  # name -> (kind, decl, file)
        self.context: tuple[n.ContextDecl, str] | None = None
        self.roles: dict[str, tuple[n.RoleDecl, str]] = {}
        self.consts: dict[str, tuple[n.ConstDecl, str]] = {}
        self.policies: dict[str, tuple[n.PolicyDecl, str]] = {}
        self.fixtures: dict[str, tuple[t.FixtureDecl, str]] = {}
        self.conditions: dict[str, tuple[n.ConditionDecl, str]] = {}  # 1.2
        for file, tree in analysis.policies.items():
            for d in tree.decls:
                self._add(d, file)
        for file, tests in analysis.tests.items():
            for f in tests.fixtures:
                self.fixtures[f.name.value] = (f, file)

    def _add(self, d, file: str) -> None:
        kinds = {n.PrincipalDecl: "principal", n.ResourceDecl: "resource",
                 n.RecordDecl: "record", n.EntityDecl: "entity"}
        if type(d) in kinds:
            self.types[d.name.value] = (kinds[type(d)], d, file)
        elif isinstance(d, n.ContextDecl):
            self.context = (d, file)
        elif isinstance(d, n.RoleDecl):
            self.roles[d.name.value] = (d, file)
        elif isinstance(d, n.ConstDecl):
            self.consts[d.name.value] = (d, file)
        elif isinstance(d, n.PolicyDecl):
            self.policies[d.name.value] = (d, file)
            for c in d.conditions:
                self.conditions.setdefault(c.name.value, (c, file))
        elif isinstance(d, n.ConditionDecl):
            self.conditions[d.name.value] = (d, file)

    # ---- where the cursor is ------------------------------------------------------------

    def policy_at(self, file: str, line: int) -> n.PolicyDecl | None:
        tree = self.analysis.policies.get(file)
        found = None
        for d in tree.decls if tree else ():
            if isinstance(d, n.PolicyDecl) and d.span.line <= line:
                found = d
        return found

    def resource_at(self, file: str, line: int, text: str = "") -> str | None:
        """The resource type of the policy block around a line; from the text when the
        document does not parse (it rarely does while a rule is being typed)."""
        policy = self.policy_at(file, line)
        if policy is not None:
            return policy.resource.value
        found = None
        for source in text.splitlines()[:line]:
            m = _POLICY.match(source)
            if m:
                found = m.group(1)
        return found

    def attrs_of(self, root: str, path: list[str], file: str, line: int,
                 text: str = "") -> dict:
        """{name: AttrDecl} reachable as `root.path...` (records walked by type)."""
        if root == "context":
            decls = [self.context] if self.context else []
            current = {a.name.value: a for d, _ in decls for a in d.attrs}
        else:
            rtype = self.resource_at(file, line, text) if root == "resource" else None
            wanted = [rtype] if rtype else None
            current = {}
            for name, (kind, decl, _) in self.types.items():
                if kind == root and (wanted is None or name in wanted):
                    current.update({a.name.value: a for a in decl.attrs})
        for step in path:  # records by type, references by the type they name (1.2)
            attr = current.get(step)
            target = self.types.get(attr.type.name.value) if attr is not None else None
            if target is None:
                return {}
            current = {a.name.value: a for a in target[1].attrs
                       if target[0] in ("record", "entity") or a.stored or
                       getattr(target[1], "stored", False)}
        return current

    def declarer(self, attr: n.AttrDecl) -> tuple[str, str]:
        """(type name, file) of the declaration an attribute belongs to."""
        for name, (_, decl, file) in self.types.items():
            if attr in getattr(decl, "attrs", ()):
                return name, file
        return "context", self.context[1] if self.context else ""

    def attribute_at(self, file: str, text: str, line: int, col: int):
        """(the word under the cursor, the path before it, its AttrDecl or None)."""
        word, before = _word_at(text, line, col)
        if word is None:
            return None, "", None
        chain = _CHAIN.search(before + word)
        if not (chain and chain.group(1)):
            return word, "", None
        parts = chain.group(1).rstrip(".").split(".")
        return word, chain.group(1), self.attrs_of(parts[0], parts[1:], file, line).get(word)

    # ---- the features ---------------------------------------------------------------

    def definition(self, file: str, text: str, line: int, col: int) -> Place | None:
        word, _, attr = self.attribute_at(file, text, line, col)
        if word is None:
            return None
        if attr is not None:
            return _place(self.declarer(attr)[1], attr.name.span, word)
        if word in self.types:
            _, decl, decl_file = self.types[word]
            return _place(decl_file, decl.name.span, word)
        for table in (self.roles, self.consts, self.conditions, self.policies, self.fixtures):
            if word in table:
                decl, decl_file = table[word]
                return _place(decl_file, decl.name.span, word)
        return None

    def hover(self, file: str, text: str, line: int, col: int) -> str | None:
        word, path, attr = self.attribute_at(file, text, line, col)
        if word is None:
            return None
        if attr is not None:
            return _attr_hover(f"{path}{word}", attr, self.declarer(attr)[0])
        rule = self._rule_at(file, line, word)
        if rule is not None:
            return rule
        if word in self.roles:
            return self._role_hover(word)
        if word in self.consts:
            decl = self.consts[word][0]
            return f"```policyd\nconst {word} = {expr(decl.value)}\n```"
        if word in self.conditions:
            decl = self.conditions[word][0]
            return f"```policyd\ncondition {word} = {expr(decl.value)}\n```"
        if word in self.types:
            return self._type_hover(word)
        if word in self.policies:
            d = self.policies[word][0]
            return f"policy `{word}` for `{d.resource.value}`: {len(d.rules)} rules"
        if word in self.fixtures:
            f = self.fixtures[word][0]
            who = f.value.kind if f.value.type is None else f"{f.value.kind} {f.value.type.value}"
            return f"fixture `{word}`: {who} {f.value.id or ''}".rstrip()
        return None

    def _rule_at(self, file: str, line: int, word: str) -> str | None:
        policy = self.policy_at(file, line)
        if policy is None:
            return None
        for i, r in enumerate(policy.rules, 1):
            if r.span.line != line:
                continue
            labelled = r.label is not None and r.label.value == word
            if labelled or r.label is None and word == r.effect:
                name = f"{policy.name.value}.{r.label.value}" if r.label else \
                    f"{policy.name.value}#{i}"
                targets = "*" if r.targets is None else ", ".join(x.value for x in r.targets)
                return f"rule `{name}`: {r.effect} {targets} on `{policy.resource.value}`"
        return None

    def _role_hover(self, role: str) -> str:
        decl = self.roles[role][0]
        satisfied, todo = [], [role]
        while todo:  # every role `is` this one is satisfied for
            r = todo.pop()
            if r not in satisfied:
                satisfied.append(r)
                entry = self.roles.get(r)
                todo += [p.value for p in entry[0].parents] if entry else []
        parents = ", ".join(p.value for p in decl.parents)
        head = f"role `{role}`" + (f" extends {parents}" if parents else "")
        return f"{head}\n\nholds `is` for: {', '.join(sorted(satisfied))}"

    def _type_hover(self, name: str) -> str:
        kind, decl, _ = self.types[name]
        owner = f" owned by {decl.owner.value}" if getattr(decl, "owner", None) else ""
        parents = getattr(decl, "parents", ())
        within = f" in {', '.join(p.value for p in parents)}" if parents else ""
        lines = [f"{kind} `{name}`{within}{owner}", ""]
        lines += [f"- `{a.name.value}{'?' if a.optional else ''}`: `{a.type.text()}`"
                  for a in decl.attrs]
        if getattr(decl, "actions", ()):
            lines.append(f"\nactions: {', '.join(a.value for a in decl.actions)}")
        return "\n".join(lines)

    def completions(self, file: str, text: str, line: int, col: int) -> list[tuple[str, str]]:
        """(label, detail) for the cursor: attributes after `x.`, roles after `is`,
        actions and fields in rule heads, fixtures after `given`."""
        source = text.splitlines()[line - 1] if line <= len(text.splitlines()) else ""
        before = source[:col - 1]
        chain = _CHAIN.search(before)
        if chain and chain.group(1):
            parts = chain.group(1).rstrip(".").split(".")
            attrs = self.attrs_of(parts[0], parts[1:], file, line, text)
            out = [(k, a.type.text()) for k, a in attrs.items()]
            if len(parts) == 1 and parts[0] in ("principal", "resource"):
                out.append(("id", "string"))
            return out
        if re.search(r"\bis\s+\w*$", before):
            return [(r, "role") for r in self.roles]
        if re.search(r"\bin\s+\w*$", before) or re.search(r"\bin\s+\[[^\]]*$", before):
            # an entity literal: a type and its id (1.2)
            return [(f'{name}("")', f"{kind} literal") for name, (kind, _, _) in
                    self.types.items() if kind != "record"]
        if re.search(r"\bgiven\b[^{}]*$", before):
            return [(f, "fixture") for f in self.fixtures]
        head = _HEAD.match(before)
        rtype = self.resource_at(file, line, text)
        if head and rtype in self.types:
            decl = self.types[rtype][1]
            if head.group(1) in ("allow", "deny", "limit"):
                return [(a.value, "action") for a in getattr(decl, "actions", ())]
            return [("id", "field")] + [(a.name.value, "field") for a in decl.attrs]
        return []

    def symbols(self, file: str) -> list[tuple[str, str, n.Span, list]]:
        """(name, kind, span, children) for the document's outline."""
        out = []
        tree = self.analysis.policies.get(file)
        for d in tree.decls if tree else ():
            if isinstance(d, n.PolicyDecl):
                kids = [(r.label.value if r.label else f"#{i}", "rule", r.span, [])
                        for i, r in enumerate(d.rules, 1)]
                out.append((d.name.value, "policy", d.name.span, kids))
            elif isinstance(d, n.PrincipalDecl | n.ResourceDecl | n.RecordDecl | n.EntityDecl):
                kids = [(a.name.value, "attribute", a.name.span, []) for a in d.attrs]
                out.append((d.name.value, "type", d.name.span, kids))
            elif isinstance(d, n.ContextDecl):
                kids = [(a.name.value, "attribute", a.name.span, []) for a in d.attrs]
                out.append(("context", "type", d.span, kids))
            elif isinstance(d, n.RoleDecl):
                out.append((d.name.value, "role", d.name.span, []))
            elif isinstance(d, (n.ConstDecl, n.ConditionDecl)):
                out.append((d.name.value, "constant", d.name.span, []))
            elif isinstance(d, n.RoutesDecl):
                out.append((f"routes for {d.resource.value}", "routes", d.span, []))
        tests = self.analysis.tests.get(file)
        for f in tests.fixtures if tests else ():
            out.append((f.name.value, "fixture", f.name.span, []))
        for test in tests.tests if tests else ():
            out.append((test.name, "test", test.span, []))
        return out


def _word_at(text: str, line: int, col: int) -> tuple[str | None, str]:
    """The identifier under (1-based) line and column, and the text before it."""
    lines = text.splitlines()
    if not 0 < line <= len(lines):
        return None, ""
    source = lines[line - 1]
    for m in _WORD.finditer(source):
        if m.start() < col <= m.end() + 1 and (m.start() < col - 1 or col - 1 == m.start()):
            return m.group(), source[:m.start()]
    return None, ""


def _attr_hover(path: str, a: n.AttrDecl, owner: str) -> str:
    flags = [f for f, on in (("optional", a.optional), ("sensitive", a.sensitive),
                             ("stored", a.stored)) if on]
    more = f" ({', '.join(flags)})" if flags else ""
    return f"`{path}`: `{a.type.text()}`{more}\n\ndeclared by `{owner}`"
