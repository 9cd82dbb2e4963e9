"""Checks a parsed policy set against its declarations and produces the CheckedSet.

Every error of the set is collected (sorted by position) before PolicyError is
raised; warnings travel on the CheckedSet.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from . import nodes as n
from .checked import HORIZON_US, US, CheckedRule, CheckedSet, Const, Limit, rate
from .conditions import Conditions
from .declarations import DeclarationChecks
from .diagnostics import Diagnostic, PolicyError, did_you_mean
from .exprs import IMPLICIT, ExprChecker, Facts, Scope
from .lints import lint
from .outputs import check_output
from .routes import check_routes
from .schema import ERROR, IP, NUMBER, STRING, TIME, EntitySchema, RoleGraph

_KEY_TYPES = (STRING, NUMBER, "bool", IP, TIME)
MAX_LIMIT_COUNT = 1_000_000_000  # tokens per period or burst; beyond it, no limit at all
MAX_RULES_PER_TYPE = (1 << 20) - 1  # a decider names its allow rule in 20 bits of an int


class Checker(DeclarationChecks):
    def __init__(self, files: Iterable[n.PolicyFile], sources: dict[str, str], version: str):
        self.files = list(files)
        self.sources = sources
        self.version = version
        self.diags: list[Diagnostic] = []
        self.principals: dict[str, EntitySchema] = {}
        self.resources: dict[str, EntitySchema] = {}
        self.context: EntitySchema | None = None
        self.roles = RoleGraph({})
        self.records: dict[str, EntitySchema] = {}
        self.entities: dict[str, EntitySchema] = {}
        self.role_attrs: set[str] = set()  # principal attributes `is` tests read
        self.constants: dict[str, Const] = {}

    def report(self, d: Diagnostic) -> None:
        self.diags.append(d)

    def error(self, span: n.Span, code: str, message: str, hint: str | None = None) -> None:
        self.report(Diagnostic.at(span, code, message, hint))

    def decls(self, kind: type) -> list:
        return [d for f in self.files for d in f.decls if isinstance(d, kind)]

    def run(self) -> CheckedSet:
        self.collect_type_names()
        self.check_records()
        self.check_entities()
        self.check_roles()
        self.check_constants()
        rules = self.check_policies()
        routes = check_routes(self.decls(n.RoutesDecl), self.resources, self.report)
        checked = CheckedSet(self.principals, self.resources, self.context, self.roles, rules,
                             self.sources, self.version, constants=self.constants,
                             records=self.records, role_attrs=tuple(sorted(self.role_attrs)),
                             routes=routes, entities=self.entities)
        self.diags.extend(lint(checked, self.decls(n.PolicyDecl)))
        self.diags = list(dict.fromkeys(self.diags))  # a shared condition, checked per policy
        if any(d.is_error for d in self.diags):
            raise PolicyError(self.diags, self.sources)
        warnings = tuple(sorted(self.diags, key=Diagnostic.sort_key))
        return CheckedSet(**{**checked.__dict__, "warnings": warnings})

    # ---- roles -------------------------------------------------------------------

    def check_roles(self) -> None:
        decls = self.decls(n.RoleDecl)
        declared = {d.name.value for d in decls}
        parents: dict[str, tuple[str, ...]] = {}
        spans: dict[str, n.Span] = {}
        for d in decls:
            if d.name.value in parents:
                self.error(d.name.span, "E110", f"role `{d.name.value}` is declared twice")
                continue
            parents[d.name.value] = tuple(p.value for p in d.parents)
            spans[d.name.value] = d.name.span
            for p in d.parents:
                if p.value not in declared:
                    self.error(p.span, "E111", f"unknown role `{p.value}`",
                               did_you_mean(p.value, declared))
        self._cycles(parents, spans)
        self.roles = RoleGraph(parents)

    def _cycles(self, parents: dict, spans: dict) -> None:
        """Every inheritance cycle, once; an explicit stack, so no depth of `extends`
        chains can exhaust Python's recursion limit."""
        state: dict[str, int] = {}  # 1 on the current path, 2 done
        reported: set[frozenset] = set()
        for root in parents:
            if root in state:
                continue
            state[root], path, stack = 1, [root], [iter(parents[root])]
            while stack:
                for p in stack[-1]:
                    if p not in parents:
                        continue
                    if state.get(p) == 1:
                        cycle = path[path.index(p):] + [p]
                        if frozenset(cycle) not in reported:
                            reported.add(frozenset(cycle))
                            self.error(spans[p], "E112", "role inheritance cycle: "
                                       + " extends ".join(cycle))
                    elif p not in state:
                        state[p] = 1
                        path.append(p)
                        stack.append(iter(parents[p]))
                        break
                else:
                    state[path.pop()] = 2
                    stack.pop()

    # ---- constants -----------------------------------------------------------------

    def check_constants(self) -> None:
        scope = Scope({}, None, None, {}, {}, self.report, const_only=True)
        for d in self.decls(n.ConstDecl):
            if d.name.value in self.constants:
                self.error(d.name.span, "E113", f"constant `{d.name.value}` is declared twice")
                continue
            value = ExprChecker(scope).expr(d.value, frozenset())
            if value.type != ERROR and not isinstance(value, Const):
                self.error(d.value.span, "E304", "a constant's value must be a literal")
                continue
            self.constants[d.name.value] = value

    # ---- policies --------------------------------------------------------------------

    def named(self, decls, taken: dict) -> dict[str, n.ConditionDecl]:
        """Conditions by name: one name once, never a constant's (E341)."""
        out: dict[str, n.ConditionDecl] = {}
        for d in decls:
            name = d.name.value
            first = out.get(name) or taken.get(name)
            if first is not None or name in self.constants:
                where = f" (first at {first.span})" if first is not None else \
                    " (a constant has that name)"
                self.error(d.name.span, "E341", f"condition `{name}` is declared twice{where}")
                continue
            out[name] = d
        return out

    def check_policies(self) -> dict[str, tuple[CheckedRule, ...]]:
        self.shared_conditions = self.named(self.decls(n.ConditionDecl), {})
        rules: dict[str, list[CheckedRule]] = {r: [] for r in self.resources}
        seen: dict[str, n.Span] = {}
        for p in self.decls(n.PolicyDecl):
            if p.name.value in seen:
                self.error(p.name.span, "E114", f"policy `{p.name.value}` is declared twice "
                           f"(first at {seen[p.name.value]})")
                continue
            seen[p.name.value] = p.name.span
            res = self.resources.get(p.resource.value)
            if res is None:
                if p.resource.value not in {d.name.value for d in self.decls(n.ResourceDecl)}:
                    self.error(p.resource.span, "E115", f"unknown resource type "
                               f"`{p.resource.value}`", did_you_mean(p.resource.value,
                                                                   self.resources))
                continue
            rules[res.name].extend(self.policy(p, res))
        for name, found in rules.items():
            if len(found) > MAX_RULES_PER_TYPE:
                res = self.resources[name]
                self.report(Diagnostic.at(res, "E191", f"`{name}` has {len(found)} rules; at "
                                          f"most {MAX_RULES_PER_TYPE} per resource type"))
        return {r: tuple(v) for r, v in rules.items()}

    def policy(self, p: n.PolicyDecl, res: EntitySchema) -> list[CheckedRule]:
        scope = Scope(self.principals, res, self.context, self.roles, self.constants, self.report,
                      records=self.records, role_attrs=self.role_attrs, entities=self.entities,
                      resources_all=self.resources)
        own = self.named(p.conditions, self.shared_conditions)
        scope.conditions = Conditions({**self.shared_conditions, **own},
                                      lambda e: ExprChecker(scope).bool_expr(e, Facts()),
                                      self.report)
        out, labels = [], {}
        for index, rule in enumerate(p.rules, 1):
            if rule.label is not None:
                if rule.label.value in labels:
                    self.error(rule.label.span, "E116", f"rule `{p.name.value}."
                               f"{rule.label.value}` is named twice")
                labels[rule.label.value] = True
                name = f"{p.name.value}.{rule.label.value}"
            else:
                name = f"{p.name.value}#{index}"
            checker = ExprChecker(scope)
            cond = checker.condition(rule.when, rule.unless)
            actions, fields = self.targets(rule, res)
            limit = self.limit(rule, checker) if rule.limit else None
            output = check_output(self, rule, checker) if rule.output else ()
            out.append(CheckedRule(name, rule.effect, res.name, actions, fields, cond,
                                   rule.span.file, rule.span.line, rule.span.column, limit,
                                   output))
        for name in own:  # a policy's own conditions are checked where declared
            scope.conditions(name, own[name].span)
        return out

    def targets(self, rule: n.Rule, res: EntitySchema) -> tuple[tuple, tuple]:
        if rule.effect in ("show", "write"):
            declared = (("id",) if rule.effect == "show" else ()) + res.fields
            if rule.targets is None:
                return (), declared
            for t in rule.targets:
                if t.value not in declared:
                    self._unknown_target(t, res, declared, "field")
            return (), tuple(dict.fromkeys(t.value for t in rule.targets if t.value in declared))
        if rule.targets is None:
            return res.actions, ()
        for t in rule.targets:
            if t.value not in res.actions:
                self._unknown_target(t, res, res.actions, "action")
        return tuple(dict.fromkeys(t.value for t in rule.targets if t.value in res.actions)), ()

    def _unknown_target(self, t: n.Name, res: EntitySchema, declared, what: str) -> None:
        if "." in t.value:
            head = t.value.split(".")[0]
            whole = what == "field" and head in declared
            self.error(t.span, "E131", f"`{t.value}`: " + (
                "a record is shown or written whole, never one of its fields" if whole else
                f"{what}s are plain names, not paths"),
                f"write `{head}`" if whole else did_you_mean(head, declared))
            return
        if what == "field" and t.value in IMPLICIT:
            self.error(t.span, "E117", f"`{t.value}` cannot be written",
                       "ids and types are set by the API, never by a client")
            return
        self.error(t.span, "E118", f"`{res.name}` declares no {what} `{t.value}`",
                   did_you_mean(t.value, declared))

    def limit(self, rule: n.Rule, checker: ExprChecker) -> Limit | None:
        spec = rule.limit
        ok = True
        for value, what in ((spec.count, "count"), (spec.burst, "burst")):
            if value is not None and not (0 < value <= MAX_LIMIT_COUNT and
                                          float(value).is_integer()):
                self.error(rule.span, "E119", f"a limit's {what} must be a whole number of "
                           f"tokens, at least 1 and at most {MAX_LIMIT_COUNT:,}",
                           "write `1 per 2s` for half a token a second"
                           if what == "count" and 0 < value < 1 else None)
                ok = False
        if round(spec.period * US) < 1:
            self.error(rule.span, "E119", "a limit's period must be at least 1 microsecond")
            ok = False
        elif ok and rate(int(spec.count), spec.period,
                         int(spec.burst or spec.count))[1] > HORIZON_US:
            self.error(rule.span, "E119", "a limit's burst takes more than a century to "
                       "refill (burst x period / count)")
            ok = False
        facts = frozenset()
        if rule.when is not None:
            facts |= checker.pos(rule.when)
        if rule.unless is not None:
            facts |= checker.neg(rule.unless)
        keys = []
        for key in spec.keys:
            before = len(self.diags)
            ir = checker.expr(key, facts)
            self._limit_key_hints(before, rule)
            if ir.type not in _KEY_TYPES and ir.type != ERROR:
                self.error(key.span, "E120", f"a limit key must be a string, number, bool, ip "
                           f"or time, found {ir.type}")
                ok = False
            keys.append(ir)
        if not ok:
            return None
        burst = spec.burst if spec.burst is not None else spec.count
        return Limit(float(spec.count), spec.period, float(burst), tuple(keys))


    def _limit_key_hints(self, since: int, rule: n.Rule) -> None:
        """A `has` guard cannot go inside a key: say where it goes instead."""
        for i in range(since, len(self.diags)):
            d = self.diags[i]
            if d.code == "E308" and d.hint and d.hint.startswith("guard the read: `"):
                guard = d.hint[len("guard the read: `"):-len(" and ...`")]
                path = d.message.split("`")[1]
                where = "and add it to the rule's `when`" if rule.when is not None else \
                    f"`... by {path} when {guard}`"
                self.diags[i] = replace(d, hint=f"guard the key in the rule's condition: "
                                              f"{where}")


def check(files: Iterable[n.PolicyFile], sources: dict[str, str], version: str) -> CheckedSet:
    return Checker(files, sources, version).run()
