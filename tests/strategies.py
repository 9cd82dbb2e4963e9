"""Hypothesis strategies: valid requests for a checked schema, and small random policies."""

from __future__ import annotations

from hypothesis import strategies as st

from policyd.language.schema import EntitySchema, Schema

WORDS = ["alice", "bob", "carol", "t1", "t2", "a", "b", "KP", "legal", "deploy-web", "x*y", ""]
IDS = [w for w in WORDS if w]  # requests refuse empty ids
IPS = ["10.1.2.3", "10.200.0.1", "192.168.4.4", "203.0.113.9", "::ffff:10.1.2.3", "2001:db8::1",
       "fd00::5", "172.16.0.1"]
TIMES = ["2026-11-22T10:00:00Z", "2026-11-21T23:59:59+02:00", "2026-11-23T07:30:00Z",
         "2026-11-28T18:00:00-05:00", "2026-01-01T00:00:00.5Z"]
NUMBERS = st.one_of(st.integers(-3, 1000), st.sampled_from([0.5, 499.99, 500.0, 2.0, -1.5]),
                    # numbers whose arithmetic gives no finite result: unknowns (kleene.py)
                    st.sampled_from([1e200, -1e200, 1.7976931348623157e308, 1e308,
                                     2 ** 53, -(2 ** 53), 2.0 ** 53 + 2]))


def value(t: str, roles: list[str], records: dict | None = None):
    records = records or {}
    if t in records:
        return attrs(records[t], roles, records)
    if t.startswith("map<string, "):
        inner = t[len("map<string, "):-1]
        values = st.lists(st.sampled_from(roles + ["intruder"]), max_size=3) \
            if inner == "set<string>" else value(inner, roles, records)
        return st.dictionaries(st.sampled_from(["w1", "w2", "gold", "t1"]), values, max_size=3)
    if t == "string":  # half the time from a small pool, so equalities (tenants, owners) hold
        return st.one_of(st.sampled_from(["t1", "alice", "legal"]), st.sampled_from(WORDS))
    if t == "number":
        return NUMBERS
    if t == "bool":
        return st.booleans()
    if t == "ip":
        return st.sampled_from(IPS)
    if t == "time":
        return st.sampled_from(TIMES)
    if t == "set<number>":
        return st.lists(NUMBERS, max_size=3)
    return st.lists(st.sampled_from(WORDS), max_size=3)


def attrs(schema: EntitySchema, roles: list[str], records: dict | None = None,
          stored: bool = False):
    """A request's attributes (or, with `stored`, an entity data entry's)."""
    required, optional = {}, {}
    for a in schema.attrs:
        if a.stored != stored and schema.kind in ("principal", "resource"):
            continue
        if a.name == "roles":
            strat = st.lists(st.sampled_from(roles + ["intruder"]), max_size=3)
        elif a.name in ("scopes",):
            strat = st.lists(st.sampled_from(["tenants:read", "tenants:suspend", "jobs:run"]),
                             max_size=3)
        else:
            strat = value(a.type, roles, records)
        (optional if a.optional else required)[a.name] = strat
    return st.fixed_dictionaries(required, optional=optional)


@st.composite
def requests(draw, cs: Schema):
    roles = sorted(cs.roles)
    ptype = draw(st.sampled_from(sorted(cs.principals)))
    rtype = draw(st.sampled_from(sorted(cs.resources)))
    res = cs.resources[rtype]
    action = draw(st.sampled_from(list(res.actions) + ["undeclared_action"]))
    request = {
        "principal": {"type": ptype, "id": draw(st.sampled_from(IDS + roles)),
                      "attrs": draw(attrs(cs.principals[ptype], roles, cs.records))},
        "action": action,
        "resource": {"type": rtype, "id": draw(st.sampled_from(IDS)),
                     "attrs": draw(attrs(res, roles, cs.records))},
    }
    pattrs, rattrs = request["principal"]["attrs"], request["resource"]["attrs"]
    for name in list(rattrs):  # half the time, the same tenant/team/department as the caller
        if name in pattrs and draw(st.booleans()):
            rattrs[name] = pattrs[name]
    if res.owner and res.owner in rattrs and draw(st.booleans()):
        pid = request["principal"]["id"]
        rattrs[res.owner] = [pid] if isinstance(rattrs[res.owner], list) else pid
    if cs.context is not None:
        request["context"] = draw(attrs(cs.context, roles, cs.records))
    fields = ["id", "type", "bogus"] + list(res.fields)
    if draw(st.booleans()):
        request["write_fields"] = draw(st.lists(st.sampled_from(fields), max_size=3))
    return request


