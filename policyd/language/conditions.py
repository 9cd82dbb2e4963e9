"""Named conditions (1.2): `condition NAME = E` in a policy, or at the top level for every
policy. Using one is exactly inlining it; it is checked once per policy that sees it,
with nothing known beforehand (its guards are its own), and conditions that use each
other in a cycle are an error (E342) instead of an endless expansion.
"""

from __future__ import annotations

from collections.abc import Callable

from . import nodes as n
from .checked import IR, Const
from .diagnostics import Diagnostic
from .schema import ERROR


def referenced(e, names) -> set[str]:
    """The condition names an expression uses."""
    found, todo = set(), [e]
    while todo:
        node = todo.pop()
        if isinstance(node, n.ConstRef):
            if node.name.value in names:
                found.add(node.name.value)
            continue
        for attr in getattr(node, "__slots__", ()):
            child = getattr(node, attr)
            if isinstance(child, tuple):
                todo.extend(c for c in child if hasattr(c, "__slots__"))
            elif hasattr(child, "__slots__") and not isinstance(child, n.Span | n.Name):
                todo.append(child)
    return found


def cyclic(decls: dict[str, n.ConditionDecl]) -> list[list[str]]:
    """Each cycle among the conditions, once (by its members)."""
    uses = {name: sorted(referenced(d.value, decls)) for name, d in decls.items()}
    state: dict[str, int] = {}
    cycles, seen = [], set()
    for root in uses:
        if root in state:
            continue
        state[root], path, stack = 1, [root], [iter(uses[root])]
        while stack:
            for ref in stack[-1]:
                if state.get(ref) == 1:
                    cycle = path[path.index(ref):] + [ref]
                    if frozenset(cycle) not in seen:
                        seen.add(frozenset(cycle))
                        cycles.append(cycle)
                elif ref not in state:
                    state[ref] = 1
                    path.append(ref)
                    stack.append(iter(uses[ref]))
                    break
            else:
                state[path.pop()] = 2
                stack.pop()
    return cycles


class Conditions:
    """The named conditions one policy sees (its own over the top-level ones), checked on
    first use with `check(expr) -> IR` and kept."""

    def __init__(self, decls: dict[str, n.ConditionDecl], check: Callable[[n.Expr], IR],
                 report: Callable[[Diagnostic], None]):
        self.decls, self.check, self.report = decls, check, report
        self.checked: dict[str, IR] = {}
        self.broken: set[str] = set()
        for cycle in cyclic(decls):
            self.broken.update(cycle)
            first = decls[cycle[0]]
            report(Diagnostic.at(first.name.span, "E342", "conditions use each other in a "
                                 "cycle: " + " -> ".join(cycle),
                                 "a condition may use other conditions, never itself"))

    def node(self, name: str) -> n.Expr | None:
        """The expression a name stands for (guards.py); None for a broken one."""
        d = self.decls.get(name)
        return None if d is None or name in self.broken else d.value

    def __call__(self, name: str, span: n.Span) -> IR | None:
        d = self.decls.get(name)
        if d is None:
            return None
        if name in self.broken:
            return Const(None, ERROR)
        found = self.checked.get(name)
        if found is None:
            found = self.checked[name] = self.check(d.value)
        return found

    def check_all(self) -> None:
        """Check the ones no rule used (a policy's own are checked where declared)."""
        for name, d in self.decls.items():
            if name not in self.checked and name not in self.broken:
                self(name, d.span)
