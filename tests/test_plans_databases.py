"""Query plans against real databases, differentially: for every example set, resource
type and action, and random principals and contexts (hypothesis), the rows a plan's
SQL selects (SQLite, PostgreSQL, SQLAlchemy, Django) are exactly those `check` allows,
and the visible fields of each are `check`'s."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policyd import Engine
from policyd.language.checked import Const
from policyd.plans import PlanUntranslatable, to_sql, to_sql_columns

from . import plan_tables as pt
from .conftest import EXAMPLES, NOW, Unlimited
from .databases import INITDB, PostgresServer
from .strategies import IDS, attrs

ROWS = 1000
SETS = ["orders", "documents", "admin", "projects", "maps"]
MAPS = Path(__file__).parent / "plans" / "maps.policy"  # resource maps, records, clocks, globs


def _source(name: str) -> Path:
    return MAPS if name == "maps" else EXAMPLES / name

if INITDB is None and os.environ.get("CI"):  # CI installs PostgreSQL (.ci/run)
    raise RuntimeError("PostgreSQL (initdb) is required in CI")
NO_POSTGRES = "PostgreSQL is not installed (no initdb): its cases are skipped; install " \
    "Debian's postgresql to run them"


def _strings(engine: Engine) -> list[str]:
    """String constants of the set's conditions: rows must hit them (like patterns too)."""
    found = set()

    def walk(ir):
        if isinstance(ir, Const) and isinstance(ir.value, str):
            found.add(ir.value)
        for a in getattr(ir, "args", ()):
            walk(a)
        data = getattr(ir, "data", None)
        if isinstance(data, tuple) and all(isinstance(p, str) for p in data):
            found.add("x".join(data))  # a string the like pattern matches
    for tp in engine.policy_set.plans.types.values():
        for denies, allows in tp.actions.values():
            for rule in (*denies, *allows, *tp.shows):
                walk(rule.cond)
    return sorted(found)


class Fixture:
    """One example set: its engine and, per resource type, 1,000 rows in each database."""

    def __init__(self, name: str, pg, sqlite_path: str):
        self.engine = Engine.from_path(_source(name), clock=lambda: NOW,
                                       rate_store=Unlimited())
        ps = self.engine.policy_set
        self.schema = ps.schema
        ids = sorted({e for t in ps.entities.principals.values() for e in t.rows}) or IDS
        self.principal_ids = ids
        words = sorted(set(_strings(self.engine)) | set(ids) | {"t1", "t2", "w1", "w2"})
        rows = pt.Rows(hash(name) % 1000, words, sorted(self.schema.roles))
        self.sqlite = sqlite3.connect(sqlite_path)
        self.pg, self.rows, self.tables = pg, {}, {}
        records = self.schema.records
        for i, (rtype, res) in enumerate(self.schema.resources.items()):
            table = f"{name}_{i}"
            self.tables[rtype] = table
            self.rows[rtype] = [(f"r{n}", rows.attrs(res, records)) for n in range(ROWS)]
            self._fill(self.sqlite, table, res, "sqlite")
            if pg is not None:
                self._fill(pg, table, res, "postgresql")

    def _fill(self, conn, table, res, dialect):
        records = self.schema.records
        conn.execute(pt.ddl(table, res, records, dialect))
        params = [pt.row_params(rid, a, res, records, dialect) for rid, a in
                  self.rows[res.name]]
        cur = conn.cursor()
        cur.executemany(pt.insert(table, res, records, dialect), params)
        conn.commit()

    def expected(self, principal, context, rtype, action):
        out = {}
        for rid, a in self.rows[rtype]:
            request = {"principal": principal, "action": action,
                       "resource": {"type": rtype, "id": rid, "attrs": a}}
            if context is not None:
                request["context"] = context
            d = self.engine.check(request)
            if d.allowed:
                out[rid] = list(d.visible_fields)
        return out


@pytest.fixture(scope="module")
def postgres():
    if INITDB is None:
        yield None
        return
    import psycopg
    server = PostgresServer().start()
    conn = psycopg.connect(server.dsn, autocommit=True)
    try:
        yield conn
    finally:
        conn.close()
        server.stop()


