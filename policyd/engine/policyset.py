"""The compiled policy set: the one artifact code generation hands to deciding.

It owns the generated functions, the decider encoding (how an allow outcome names
its rule and visible fields), and a runtime view of the schema and the rules for
validation, audit, metrics, coverage and the CLI. Downstream of it only the query
planner reads the checker's IR (`plans`: partial evaluation needs conditions as data).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from ..language.allows import ALLOW_BITS
from ..language.codegen import Generated
from ..language.diagnostics import Diagnostic
from ..language.planning import PlanProgram, rules_with_in
from ..language.schema import RuleInfo, Schema
from ..language.sources import Snapshot
from . import runtime
from .entities import EntityData, Tables
from .planrules import compile_rules
from .routes import RouteTable

ALLOW_MASK = (1 << ALLOW_BITS) - 1
DEFAULT_MAX_STRING_BYTES = 4096


@dataclass(frozen=True)
class PolicySet:
    """A compiled policy set: generated functions plus the metadata decisions need."""

    name: str
    version: str
    schema: Schema
    rules: dict[str, tuple[RuleInfo, ...]]  # type -> rules in source order (allow index)
    sources: dict[str, str]
    warnings: tuple[Diagnostic, ...]
    generated: Generated
    validators: dict
    deciders: dict  # type -> {action -> function}
    limiters: dict  # type -> {action -> function}, only where limit rules apply
    show: dict  # type -> function
    write: dict  # type -> function
    fields: dict  # type -> ("id", *attributes): bit i is fields[i]
    max_string_bytes: int = DEFAULT_MAX_STRING_BYTES
    role_attrs: tuple[str, ...] = ()  # principal attributes besides `roles` holding roles
    routes: RouteTable = field(default_factory=RouteTable, compare=False)
    plans: PlanProgram = field(default_factory=lambda: PlanProgram({}, {}), repr=False,
                               compare=False)  # the conditions as data, for query plans
    entities: EntityData = field(default_factory=EntityData, repr=False, compare=False)
    snapshot: Snapshot | None = field(default=None, repr=False, compare=False)
    namespace: dict = field(default_factory=dict, repr=False, compare=False)
    visible_cache: dict = field(default_factory=dict, repr=False, compare=False)
    fast: Callable | None = field(default=None, repr=False, compare=False)  # bind(...)
    code: object = field(default=None, repr=False, compare=False)  # the compiled module
    # 1.2: (type, action) -> ((effect, rule, function, keys, types), ...) of the rules
    # with an `output` that may decide it (engine/outputs.py)
    outputs: dict = field(default_factory=dict, repr=False, compare=False)

    def memo(self) -> tuple[dict, dict]:
        """(deny cache, {resource type: allow cache}) of memoised decisions: the generated
        module's own dicts, so its fast paths read what the general path wrote."""
        ns = self.namespace
        deny = ns.get("DC", {})
        allow = {r: ns.get(f"AC_{t}", {}) for t, r in enumerate(self.schema.resources)}
        return deny, allow

    @functools.cached_property
    def conditions(self) -> dict:
        """Rule full name -> its condition as a function; compiled on first use, since
        only explain and test coverage need them (halves compile time for large sets)."""
        code = compile(self.generated.explain_source, f"<policyd {self.name} explain>", "exec")
        exec(code, self.namespace)  # same origin and rules as the main module
        return {k: self.namespace[v] for k, v in self.generated.conditions.items()}

    def with_entities(self, extra: dict[tuple[str, str, str], dict],
                      parents: dict[tuple[str, str], tuple] | None = None) -> PolicySet:
        """This set with more entity data: stored attributes keyed (kind, type, id), laid
        over the entity's own, and parents keyed (type, id) (what the test runner gives a
        test whose fixtures set stored attributes or parents). The generated module runs
        again with the new data bound as `_g`."""
        data = self.entities
        tables = {"principal": dict(data.principals), "resource": dict(data.resources),
                  "entity": dict(data.entities)}
        required = {"principal": self.schema.principals, "resource": self.schema.resources,
                    "entity": self.schema.entities}
        for (kind, rtype, eid), attrs in extra.items():
            t = tables[kind].get(rtype)
            if t is None and rtype in required[kind]:
                s = required[kind][rtype]
                t = Tables({}, tuple(a.name for a in s.stored if not a.optional))
            if t is not None:
                rows = {**t.rows, eid: {**t.rows.get(eid, {}), **attrs}}
                tables[kind][rtype] = replace(t, rows=rows)
        graph = {t: dict(ids) for t, ids in data.parents.items()}
        for (rtype, eid), pairs in (parents or {}).items():
            graph.setdefault(rtype, {})[eid] = pairs
        entities = EntityData(tables["principal"], tables["resource"], tables["entity"], graph)
        return replace(self, entities=entities, visible_cache={},
                       **functions(self.generated, instantiate(self.code, entities),
                                   self.schema.resources))

    @functools.cached_property
    def roles_sensitive(self) -> bool:
        """Whether an attribute that holds role names is `sensitive` on some principal
        type: unknown-role warnings then do not name them."""
        names = ("roles", *self.role_attrs)
        return any(a.sensitive for p in self.schema.principals.values() for a in p.attrs
                   if a.name in names)

    @functools.cached_property
    def explainers(self) -> dict:
        """Resource type -> its explainer for the decision log's chains (ancestry.py),
        made on first use: its closures are built once per set, not per record."""
        return {}

    @functools.cached_property
    def rules_with_in(self) -> dict:
        """Rule name -> condition, for rules with an `in` (1.2: the decision log's chains)."""
        return rules_with_in(self.plans)

    @functools.cached_property
    def planner(self) -> dict:
        """Resource type -> its rules as plan closures, built on the first plan."""
        return compile_rules(self.plans, self.schema)

    @property
    def source(self) -> str:
        return self.generated.source + "\n" + self.generated.explain_source

    def allow_rule(self, rtype: str, outcome: int) -> RuleInfo:
        """The allow rule an allow outcome of a decider names."""
        return self.rules[rtype][outcome & ALLOW_MASK]

    def fields_of(self, rtype: str, mask: int) -> tuple[str, ...]:
        """The field names of a mask, in declaration order (cached: masks repeat)."""
        key = (rtype, mask)
        found = self.visible_cache.get(key)
        if found is None:
            names = self.fields[rtype]
            found = tuple(f for i, f in enumerate(names) if mask >> i & 1)
            if len(self.visible_cache) < 65536:
                self.visible_cache[key] = found
        return found

    def held(self, parsed) -> list[RuleInfo]:
        """Every rule of the type whose condition holds: allow, deny and limit rules of the
        action, show and write rules whatever the action (explain and test coverage)."""
        return [rule for rule, value in self.values(parsed) if value is True]

    def values(self, parsed) -> list[tuple[RuleInfo, bool | None]]:
        """Each rule that applies (as `held`) with its condition's value: True, False, or
        None where its arithmetic gave no finite number (language/kleene.py)."""
        pid, P, rtype, rid, R, C, ptype, action = parsed
        conditions = self.conditions
        return [(rule, conditions[rule.name](pid, P, rid, R, C, ptype, action))
                for rule in self.rules.get(rtype, ())
                if action in rule.actions or rule.effect in ("show", "write")]

    def policy_location(self, filename: str, line: int) -> tuple[str, int] | None:
        """The policy file and line that a line of generated code came from."""
        if filename.endswith(" explain>"):
            return self.generated.explain_linemap.get(line)
        return self.generated.linemap.get(line)

    def location_of(self, exc: BaseException) -> str:
        """`file:line` of the policy whose generated code raised `exc` (else "engine")."""
        tb, where = exc.__traceback__, "engine"
        while tb is not None:
            filename = tb.tb_frame.f_code.co_filename
            found = filename.startswith("<policyd ") and \
                self.policy_location(filename, tb.tb_lineno)
            if found:
                where = f"{found[0]}:{found[1]}"
            tb = tb.tb_next
        return where


