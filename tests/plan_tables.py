"""Tables that hold a resource type's rows, for the query-plan tests: one column per
attribute (records flattened: `project.private` is column `c_project__private`), in the
column conventions of docs/plans.md, and random rows that satisfy the schema."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime

from policyd.language.schema import EntitySchema
from policyd.values import parse_time

IPS = ["10.1.2.3", "10.200.0.1", "192.168.4.4", "203.0.113.9", "2001:db8::1", "fd00::5"]
TIMES = ["2026-11-22T10:00:00Z", "2026-11-21T23:59:59+02:00", "2026-11-23T07:30:00Z",
         "2026-11-28T18:00:00-05:00", "2026-01-01T00:00:00.5Z"]


def leaves(res: EntitySchema, records: dict, prefix=()) -> list[tuple[tuple, str]]:
    out = []
    for a in res.attrs:
        if a.stored:
            continue
        if a.type in records:
            out.extend(leaves(records[a.type], records, prefix + (a.name,)))
        else:
            out.append((prefix + (a.name,), a.type))
    return out


def column(path: tuple) -> str:
    return "c_" + "__".join(path)


def columns_map(res: EntitySchema, records: dict) -> dict[str, str]:
    return {"id": "id", **{".".join(p): column(p) for p, _ in leaves(res, records)}}


_SQLITE = {"string": "TEXT", "number": "REAL", "bool": "INTEGER", "time": "REAL", "ip": "TEXT"}
_PG = {"string": "text", "number": "float8", "bool": "boolean", "time": "timestamptz",
       "ip": "inet", "set<string>": "text[]", "set<number>": "float8[]", "set<ip>": "inet[]"}


def pg_type(t: str) -> str:
    return "jsonb" if t.startswith("map<") else _PG[t]


def ddl(table: str, res: EntitySchema, records: dict, dialect: str) -> str:
    cols = ["id TEXT PRIMARY KEY"]
    for path, t in leaves(res, records):
        sql_t = pg_type(t) if dialect == "postgresql" else _SQLITE.get(t, "TEXT")
        cols.append(f"{column(path)} {sql_t}")
    return f"CREATE TABLE {table} ({', '.join(cols)})"


def insert(table: str, res: EntitySchema, records: dict, dialect: str) -> str:
    specs = leaves(res, records)
    if dialect == "postgresql":
        marks = ["%s"] + [f"%s::{pg_type(t)}" for _, t in specs]
    else:
        marks = ["?"] * (len(specs) + 1)
    names = ["id"] + [column(p) for p, _ in specs]
    return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join(marks)})"


def _get(attrs: dict, path: tuple):
    v = attrs
    for step in path:
        if not isinstance(v, dict) or step not in v:
            return None
        v = v[step]
    return v


def row_params(rid: str, attrs: dict, res: EntitySchema, records: dict, dialect: str) -> list:
    out: list = [rid]
    for path, t in leaves(res, records):
        v = _get(attrs, path)
        if v is None:
            out.append(None)
        elif dialect == "sqlite":
            out.append(json.dumps(v) if t.startswith(("set<", "map<")) else
                       parse_time(v) if t == "time" else int(v) if t == "bool" else v)
        elif t.startswith("map<"):
            out.append(json.dumps(v))
        elif t == "time":
            out.append(datetime.fromtimestamp(parse_time(v), UTC))
        elif t == "set<number>":
            out.append([float(x) for x in v])
        else:
            out.append(v)
    return out


class Rows:
    """Random attribute values that satisfy a schema, drawn from small pools so that
    equalities with the principal (tenants, owners, members) hold often."""

    def __init__(self, seed: int, words: list[str], roles: list[str]):
        self.rng, self.words, self.roles = random.Random(seed), words, roles

    def value(self, t: str, records: dict):
        rng = self.rng
        if t in records:
            return self.attrs(records[t], records)
        if t == "string":
            return rng.choice(self.words)
        if t == "number":
            return rng.choice([rng.randint(-3, 1000), rng.choice([0, 1, 2, 3, 20, 500, 0.5])])
        if t == "bool":
            return rng.random() < 0.5
        if t == "ip":
            return rng.choice(IPS)
        if t == "time":
            return rng.choice(TIMES)
        if t.startswith("set<"):
            inner = t[4:-1]
            pool = self.words + self.roles if inner == "string" else None
            n = rng.randint(0, 3)
            return list({str(x): x for x in (rng.choice(pool) if pool else
                                             self.value(inner, records)
                                             for _ in range(n))}.values())
        if t.startswith("map<"):
            inner = t[len("map<string, "):-1]
            keys = rng.sample(self.words, min(3, len(self.words)))[:rng.randint(0, 3)]
            return {k: self.value(inner, records) for k in keys}
        raise ValueError(t)

    def attrs(self, schema: EntitySchema, records: dict) -> dict:
        out = {}
        for a in schema.attrs:
            if a.stored or (a.optional and self.rng.random() < 0.4):
                continue
            out[a.name] = self.value(a.type, records)
        return out
