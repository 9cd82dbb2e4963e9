"""The declared types of a policy set: attribute types, principal and resource types, the
context, rule metadata. The checker produces them; the compiled set carries them as
its runtime view (validation, audit masks, metrics, the CLI), so nothing after code
generation needs the checker's typed IR.

Types are plain strings (`string`, `set<number>`, `map<string, set<string>>`, a
record's name such as `Project`, an entity type's name such as `Group` for a reference,
or `User | Staff` for `principal` where several principal types are declared) so
messages can name them. Record and entity type names never collide (the checker
refuses a name declared twice).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

STRING, NUMBER, BOOL, TIME, IP = "string", "number", "bool", "time", "ip"
SCALARS = (STRING, NUMBER, BOOL, TIME, IP)
DECLARABLE = (STRING, NUMBER, BOOL, TIME, IP, "set<string>", "set<number>")
EMPTY_SET = "set<>"
ERROR = "?"  # the type of an expression that already has a diagnostic


def set_of(t: str) -> str:
    return f"set<{t}>"


def is_set(t: str) -> bool:
    return t.startswith("set<")


def element(t: str) -> str:
    return t[4:-1]


def is_map(t: str) -> bool:
    return t.startswith("map<")


def map_of(t: str) -> str:
    return f"map<string, {t}>"


def map_value(t: str) -> str:
    return t[len("map<string, "):-1]


def union_of(names) -> str:
    """The type of an entity that may be any of `names` (`principal` with several types)."""
    return " | ".join(sorted(names))


def members(t: str) -> tuple[str, ...]:
    """The entity types an entity type string names (one, or each of a union)."""
    return tuple(t.split(" | "))


def runtime_type(t: str, typed) -> str:
    """`t` as run time holds it: references (`typed(name)` finds the type) are ids."""
    if is_set(t) and typed(element(t)) is not None:
        return "set<string>"
    return STRING if typed(t) is not None else t


def compatible(a: str, b: str) -> bool:
    """Like with like; the empty set literal fits every set type."""
    if ERROR in (a, b) or a == b:
        return True
    return is_set(a) and is_set(b) and EMPTY_SET in (a, b)


# ---- schema ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AttrSpec:
    name: str
    type: str
    optional: bool
    sensitive: bool
    stored: bool = False  # from the set's entity data, never from the request


@dataclass(frozen=True)
class EntitySchema:
    """A principal, resource or entity type, a record or the context: its attributes."""

    kind: str  # principal | resource | entity | context | record
    name: str
    attrs: tuple[AttrSpec, ...]
    actions: tuple[str, ...] = ()
    owner: str | None = None
    file: str = ""
    line: int = 0
    parents: tuple[str, ...] = ()  # `in T, ...`: the types a parent may have (1.2)
    whole: bool = False  # stored as a whole: attributes and parents only from entity data

    @property
    def column(self) -> int:  # diagnostics about a whole declaration point at its line
        return 1

    @property
    def by_name(self) -> dict[str, AttrSpec]:
        return {a.name: a for a in self.attrs}

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.attrs)

    @property
    def sent(self) -> tuple[AttrSpec, ...]:
        """The attributes a request carries (all but the stored ones)."""
        return tuple(a for a in self.attrs if not a.stored)

    @property
    def stored(self) -> tuple[AttrSpec, ...]:
        return tuple(a for a in self.attrs if a.stored)


@dataclass(frozen=True, slots=True)
class RuleInfo:
    """A rule as decisions, coverage and reports name it: everything but its condition."""

    name: str  # full name: policy.label or policy#N
    effect: str  # allow | deny | show | write | limit
    resource: str
    actions: tuple[str, ...]
    fields: tuple[str, ...]
    file: str
    line: int
    column: int


class RoleGraph(Mapping[str, frozenset[str]]):
    """Declared roles and their inheritance. `graph[r]` is every role that satisfies
    `is r` (r and all that extend it, transitively), computed on first use by one walk
    over the children: linear in the roles for each role a policy tests, never the
    quadratic closure of all of them."""

    def __init__(self, parents: dict[str, tuple[str, ...]]):
        self.parents = parents
        self.children: dict[str, list[str]] = {r: [] for r in parents}
        for role, ps in parents.items():
            for p in ps:
                if p in self.children:
                    self.children[p].append(role)
        self._satisfying: dict[str, frozenset[str]] = {}

    def computed(self) -> dict[str, frozenset[str]]:
        """The roles some `is` test asked for, with the roles that satisfy each."""
        return dict(self._satisfying)

    def __getitem__(self, role: str) -> frozenset[str]:
        found = self._satisfying.get(role)
        if found is None:
            if role not in self.parents:
                raise KeyError(role)
            seen, stack = {role}, [role]
            while stack:
                for child in self.children[stack.pop()]:
                    if child not in seen:
                        seen.add(child)
                        stack.append(child)
            found = self._satisfying[role] = frozenset(seen)
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(self.parents)

    def __len__(self) -> int:
        return len(self.parents)

    def __contains__(self, role: object) -> bool:
        return role in self.parents


@dataclass(frozen=True)
class Schema:
    """Every declared type of a set, and its role names."""

    principals: dict[str, EntitySchema]
    resources: dict[str, EntitySchema]
    context: EntitySchema | None
    roles: frozenset[str]
    records: dict[str, EntitySchema] = field(default_factory=dict)
    entities: dict[str, EntitySchema] = field(default_factory=dict)  # `entity` types (1.2)

    def entity(self, kind: str, name: str) -> EntitySchema | None:
        table = self.principals if kind == "principal" else \
            self.entities if kind == "entity" else self.resources
        return table.get(name)

    def typed(self, name: str) -> EntitySchema | None:
        """The principal, resource or entity type of that name (a reference's type, a
        parent's type: such a name is declared once)."""
        return self.entities.get(name) or self.principals.get(name) or \
            self.resources.get(name)

    def runtime(self, t: str) -> str:
        """A reference is its id at run time: `User` is a string, `set<User>` a
        set<string>; every other type is itself."""
        return runtime_type(t, self.typed)

    @property
    def hierarchy(self) -> bool:
        """Whether any type declares parents: requests and data may then carry them."""
        return any(s.parents for s in (*self.principals.values(), *self.resources.values(),
                                       *self.entities.values()))