# ---- small random policies over a fixed schema -------------------------------------

SCHEMA = """
principal User {
  roles: set<string>
  tenant: string
  level: number
  active: bool
  dept?: string
}
principal Bot {
  scopes: set<string>
  tenant: string
}
context {
  ip: ip
  time: time
  country?: string
}
role r1
role r2 extends r1
role r4
role r3 extends r2, r4
resource Doc owned by owner {
  owner: string
  tenant: string
  size: number
  labels: set<string>
  note?: string
  public: bool
  actions read, write, delete, share
}
const big = 10
const nets = [ip("10.0.0.0/8"), ip("2001:db8::/32")]
const words = ["a", "b"]
"""
ACTIONS = ["read", "write", "delete", "share"]
FIELDS = ["id", "owner", "tenant", "size", "labels", "note", "public"]

ATOMS = [
    "principal.tenant == resource.tenant", "principal.tenant != resource.tenant",
    "resource.size < 500", "resource.size >= big * 2", "resource.size + 1 > big",
    "principal has level and principal.level >= resource.size",
    "principal is r1", "principal is r2", "principal is r3", "principal is r4",
    "principal owns resource", "resource.public", "not resource.public",
    'resource has note and resource.note like "a*"', 'resource has note and resource.note like "*y"',
    "context.ip in nets", 'context.ip in ip("10.1.0.0/16")',
    'context.ip == ip("10.1.2.3")', "hour(context.time) < 12", "weekday(context.time) >= 6",
    'resource.labels contains "a"', "resource.labels contains_any words",
    "resource.labels contains_all words", 'principal.tenant in ["t1", "t2"]',
    "len(resource.labels) > 1", 'lower(resource.owner) == "alice"', 'action == "read"',
    'action in ["read", "share"]', "true", "false", 'principal.type == "Bot"',
    'context has country and context.country == "KP"', 'principal has active and principal.active',
    'principal has scopes and principal.scopes contains "jobs:run"',
    "resource.id == principal.id", 'context.time > time("2026-11-22T00:00:00Z")',
    'not (principal has dept) or principal.dept == "legal"',
    'principal has dept and (principal.dept == "legal" or principal.dept == "x*y")',
    # arithmetic that overflows on large sizes: three-valued conditions
    "resource.size * resource.size > 1000", "resource.size + resource.size < 10",
    "resource.size * resource.size - resource.size * resource.size == 0",
    "principal has level and principal.level * resource.size < 100",
]


def bool_exprs(depth: int = 2, atoms: list[str] | None = None):
    atom = st.sampled_from(ATOMS if atoms is None else atoms)
    if depth == 0:
        return atom
    sub = bool_exprs(depth - 1, atoms)
    return st.one_of(
        atom,
        st.tuples(sub, sub).map(lambda p: f"({p[0]}) and ({p[1]})"),
        st.tuples(sub, sub).map(lambda p: f"({p[0]}) or ({p[1]})"),
        sub.map(lambda e: f"not ({e})"),
    )


def _targets(names: list[str]):
    return st.one_of(st.just("*"), st.lists(st.sampled_from(names), min_size=1, max_size=3,
                                            unique=True).map(", ".join))


@st.composite
def rules(draw):
    effect = draw(st.sampled_from(["allow", "allow", "deny", "show", "write"]))
    names = ACTIONS if effect in ("allow", "deny") else \
        (FIELDS if effect == "show" else FIELDS[1:])
    text = f"{effect} {draw(_targets(names))}"
    if draw(st.booleans()):
        text += f" when {draw(bool_exprs())}"
    if draw(st.integers(0, 3)) == 0:
        text += f" unless {draw(bool_exprs(1))}"
    return text