def instantiate(code, entities=None) -> dict:
    """A fresh namespace of the generated module, with `_g` (the entity data) bound: a
    set with other data is the same code run again (PolicySet.with_entities)."""
    namespace: dict = {"__builtins__": dict(runtime.BUILTINS), "_rt": runtime, "_g": entities}
    exec(code, namespace)  # generated from the checked AST only; see codegen's docstring
    return namespace


def functions(gen: Generated, namespace: dict, resources) -> dict:
    """The PolicySet fields that hold the generated module's functions."""
    deciders: dict[str, dict] = {}
    for (rtype, action), fn in gen.deciders.items():
        deciders.setdefault(rtype, {})[action] = namespace[fn]
    limiters: dict[str, dict] = {rtype: {} for rtype in resources}
    for (rtype, action), fn in gen.limiters.items():
        limiters[rtype][action] = namespace[fn]
    return {"namespace": namespace, "deciders": deciders, "limiters": limiters,
            "validators": {k: namespace[v] for k, v in gen.validators.items()},
            "show": {k: namespace[v] for k, v in gen.visibility.items()},
            "write": {k: namespace[v] for k, v in gen.writable.items()},
            "fast": namespace[gen.fast] if gen.fast else None,
            "outputs": {key: tuple((effect, rule, namespace[fn], keys, types)
                                   for effect, rule, fn, keys, types in items)
                        for key, items in (gen.outputs or {}).items()}}