@pytest.fixture(scope="module")
def sqlite_path(tmp_path_factory):
    return str(tmp_path_factory.mktemp("plans") / "rows.sqlite")


@pytest.fixture(scope="module")
def fixtures(postgres, sqlite_path):
    return {name: Fixture(name, postgres, sqlite_path) for name in SETS}


@pytest.fixture(scope="module")
def frameworks(postgres, sqlite_path):
    """SQLAlchemy engines and Django connections on the same two databases."""
    alchemy = {"sqlite": sqlalchemy.create_engine(f"sqlite:///{sqlite_path}")}
    if postgres is not None:
        info = postgres.info
        alchemy["postgresql"] = sqlalchemy.create_engine(
            f"postgresql+psycopg://{info.user}@{info.host}:{info.port}/{info.dbname}")
    django_dbs = {"sqlite": {"ENGINE": "django.db.backends.sqlite3", "NAME": sqlite_path}}
    if postgres is not None:
        django_dbs["postgresql"] = {"ENGINE": "django.db.backends.postgresql",
                                    "NAME": info.dbname, "USER": info.user,
                                    "HOST": info.host, "PORT": info.port}
    configure_django({"default": django_dbs["sqlite"], **django_dbs})
    yield alchemy
    for engine in alchemy.values():
        engine.dispose()
    from django.db import connections
    connections.close_all()


def configure_django(databases: dict) -> None:
    import django
    from django.conf import settings
    if not settings.configured:
        settings.configure(DATABASES=databases, INSTALLED_APPS=[], USE_TZ=True)
        django.setup()
    else:
        from django.db import connections
        connections.close_all()
        settings.DATABASES.update(databases)
        connections.settings = connections.configure_settings(settings.DATABASES)


_MODELS: dict = {}


def django_model(table: str, columns: dict[str, str], types: dict[str, str], dialect: str):
    """An unmanaged model over a test table: a field per column (`__` is Django's lookup
    separator, so field names use one underscore); a time column is the contract's, as
    the plan's SQL reads its type: epoch seconds in SQLite, a timestamp in PostgreSQL."""
    key = (table, dialect)
    if key not in _MODELS:
        from django.db import models
        attrs = {"__module__": __name__,
                 "Meta": type("Meta", (), {"app_label": "policyd_plans", "managed": False,
                                           "db_table": table}),
                 "id": models.TextField(primary_key=True)}
        for name, col in columns.items():
            if col != "id":
                field = models.TextField
                if types.get(name) == "time":
                    field = models.FloatField if dialect == "sqlite" else models.DateTimeField
                attrs[col.replace("__", "_")] = field(db_column=col)
        _MODELS[key] = type(f"M_{table}_{dialect}", (models.Model,), attrs)
    return _MODELS[key]


def _cases():
    for name in SETS:
        engine = Engine.from_path(_source(name))
        for rtype, res in engine.policy_set.schema.resources.items():
            for action in res.actions:
                for dialect in ("sqlite", "postgresql"):
                    yield name, rtype, action, dialect


def _select(conn, table: str, where: str, params: list) -> set[str]:
    cur = conn.cursor()
    cur.execute(f"SELECT id FROM {table} WHERE {where}", params)
    return {r[0] for r in cur.fetchall()}


