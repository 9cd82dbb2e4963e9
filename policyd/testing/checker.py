"""Checks test files against a compiled set's declarations and turns them into plans:
fixtures typed like policy literals, names resolved, every problem a diagnostic with
a position, all reported before any test runs."""

from __future__ import annotations

from collections.abc import Iterable

from ..engine.residual import json_value
from ..language.checked import CheckedSet
from ..language.diagnostics import WARNING, Diagnostic, PolicyError, did_you_mean
from ..language.nodes import Name, Span
from ..language.printer import expr
from ..language.schema import TIME, EntitySchema
from . import nodes as t
from .plan import Advance, CheckedTest, Expectation
from .values import FAIL, fixture_value, literal

# reasons a decision can give besides rule names; True: only a denied decision gives it
FIXED_REASONS = {"default_deny": True, "not_writable": True, "unknown_field": True,
                 "unknown_action": True, "unknown_resource": True, "rate_limited": True,
                 "rate_store_unavailable": True, "error": True, "missing_data": True}
_ALLOW_EFFECTS = ("allow", "show", "write")


class _Entity:
    """A fixture or inline entity after checking: its kind, schema, request part and the
    parents it was given (1.2)."""

    def __init__(self, kind: str, schema: EntitySchema, part: dict, span: Span,
                 parents: tuple = ()):
        self.kind, self.schema, self.part, self.span = kind, schema, part, span
        self.parents = parents


