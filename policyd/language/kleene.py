"""Conditions that hold arithmetic, evaluated in Kleene's three-valued logic. A mixin of
the code generator (codegen.py).

Arithmetic that gives no finite number makes the comparison that reads it unknown
(None), and `and`, `or` and `not` combine unknowns as Kleene does: `false and unknown`
is false, `true or unknown` is true, anything else with an unknown is unknown. A rule
then holds when its condition is true; a deny whose condition is unknown denies, with
reason `error` (fail closed). So a decision does not depend on the order conditions
are evaluated in (the rule index and the masks reorder them), and SQL, whose NULL
follows the same logic, decides a plan's residual exactly as `check` does.

Each such condition is one generated function `kN(pid, P, rid, R, C, pt, act)` that
returns True, False or None; a condition without arithmetic is the plain Python
expression it always was (two-valued, as fast as before).
"""

from __future__ import annotations

import functools
import itertools

from .checked import Op

ARITH = ("add", "sub", "mul")


@functools.lru_cache(maxsize=4096)
def fallible(ir) -> bool:
    """Whether a condition reads arithmetic: its value may be unknown."""
    return isinstance(ir, Op) and (ir.op in ARITH or any(fallible(a) for a in ir.args))


class KleeneCode:

    def kleene_functions(self, res, rules) -> None:
        """A `kN` for each rule condition of `res` that holds arithmetic (written before
        the functions that call them)."""
        for r in rules:
            if r.cond is not None and fallible(r.cond):
                self.kleene_function(res.name, r.cond)

    def kleene_function(self, rtype: str, ir) -> str:
        name = self.kfns.get((rtype, ir))
        if name is None:
            name = self.kfns[(rtype, ir)] = f"k{len(self.kfns)}"
            self.w.comment("a condition with arithmetic: True, False, or None when a result "
                           "is not a finite number (language/kleene.py)")
            self.w.line(f"def {name}(pid, P, rid, R, C, pt, act):")
            with self.w.indent():
                self.kleene(ir, "u0", itertools.count(1))
                self.w.line("return u0")
            self.w.line()
        return name

    def kcall(self, ir, action: str | None) -> str:
        """The call of a condition's `kN`, for `action` (None: the caller's `act`)."""
        name = self.kfns[(self.resource.name, ir)]
        return f"{name}(pid, P, rid, R, C, pt, {'act' if action is None else repr(action)})"

    def kleene(self, ir, target: str, names) -> None:
        """Statements setting `target` to `ir`'s value: True, False or None (unknown)."""
        w = self.w
        if not fallible(ir):
            w.line(f"{target} = {self.expr(ir, None)}")
            return
        if ir.op == "not":
            self.kleene(ir.args[0], target, names)
            w.line(f"if {target} is not None: {target} = not {target}")
            return
        if ir.op in ("and", "or"):
            absorbing = ir.op == "or"  # True absorbs an `or`, False an `and`
            self.kleene(ir.args[0], target, names)
            w.line(f"if {target} is not {absorbing}:")
            with w.indent():
                other = f"u{next(names)}"
                self.kleene(ir.args[1], other, names)
                w.line(f"{target} = {absorbing} if {other} is {absorbing} else None if "
                       f"{target} is None or {other} is None else {not absorbing}")
            return
        w.line("try:")  # a comparison (or test) of an arithmetic result
        w.line(f"    {target} = {self.expr(ir, None)}")
        w.line("except _rt.NonFinite:")
        w.line(f"    {target} = None")
