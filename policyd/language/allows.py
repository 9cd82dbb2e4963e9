"""A decider's allow chain and the visible-field masks: the part of the generated code
after the denies. A mixin of the code generator (codegen.py)."""

from __future__ import annotations

from .codewriter import safe_comment
from .kleene import fallible
from .schema import EntitySchema

ALLOW_BITS = 20  # a decider's allow outcome: visible mask << ALLOW_BITS | index of the rule
SPECIALIZE_MAX = 64  # live allows x show rules up to which each allow has its own mask
# (past it, the copies of the mask cost more compile time than they save)


class AllowCode:

    def allows_looped(self, res: EntitySchema, action: str, live: list, allow_index: dict,
                      false: set) -> None:
        """The first allow that holds: flat `if ...: break` in one loop, since an elif chain
        nests in CPython's AST and thousands of rules would exhaust its compiler; then one
        visible mask for whichever allow it was."""
        if not live:
            self.w.line(self.no_allow(live))
            return
        self.w.line("while True:")
        with self.w.indent():
            for r in live:
                with self.w.origin(r.file, r.line):
                    self.w.comment(f"{safe_comment(r.file)}:{r.line} {r.name}")
                    if self.unknown_allow(r):
                        self.w.line(f"v = {self.kcall(r.cond, action)}")
                        self.w.line(f"if v: a = {allow_index[r.name]}; break")
                        self.w.line("if v is None: e = 1")
                    else:
                        self.w.line(f"if {self.cond(r, action)}: a = {allow_index[r.name]}; "
                                    "break")
            self.w.line(self.no_allow(live))
        static = self.visible_mask(res, action, false)
        self.w.line(f"return {static << ALLOW_BITS} | a" if static is not None
                    else f"return m << {ALLOW_BITS} | a")

    def allows_specialized(self, res: EntitySchema, action: str, live: list,
                           allow_index: dict, false: set) -> None:
        """Each allow returns its own outcome, its visible mask written for what is known
        there (its condition holds; the denies' and earlier allows' do not): a show rule
        that repeats one of them costs nothing, and the mask is often a constant."""
        false = set(false)
        for r in live:
            text = self.cond(r, action)
            with self.w.origin(r.file, r.line):
                self.w.comment(f"{safe_comment(r.file)}:{r.line} {r.name}")
                unknown = self.unknown_allow(r)
                if unknown:  # three-valued: true holds, unknown notes `e`
                    self.w.line(f"v = {self.kcall(r.cond, action)}")
                self.w.line("if v:" if unknown else f"if {text}:")
                with self.w.indent():
                    static = self.visible_mask(res, action, false, {text})
                    index = allow_index[r.name]
                    self.w.line(f"return {static << ALLOW_BITS | index}" if static is not None
                                else f"return m << {ALLOW_BITS} | {index}")
                if unknown:
                    self.w.line("if v is None: e = 1")
            false.add(text)
        self.w.line(self.no_allow(live))

    @staticmethod
    def unknown_allow(r) -> bool:
        return r.cond is not None and fallible(r.cond)

    def no_allow(self, live: list) -> str:
        """The outcome when no allow held: default deny, or `error` when one was unknown."""
        return "return ('error',) if e else None" if any(map(self.unknown_allow, live)) \
            else "return None"

    def visible_mask(self, res: EntitySchema, action: str | None, false=frozenset(),
                     true=frozenset()) -> int | None:
        """`m`: bit i set when field i of ("id", *attributes) is visible; id always is.
        Conditions in `false` (`true`) are known not to hold (to hold) here. Returns the
        mask when that makes it a constant (no line written), else None with `m` set."""
        fields = ("id",) + res.fields
        shows = [r for r in self.cs.rules.get(res.name, ()) if r.effect == "show"]
        static, dynamic, seen = 1, [], set()
        if not shows:
            static = (1 << len(fields)) - 1  # no show rule: every field
        for r in shows:
            bits = sum(1 << fields.index(f) for f in r.fields)
            text = self.cond(r, action)
            if text in false or (text, bits) in seen:
                continue
            seen.add((text, bits))
            if r.cond is None or text in true:
                static |= bits
            else:
                dynamic.append((r, text, bits))
        dynamic = [(r, text, bits) for r, text, bits in dynamic if bits & ~static]
        if not dynamic and (true or false):
            return static
        self.w.line(f"m = {static}")
        for k, (r, text, bits) in enumerate(dynamic):
            with self.w.origin(r.file, r.line):
                # the mask only grows: a rule whose fields are all visible already is skipped
                skip = f"m & {bits} != {bits} and " if k else ""  # the first adds a field
                self.w.line(f"if {skip}{text}: m |= {bits}  # {r.name}")
        return None