@st.composite
def policies(draw):
    blocks = []
    for b in range(draw(st.integers(1, 2))):
        body = []
        for i, rule in enumerate(draw(st.lists(rules(), min_size=1, max_size=7))):
            label = f"rule{i}: " if draw(st.booleans()) else ""
            body.append("  " + label + rule)
        blocks.append(f"policy p{b} for Doc {{\n" + "\n".join(body) + "\n}\n")
    return SCHEMA + "\n".join(blocks)


@st.composite
def entity_data(draw, cs: Schema) -> list[dict]:
    """Entity data entries for the stored attributes of a schema's types (some ids have
    none, so missing data is decided too)."""
    roles = sorted(cs.roles)
    out = []
    for kind, declared in (("principal", cs.principals), ("resource", cs.resources)):
        for name, schema in declared.items():
            if not schema.stored:
                continue
            for eid in draw(st.lists(st.sampled_from(IDS + roles), min_size=2, max_size=6,
                                     unique=True)):
                held = draw(attrs(schema, roles, cs.records, stored=True))
                if held and draw(st.integers(0, 9)) == 0:  # now and then, an incomplete entry
                    held.pop(draw(st.sampled_from(sorted(held))))
                out.append({"kind": kind, "type": name, "id": eid, "attrs": held})
    return out


# ---- language 1.1: records, maps, scoped roles, stored attributes -----------------------

SCHEMA11 = """
record Geo { country: string  zone?: string }
record Proj {
  ws: string
  private: bool
  members: set<string>
  geo: Geo
  closed?: time
}
principal User {
  roles: set<string> stored
  ws_roles: map<string, set<string>> stored
  limits?: map<string, number>
  tenant: string
}
role r1
role r2 extends r1
role r3 extends r2
resource Doc owned by owner {
  owner: string
  proj: Proj
  size: number
  tags: map<string, string>
  level?: number stored
  actions read, write, share
}
"""
ATOMS11 = [
    "resource.proj.private", "not resource.proj.private",
    "resource.proj.members contains principal.id", "principal.id in resource.proj.members",
    "principal.ws_roles[resource.proj.ws] is r1", "principal.ws_roles[resource.proj.ws] is r3",
    'principal.ws_roles["w1"] is r2', "principal is r2", "principal.roles is r3",
    'not (resource.proj has closed) or resource.proj.closed < time("2026-11-22T00:00:00Z")',
    'resource.proj has closed and resource.proj.closed > time("2026-11-22T00:00:00Z")',
    'resource.proj.geo.country == "KP"',
    'resource.proj.geo has zone and resource.proj.geo.zone == principal.tenant',
    'principal has limits and "gold" in principal.limits and principal.limits["gold"] > 3',
    '"t1" in resource.tags and resource.tags["t1"] == principal.tenant',
    "len(principal.ws_roles) > 1", "len(resource.tags) == 0", "principal owns resource",
    'resource has level and resource.level >= resource.size',
    "resource.proj.ws in principal.ws_roles", "true",
]


def bool_exprs11(depth: int = 2):
    return bool_exprs(depth, ATOMS11)


@st.composite
def flat_policies(draw, schema: str, actions: list[str], shows: list[str],
                  writes: list[str], atoms: list[str], star: bool = True, most: int = 2):
    """One `policy p for Doc` of up to six labelled rules with conditions over `atoms`."""
    body = []
    for i in range(draw(st.integers(1, 6))):
        effect = draw(st.sampled_from(["allow", "allow", "deny", "show", "write"]))
        names = actions if effect in ("allow", "deny") else \
            shows if effect == "show" else writes
        listed = st.lists(st.sampled_from(names), min_size=1, max_size=most,
                          unique=True).map(", ".join)
        targets = draw(st.one_of(st.just("*"), listed) if star else listed)
        body.append(f"  r{i}: {effect} {targets} when {draw(bool_exprs(2, atoms))}")
    return schema + "policy p for Doc {\n" + "\n".join(body) + "\n}\n"


def policies11():
    names = ["owner", "proj", "size", "tags", "level"]
    return flat_policies(SCHEMA11, ["read", "write", "share"], names, names, ATOMS11)
