"""The generated functions of single rules besides deciders: the rate buckets of an
action, the field masks of `show` and `write`, a rule's `output` and its condition on
its own (explain, coverage). A mixin of codegen's generator: `self.w`, `self.expr`,
`self.cond` are its."""

from __future__ import annotations

from .checked import CheckedRule
from .codewriter import safe_comment
from .kleene import fallible
from .schema import STRING, EntitySchema

ARGS = "pid, P, rid, R, C, pt"
KEY_SHORT = 64  # bucket key strings longer than this are kept as a 16-byte digest


class RuleFunctionCode:
    def limiter(self, fn: str, res: EntitySchema, action: str, limits: list) -> None:
        """The buckets a request takes a token from: ((rule, *key values), T, B * T), both
        in whole microseconds, for every limit rule on the action whose condition holds."""
        self.w.comment(f"{res.name}.{action}: the rate buckets that apply")
        self.w.line(f"def {fn}({ARGS}):")
        lead = 0  # the leading unconditional limits: a list literal, in source order
        while lead < len(limits) and limits[lead].cond is None:
            lead += 1
        with self.w.indent():
            self.w.line("b = [" if lead else "b = []")
            for i, r in enumerate(limits):
                lim = r.limit
                keys = ", ".join(self._key(k, action) for k in lim.keys)
                interval, limit = lim.bucket  # whole microseconds (checked.rate)
                spec = f"(({r.name!r}, {keys}), {interval!r}, {limit!r})"
                with self.w.origin(r.file, r.line), self.w.indent(i < lead):
                    self.w.comment(f"{safe_comment(r.file)}:{r.line} {r.name}")
                    self.w.line(f"{spec}," if i < lead else
                                f"if {self.cond(r, action)}: b.append({spec})")
                if i == lead - 1:
                    self.w.line("]")
            self.w.line("return b")
        self.w.line()

    def _key(self, key, action: str | None) -> str:
        """A bucket key part of bounded size: a long string is replaced by its digest."""
        text = self.expr(key, action)
        if key.type != STRING:
            return text
        return f"({text} if len({text}) <= {KEY_SHORT} else _rt.digest({text}))"

    def mask_function(self, fn: str, res: EntitySchema, effect: str) -> None:
        """The fields granted by `show` (or `write`) rules as a bit mask, any action."""
        fields = ("id",) + res.fields
        self.w.comment(f"{res.name}: fields granted by `{effect}` rules, as a bit mask")
        self.w.line(f"def {fn}({ARGS}, act):")
        with self.w.indent():
            if effect == "show":
                self.visible_mask(res, None)
            else:
                self.w.line("m = 0")
                for r in self.cs.rules.get(res.name, ()):
                    if r.effect == "write":
                        bits = sum(1 << fields.index(f) for f in r.fields)
                        with self.w.origin(r.file, r.line):
                            self.w.line(f"if {self.cond(r, None)}: m |= {bits}  # {r.name}")
            self.w.line("return m")
        self.w.line()

    def output_function(self, fn: str, rule: CheckedRule, outputs: dict) -> None:
        """A rule's `output` values as a tuple, in its keys' order (1.2)."""
        with self.w.origin(rule.file, rule.line):
            self.w.comment(f"{safe_comment(rule.file)}:{rule.line} {rule.name}: its output")
            values = ", ".join(self.expr(ir, None) for _, ir in rule.output)
            self.w.line(f"def {fn}({ARGS}, act): return ({values},)")
        self.w.line()
        keys = tuple(k for k, _ in rule.output)
        types = tuple(ir.type for _, ir in rule.output)
        for action in rule.actions:
            outputs[(rule.resource, action)] = outputs.get((rule.resource, action), ()) + (
                (rule.effect, rule.name, fn, keys, types),)

    def condition(self, fn: str, rule: CheckedRule) -> None:
        """A rule's condition on its own (explain, coverage): True or False, or None where
        its arithmetic gave no finite number (kleene.py)."""
        w = self.explain
        with w.origin(rule.file, rule.line):
            w.comment(f"{safe_comment(rule.file)}:{rule.line} {rule.name}")
            value = self.kcall(rule.cond, None) if rule.cond is not None and \
                fallible(rule.cond) else self.cond(rule, None)
            w.line(f"def {fn}({ARGS}, act): return {value}")