class TestChecker:
    __test__ = False

    def __init__(self, cs: CheckedSet, ps=None):
        self.cs, self.ps = cs, ps
        self.diags: list[Diagnostic] = []
        self.fixtures: dict[str, _Entity | None] = {}
        self.fixture_spans: dict[str, Span] = {}

    def error(self, span: Span, code: str, message: str, hint: str | None = None) -> None:
        self.diags.append(Diagnostic.at(span, code, message, hint))

    def run(self, files: Iterable[t.TestFile]) -> list[CheckedTest]:
        files = list(files)
        for f in files:  # fixtures first: they are visible across the set's test files
            for fixture in f.fixtures:
                self.fixture(fixture)
        tests, seen = [], {}
        for f in files:
            for test in f.tests:
                if test.name in seen:
                    self.error(test.span, "E420", f"test {test.name!r} is declared twice "
                               f"(first at {seen[test.name]})")
                    continue
                seen[test.name] = test.span
                tests.append(self.test(test))
        if any(d.is_error for d in self.diags):
            raise PolicyError(self.diags)
        self.warnings = tuple(sorted(self.diags, key=Diagnostic.sort_key))
        return tests

    # ---- fixtures and entities -------------------------------------------------------

    def fixture(self, d: t.FixtureDecl) -> None:
        name = d.name.value
        if name in self.fixture_spans:
            self.error(d.name.span, "E410", f"fixture `{name}` is declared twice (first at "
                       f"{self.fixture_spans[name]})")
            return
        self.fixture_spans[name] = d.name.span
        self.fixtures[name] = self.entity(d.value)

    def schema_of(self, lit: t.EntityLit) -> EntitySchema | None:
        if lit.kind == "context":
            if self.cs.context is None:
                self.error(lit.span, "E413", "the policy set declares no `context`")
            return self.cs.context
        declared = self.cs.principals if lit.kind == "principal" else \
            self.cs.entities if lit.kind == "entity" else self.cs.resources
        schema = declared.get(lit.type.value)
        if schema is None:
            self.error(lit.type.span, "E412", f"unknown {lit.kind} type `{lit.type.value}`",
                       did_you_mean(lit.type.value, declared))
        return schema

    def entity(self, lit: t.EntityLit) -> _Entity | None:
        schema = self.schema_of(lit)
        if schema is None:
            return None
        if lit.kind != "context" and lit.id == "":
            self.error(lit.span, "E428", f"a {lit.kind}'s id must not be empty",
                       "requests with an empty id are refused, so no test could use it")
            return None
        attrs = self.attrs(lit.attrs, schema)
        if attrs is None:
            return None
        for spec in schema.attrs:  # a stored one may be left out: testing missing_data
            if spec.name not in attrs and not spec.optional and not spec.stored and \
                    not (lit.kind == "context" and spec.name == "time" and spec.type == TIME):
                self.error(lit.span, "E416", f"`{spec.name}` ({spec.type}) is required by "
                           f"{_describe(schema)}")
        part = attrs if lit.kind == "context" else \
            {"type": schema.name, "id": lit.id, "attrs": attrs}
        parents = self.parents(lit, schema)
        if parents is None:
            return None
        return _Entity(lit.kind, schema, part, lit.span, parents)

    def parents(self, lit: t.EntityLit, schema: EntitySchema) -> tuple | None:
        """`in Team("eng"), ...` of a fixture, each of a parent type its type declares."""
        out, ok = [], True
        for p in lit.parents:
            if p.type.value not in schema.parents:
                self.error(p.type.span, "E429", f"{_describe(schema)} has no parent type "
                           f"`{p.type.value}`", did_you_mean(p.type.value, schema.parents) or
                           ("declared: " + ", ".join(schema.parents) if schema.parents else
                            f"declare one: `{schema.kind} {schema.name} in TYPE`"))
                ok = False
            elif not p.id:
                self.error(p.span, "E428", "a parent's id must not be empty")
                ok = False
            else:
                out.append((p.type.value, p.id))
        return tuple(out) if ok else None

    def attrs(self, values: tuple[t.AttrValue, ...], schema: EntitySchema) -> dict | None:
        """The attributes as a request carries them, or None if any is wrong."""
        out, ok, specs = {}, True, schema.by_name
        for av in values:
            key = av.name.value
            spec = specs.get(key)
            if key in out:
                self.error(av.name.span, "E418", f"attribute `{key}` is given twice")
                ok = False
            elif spec is None:
                self.error(av.name.span, "E414", f"`{key}` is not declared on "
                           f"{_describe(schema)}", did_you_mean(key, specs))
                ok = False
            else:
                value = fixture_value(av.value, spec.type, self.cs, self.diags.append, key)
                if value is FAIL:
                    ok = False
                else:
                    out[key] = value
                    if schema.kind == "principal" and (key == "roles" or
                                                       key in self.cs.role_attrs):
                        self.role_names(av.value, value)
        return out if ok else None

    def role_names(self, expr, value) -> None:
        """A misspelt role makes a deny test pass for the wrong reason: warn (W206)."""
        held = [r for v in value.values() for r in v] if isinstance(value, dict) else value
        for role in dict.fromkeys(held):
            if role not in self.cs.roles:
                self.diags.append(Diagnostic.at(
                    expr.span, "W206", f"role `{role}` is not declared, so it grants nothing",
                    did_you_mean(role, self.cs.roles) or "declare it with `role NAME`",
                    WARNING))

    def given(self, g: t.Given, current: dict) -> None:
        named: set[str] = set()
        for part in g.parts:
            found = self.given_part(part)
            if found is None:
                continue
            if found.kind == "entity":  # entity fixtures: this test's entity data (1.2)
                current.setdefault("entities", {})[(found.schema.name, found.part["id"])] = \
                    found
                continue
            if found.kind in named:
                self.error(part.span, "E419", f"this `given` names a {found.kind} twice")
            named.add(found.kind)
            current[found.kind] = found

    def given_part(self, part: t.FixtureRef | t.EntityLit) -> _Entity | None:
        if isinstance(part, t.EntityLit):
            return self.entity(part)
        name = part.name.value
        if name not in self.fixtures:
            self.error(part.name.span, "E411", f"unknown fixture `{name}`",
                       did_you_mean(name, self.fixtures))
            return None
        base = self.fixtures[name]
        if base is None or part.overrides is None:
            return base
        extra = self.attrs(part.overrides, base.schema)
        if extra is None:
            return None
        if base.kind == "context":
            return _Entity(base.kind, base.schema, {**base.part, **extra}, part.span)
        return _Entity(base.kind, base.schema,
                       {**base.part, "attrs": {**base.part["attrs"], **extra}}, part.span,
                       base.parents)

    # ---- tests and expectations --------------------------------------------------------

    def test(self, test: t.TestDecl) -> CheckedTest:
        current: dict[str, _Entity | None] = {}
        steps: list = []
        for step in test.steps:
            if isinstance(step, t.Given):
                self.given(step, current)
            elif isinstance(step, t.After):
                steps.append(Advance(step.seconds, step.span.file, step.span.line))
            else:
                found = self.expectation(step, current)
                if found is not None:
                    steps.append(found)
        if not any(isinstance(s, t.ExpectDecision | t.ExpectVisible) for s in test.steps):
            self.error(test.span, "E421", f"test {test.name!r} expects nothing",
                       "a test needs at least one `expect`")
        return CheckedTest(test.name, test.span.file, test.span.line, tuple(steps))

    def request(self, step, current: dict) -> dict | None:
        for kind in ("principal", "resource"):
            if kind not in current:
                self.error(step.span, "E422", f"no {kind} given before this expectation",
                           f"name a {kind} fixture with `given`")
        if any(current.get(k) is None for k in ("principal", "resource")) or \
                ("context" in current and current["context"] is None):
            return None  # already reported
        request, data, parents = {}, {}, {}
        for kind in ("principal", "resource"):
            entity = current[kind]
            request[kind], stored = self.split_stored(entity)
            if stored is not None:
                data[(kind, request[kind]["type"], request[kind]["id"])] = stored
            if entity.parents and entity.schema.whole:  # its parents are entity data
                parents[(entity.schema.name, entity.part["id"])] = entity.parents
            elif entity.parents:  # a request sends the parents of the others
                request[kind] = {**request[kind], "parents": [
                    {"type": pt, "id": pi} for pt, pi in entity.parents]}
        for (etype, eid), entity in current.get("entities", {}).items():
            data[("entity", etype, eid)] = self.converted(entity, entity.part["attrs"])
            if entity.parents:
                parents[(etype, eid)] = entity.parents
        if self.cs.context is not None:
            ctx = current["context"].part if "context" in current else {}
            for spec in self.cs.context.attrs:
                if spec.name not in ctx and not spec.optional and spec.type != TIME:
                    self.error(step.span, "E423", f"the context lacks `{spec.name}` "
                               f"({spec.type}), which the set requires",
                               "give one with `given context { ... }` or a context fixture")
                    return None
            request["context"] = ctx
        return request, data, parents

    def split_stored(self, entity: _Entity) -> tuple[dict, dict | None]:
        """(the request part, the stored attributes as entity data) of a fixture: stored
        attributes never travel in requests."""
        stored = {a.name for a in entity.schema.stored}
        if not stored or not stored & set(entity.part["attrs"]):
            return entity.part, None  # the set's own entity data speaks for it
        attrs = entity.part["attrs"]
        sent = {k: v for k, v in attrs.items() if k not in stored}
        held = {k: v for k, v in attrs.items() if k in stored}
        if self.ps is None:  # checked only: nothing will run
            return {**entity.part, "attrs": sent}, held
        return {**entity.part, "attrs": sent}, self.converted(entity, held)

    def converted(self, entity: _Entity, attrs: dict) -> dict:
        """Stored attributes as entity data holds them (ips and times converted)."""
        validator = None if self.ps is None else \
            self.ps.validators.get(f"data:{entity.kind}:{entity.schema.name}")
        return attrs if validator is None else validator(attrs, {}.setdefault)

    def expectation(self, step, current: dict) -> Expectation | None:
        found = self.request(step, current)
        if found is None:
            return None
        request, data, parents = found
        res = current["resource"].schema
        where = step.span
        if isinstance(step, t.ExpectVisible):
            ok = self.actions((step.action,), res, ()) and self.fields(step.fields, res, False,
                                                                      ("id", *res.fields))
            fields = tuple(dict.fromkeys(f.value for f in step.fields))
            text = f"expect visible {step.action.value}: {', '.join(fields)}"
            return Expectation(where.file, where.line, text, request, (step.action.value,),
                               True, visible=fields, data=data, parents=parents) if ok else None
        reasons = tuple(r.value for r in step.reasons)
        ok = self.actions(step.actions, res, reasons) & \
            self.fields(step.writing, res, "unknown_field" in reasons) & \
            self.reasons(step, res)
        outputs = self.outputs(step.outputs)
        return Expectation(where.file, where.line, _text(step), request,
                           tuple(a.value for a in step.actions), step.allowed,
                           tuple(f.value for f in step.writing), reasons,
                           step.repeat, data=data, parents=parents,
                           outputs=outputs) if ok and outputs is not None else None

    def outputs(self, pairs: tuple[t.AttrValue, ...]) -> tuple | None:
        """`output KEY: VALUE, ...` as (key, JSON value) pairs (literals only)."""
        out, ok = [], True
        for pair in pairs:
            value = literal(pair.value, self.cs.constants, self.diags.append, self.cs)
            if value is None:
                ok = False
                continue
            out.append((pair.name.value, json_value(value.value, value.type)))
        return tuple(out) if ok else None

    def actions(self, names: tuple[Name, ...], res: EntitySchema, reasons) -> bool:
        ok = True
        for a in names:
            if a.value not in res.actions and "unknown_action" not in reasons:
                self.error(a.span, "E424", f"`{res.name}` declares no action `{a.value}`",
                           did_you_mean(a.value, res.actions) or
                           "to test the inventory, expect `deny ... by unknown_action`")
                ok = False
        return ok

    def fields(self, names: tuple[Name, ...], res: EntitySchema, lenient: bool,
               known: tuple[str, ...] = ()) -> bool:
        ok, known = True, known or ("id", "type", *res.fields)
        for f in names:
            if f.value not in known and not lenient:
                self.error(f.span, "E425", f"`{res.name}` has no field `{f.value}`",
                           did_you_mean(f.value, known))
                ok = False
        return ok

    def reasons(self, step: t.ExpectDecision, res: EntitySchema) -> bool:
        rules = {r.name: r for rs in self.cs.rules.values() for r in rs}
        ok = True
        for reason in step.reasons:
            value = reason.value
            base = value.split(":", 1)[0]
            rule = rules.get(value)
            if base in FIXED_REASONS:
                wrong = step.allowed
            elif rule is None:
                unnamed = any(r.startswith(value + "#") for r in rules)
                self.error(reason.span, "E426", f"unknown rule or reason `{value}`",
                           f'`#` starts a comment: write an unnamed rule as a string, '
                           f'by "{value}#N"' if unnamed else
                           did_you_mean(value, [*rules, *FIXED_REASONS]))
                ok = False
                continue
            elif rule.resource != res.name:
                self.error(reason.span, "E427", f"rule `{value}` is for `{rule.resource}`, "
                           f"not `{res.name}`")
                ok = False
                continue
            else:
                wrong = (rule.effect in _ALLOW_EFFECTS) != step.allowed
            if wrong:
                verdict = "an allowed" if step.allowed else "a denied"
                self.error(reason.span, "E427", f"{verdict} decision never names `{value}`",
                           "deny rules, limits and deny reasons name denials; allow, show "
                           "and write rules name allowed decisions")
                ok = False
        return ok