@pytest.mark.parametrize("name,rtype,action,dialect", list(_cases()))
def test_a_plan_selects_exactly_the_rows_check_allows(fixtures, frameworks, name, rtype,
                                                       action, dialect):
    if dialect == "postgresql" and INITDB is None:
        pytest.skip(NO_POSTGRES)
    fx = fixtures[name]
    schema, roles = fx.schema, sorted(fx.schema.roles)
    ptype = sorted(schema.principals)

    @settings(max_examples=15 if name == "maps" else 6, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def run(data):
        pt_name = data.draw(st.sampled_from(ptype))
        principal = {"type": pt_name, "id": data.draw(st.sampled_from(fx.principal_ids))}
        pattrs = data.draw(attrs(schema.principals[pt_name], roles, schema.records))
        if pattrs:
            principal["attrs"] = pattrs
        context = None if schema.context is None else \
            data.draw(attrs(schema.context, roles, schema.records))
        request = {"principal": principal, "action": action, "resource": {"type": rtype}}
        if context is not None:
            request["context"] = context
        plan = fx.engine.plan(request)
        expected = fx.expected(principal, context, rtype, action)
        rows = fx.rows[rtype]
        assert {rid for rid, a in rows if plan.matches(a, id=rid)} == set(expected)
        for rid, visible in expected.items():
            assert plan.visible_for(dict(rows)[rid], id=rid) == visible
        columns = pt.columns_map(schema.resources[rtype], schema.records)
        types = {".".join(p): t for p, t in pt.leaves(schema.resources[rtype], schema.records)}
        table = fx.tables[rtype]
        for conn in (fx.sqlite if dialect == "sqlite" else fx.pg,):
            try:
                where, params = to_sql(plan, columns, dialect)
            except PlanUntranslatable as exc:
                # a known principal map read by a resource key that is not only a key
                assert (name, action) == ("maps", "rank") and "map" in str(exc), exc
                continue
            assert _select(conn, table, where, params) == set(expected), (dialect, where)
            assert _through_frameworks(frameworks[dialect], dialect, plan, table,
                                       columns, types) == set(expected), dialect
            select, sparams = to_sql_columns(plan, columns, dialect)
            if expected and select:
                cur = conn.cursor()
                cur.execute(f"SELECT id AS row_id, {select} FROM {table} WHERE {where}",
                            sparams + params)
                names = [c[0] for c in cur.description]
                for row in cur.fetchall():
                    shown = [n for n, v in zip(names[1:], row[1:], strict=True)
                             if v is not None]
                    want = [f for f in expected[row[0]] if columns.get(f) and
                            _value(rows, row[0], f) is not None]
                    assert shown == want, (dialect, row[0])

    run()


def _through_frameworks(alchemy, dialect: str, plan, table: str, columns,
                        types: dict[str, str]) -> set[str]:
    """The same plan through SQLAlchemy and Django; both must agree. Time columns are
    typed as the contract stores them (the adapters read a time column's storage from
    its type, and refuse an untyped one)."""
    from policyd.plans.django import q
    from policyd.plans.sqlalchemy import where
    time_type = sqlalchemy.Float() if dialect == "sqlite" else sqlalchemy.DateTime(timezone=True)
    t = sqlalchemy.table(table, *(sqlalchemy.column(c, time_type if types.get(a) == "time"
                                                    else None)
                                  for a, c in columns.items()))
    stmt = sqlalchemy.select(t.c.id).where(where(plan, {a: t.c[c] for a, c in
                                                       columns.items()}))
    with alchemy.connect() as conn:
        via_alchemy = {r[0] for r in conn.execute(stmt)}
    model = django_model(table, columns, types, dialect)
    fields = {a: c.replace("__", "_") for a, c in columns.items()}
    via_django = set(model.objects.using(dialect).filter(q(plan, fields))
                     .values_list("id", flat=True))
    assert via_alchemy == via_django, dialect
    return via_alchemy


def _value(rows, rid, field):
    if field == "id":
        return rid
    v = dict(rows)[rid]
    for step in field.split("."):
        v = v.get(step) if isinstance(v, dict) else None
    return v


def test_untranslatable_names_the_attribute_and_the_rule():
    engine = Engine.from_path(EXAMPLES / "orders")
    plan = engine.plan({"principal": {"type": "User", "id": "alice",
                                      "attrs": {"roles": ["viewer"], "tenant": "t1",
                                                "mfa": False}},
                        "action": "update", "resource": {"type": "Order"},
                        "context": {"ip": "10.1.2.3", "time": "2026-11-22T10:00:00Z"}})
    with pytest.raises(PlanUntranslatable) as err:
        to_sql(plan, {"tenant": "tenant"}, "sqlite")
    assert err.value.attribute == "owner" and err.value.rule == "orders.owner_access"
    assert "owner" in str(err.value) and "orders.owner_access" in str(err.value)