def _describe(schema: EntitySchema) -> str:
    return "the context" if schema.kind == "context" else f"{schema.kind} {schema.name}"


def _text(step: t.ExpectDecision) -> str:
    text = f"expect {'allow' if step.allowed else 'deny'} {', '.join(a.value for a in step.actions)}"
    if step.writing:
        text += " writing " + ", ".join(f.value for f in step.writing)
    if step.reasons:
        text += " by " + ", ".join(r.value for r in step.reasons)
    text += f" x{step.repeat}" if step.repeat > 1 else ""
    if step.outputs:
        text += " output " + ", ".join(f"{o.name.value}: {expr(o.value)}" for o in step.outputs)
    return text


def check_tests(cs: CheckedSet, files: Iterable[t.TestFile], ps=None) -> list[CheckedTest]:
    """Every test of a set as a plan; raises PolicyError with every problem found. `ps`,
    the compiled set, converts fixtures' stored attributes into entity data."""
    return TestChecker(cs, ps).run(files)


def check_tests_and_warn(cs: CheckedSet, files, ps) -> tuple[list[CheckedTest], tuple]:
    """The tests and the warnings about them (unknown roles in fixtures)."""
    checker = TestChecker(cs, ps)
    return checker.run(files), checker.warnings


def fixture_parts(cs: CheckedSet, ps, sources: dict[str, str]) -> dict[str, tuple[str, dict]]:
    """name -> (kind, request part) of every fixture of a set's test files, stored
    attributes left out (the set's entity data holds them): `policyd diff`'s requests."""
    from ..language import parse_each
    from .parse import parse_tests

    tests = {k: v for k, v in sources.items() if k.endswith(".test.policy")}
    parsed, _ = parse_each(tests, parse_tests)
    checker = TestChecker(cs, ps)
    checker.run(parsed)
    out = {}
    for name, entity in checker.fixtures.items():
        if entity is None:
            continue
        part = entity.part if entity.kind == "context" else {
            **entity.part, "attrs": {k: v for k, v in entity.part["attrs"].items()
                                     if k not in {a.name for a in entity.schema.stored}}}
        out[name] = (entity.kind, part)
    return out
